//! The one table of `stackflow.conf`'s stanzas and keys (PRODUCT §15 "One table of settings").
//!
//! `README/stackflow.conf.spec` documents them, the readers read them and `stackflow check`
//! warns about everything else; all three come from this table. A test compares it with the
//! spec file both ways, and in debug builds (every test run) reading a key that is not in the
//! table is a panic, so a reader can never use a key that `check` would call unknown.

/// How a stanza kind is named in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `[delivery]`: exactly the kind's name.
    Fixed,
    /// `[soar:<account>]`: the kind, a colon, an account name.
    Account,
    /// `[route:<name>]`: the kind, a colon, a route name.
    Named,
}

/// One kind of stanza and the keys it understands.
#[derive(Debug)]
pub struct StanzaKind {
    pub kind: &'static str,
    pub naming: Naming,
    /// Keys; an entry ending in `.` is a prefix (`field.` stands for `field.<name>`).
    pub keys: &'static [&'static str],
}

/// Every stanza kind of `stackflow.conf`, in the spec's order.
pub const STANZAS: &[StanzaKind] = &[
    StanzaKind {
        kind: "soar",
        naming: Naming::Account,
        keys: &["url", "verify_ssl", "ca_file", "label"],
    },
    StanzaKind {
        kind: "stackflow",
        naming: Naming::Account,
        keys: &["webhook_url", "api_url", "verify_ssl", "ca_file"],
    },
    StanzaKind {
        kind: "slack",
        naming: Naming::Account,
        keys: &["api_url", "channel", "verify_ssl", "ca_file"],
    },
    StanzaKind {
        kind: "llm",
        naming: Naming::Account,
        keys: &["url", "model", "timeout_s", "max_tokens", "redact_ips", "verify_ssl", "ca_file"],
    },
    StanzaKind {
        kind: "route",
        naming: Naming::Named,
        keys: &[
            "min_risk_score",
            "min_severity",
            "search_name",
            "field.",
            "channel",
            "mention",
            "buttons",
            "suppress",
            "war_room",
        ],
    },
    StanzaKind { kind: "splunkd", naming: Naming::Fixed, keys: &["uri", "verify_ssl", "ca_file"] },
    StanzaKind { kind: "proxy", naming: Naming::Fixed, keys: &["url"] },
    StanzaKind {
        kind: "delivery",
        naming: Naming::Fixed,
        keys: &[
            "timeout_s",
            "max_attempts",
            "retry_base_s",
            "flush_max_items",
            "flush_max_s",
            "store",
            "lease_s",
            "kvstore_conflict_status",
            "ledger_retention_days",
            "spool_dir",
        ],
    },
    StanzaKind { kind: "receipts", naming: Naming::Fixed, keys: &["index"] },
    StanzaKind {
        kind: "notables",
        naming: Naming::Fixed,
        keys: &["api", "es8_update_path", "es8_notes_path", "comment_playbook_results"],
    },
    StanzaKind {
        kind: "slack_response",
        naming: Naming::Fixed,
        keys: &[
            "false_positive_disposition",
            "escalate_account",
            "playbook_account",
            "war_room_prefix",
            "war_room_users",
            "war_room_usergroup",
            "war_room_private",
            "max_concurrent_searches",
        ],
    },
    StanzaKind {
        kind: "triage",
        naming: Naming::Named,
        keys: &[
            "search",
            "earliest",
            "latest",
            "max_rows",
            "timeout_s",
            "label",
            "fields",
            "summary",
            "llm_account",
        ],
    },
    StanzaKind {
        kind: "limits",
        naming: Naming::Fixed,
        keys: &["max_results_bytes", "max_record_bytes", "max_field_bytes", "max_fields"],
    },
];

/// The kind of a stanza name (`soar:prod` → soar), if the table has it.
pub fn kind_of(stanza: &str) -> Option<&'static StanzaKind> {
    let (kind, named) = match stanza.split_once(':') {
        Some((kind, name)) => (kind, Some(name)),
        None => (stanza, None),
    };
    STANZAS.iter().find(|entry| {
        entry.kind == kind
            && match entry.naming {
                Naming::Fixed => named.is_none(),
                Naming::Account | Naming::Named => named.is_some_and(|name| !name.is_empty()),
            }
    })
}

impl StanzaKind {
    pub fn knows(&self, key: &str) -> bool {
        self.keys.iter().any(|known| match known.strip_suffix('.') {
            Some(prefix) => key
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|name| !name.is_empty()),
            None => *known == key,
        })
    }

    /// `[soar:<account>]`, `[delivery]`: the header as the spec writes it.
    pub fn header(&self) -> String {
        match self.naming {
            Naming::Fixed => format!("[{}]", self.kind),
            Naming::Account => format!("[{}:<account>]", self.kind),
            Naming::Named => format!("[{}:<name>]", self.kind),
        }
    }

    /// The keys as the spec writes them (`field.<name>`).
    pub fn spec_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| match key.strip_suffix('.') {
                Some(prefix) => format!("{prefix}.<name>"),
                None => key.to_string(),
            })
            .collect()
    }
}

/// Whether `key` of `stanza` is a documented setting (the `default` stanza has none).
pub fn is_known(stanza: &str, key: &str) -> bool {
    kind_of(stanza).is_some_and(|kind| kind.knows(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SPEC: &str = include_str!("../../app/stackflow/README/stackflow.conf.spec");

    /// Header → keys, as `README/stackflow.conf.spec` documents them: a stanza header alone on a
    /// line, a key as `name = <…>` at the start of a line.
    fn spec_table() -> BTreeMap<String, Vec<String>> {
        let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in SPEC.lines() {
            if line.starts_with('[') && line.ends_with(']') {
                current = Some(line.to_string());
                table.entry(line.to_string()).or_default();
            } else if let Some(header) = &current
                && let Some((key, _)) = line.split_once(" = ")
                && !line.starts_with([' ', '*', '#'])
            {
                table.get_mut(header).expect("header seen").push(key.to_string());
            }
        }
        table
    }

    #[test]
    fn the_table_is_the_spec_both_ways() {
        let spec = spec_table();
        let table: BTreeMap<String, Vec<String>> =
            STANZAS.iter().map(|kind| (kind.header(), kind.spec_keys())).collect();
        assert_eq!(
            spec.keys().collect::<Vec<_>>(),
            table.keys().collect::<Vec<_>>(),
            "stanzas of README/stackflow.conf.spec vs settings::keys::STANZAS"
        );
        for (header, keys) in &spec {
            let mut documented = keys.clone();
            let mut known = table[header].clone();
            documented.sort();
            known.sort();
            assert_eq!(documented, known, "keys of {header}: spec vs settings::keys::STANZAS");
        }
    }

    #[test]
    fn the_shipped_defaults_use_only_known_keys() {
        let defaults = crate::splunk::conf::ConfFile::parse_str(include_str!(
            "../../app/stackflow/default/stackflow.conf"
        ));
        for stanza in defaults.stanza_names() {
            for key in defaults.stanza(stanza).into_iter().flat_map(|s| s.keys()) {
                assert!(is_known(stanza, key), "default/stackflow.conf [{stanza}] {key}");
            }
        }
    }

    #[test]
    fn names_and_prefixes() {
        assert!(is_known("soar:prod", "url"));
        assert!(!is_known("soar", "url"), "an account stanza needs its account");
        assert!(!is_known("soar:", "url"));
        assert!(is_known("delivery", "store"));
        assert!(!is_known("delivery:x", "store"));
        assert!(is_known("route:10_x", "field.dest_priority"));
        assert!(!is_known("route:10_x", "field."));
        assert!(!is_known("route:10_x", "fieldx"));
        assert!(!is_known("soar:prod", "verfy_ssl"));
        assert!(!is_known("nonsense", "url"));
    }
}
