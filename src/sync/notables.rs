//! Notable status decisions and grouped updates for `| stackflowsync update_notables=true`.
//!
//! `decide` is pure: from the notable's current `status` and the states read back from SOAR
//! and StackFlow it tells whether the notable should change and to what. `Updates` collects
//! the changes of one chunk grouped by target status, so that each status costs one update
//! through `splunk::notable_update` (with ES 7 one `POST /services/notable_update`, ruleUIDs
//! repeated, whatever the number of rows).

use super::options::{Remote, StatusMap, es_status_label, parse_es_status};
use crate::remotes::splunkd::Splunkd;
use std::collections::BTreeMap;

/// The capability that allows `update_notables=true` (authorize.conf).
pub const CAPABILITY: &str = "stackflow_update_notables";
/// Default prefix of notable comments; the `comment` option replaces it.
pub const COMMENT_PREFIX: &str = "StackFlow for Splunk";
/// Comments listing several remote objects are cut around this length.
const MAX_COMMENT_CHARS: usize = 3_000;

/// What one remote says about a row's notable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteState {
    pub remote: Remote,
    pub object_id: String,
    pub status: String,
    pub resolution: String,
    pub url: String,
}

impl RemoteState {
    /// `SOAR container 42 is closed (resolution: false positive) — https://soar/mission/42`.
    pub fn describe(&self) -> String {
        let status = if self.status.is_empty() { "without status" } else { self.status.as_str() };
        let mut text = format!("{} {} is {status}", self.remote.label(), self.object_id);
        if !self.resolution.is_empty() {
            text.push_str(&format!(" (resolution: {})", self.resolution));
        }
        if !self.url.is_empty() {
            text.push_str(" — ");
            text.push_str(&self.url);
        }
        text
    }
}

/// What should happen to a notable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No remote state maps to an ES status (e.g. a SOAR container still `open`).
    NoMapping,
    /// The notable already has the target status.
    Unchanged { status: u32 },
    /// Set the status to `to`, because of the states at indices `because`.
    Change { from: Option<u32>, to: u32, because: Vec<usize> },
}

/// Decides the target status: the highest ES status any remote state maps to (so that
/// Closed (5) wins over Resolved (4) when SOAR and StackFlow disagree).
pub fn decide(map: &StatusMap, current_status: &str, states: &[RemoteState]) -> Decision {
    let mapped: Vec<(usize, u32)> = states
        .iter()
        .enumerate()
        .filter_map(|(index, state)| map.lookup(state.remote, &state.status).map(|es| (index, es)))
        .collect();
    let Some(to) = mapped.iter().map(|(_, es)| *es).max() else {
        return Decision::NoMapping;
    };
    let from = parse_es_status(current_status);
    if from == Some(to) {
        return Decision::Unchanged { status: to };
    }
    let because = mapped.iter().filter(|(_, es)| *es == to).map(|(index, _)| *index).collect();
    Decision::Change { from, to, because }
}

/// `New (1) → Resolved (4)`.
pub fn describe_change(from: Option<u32>, to: u32) -> String {
    match from {
        Some(from) => format!("{} → {}", es_status_label(from), es_status_label(to)),
        None => format!("(unknown) → {}", es_status_label(to)),
    }
}

/// The notables of one chunk to update, by target status.
#[derive(Debug, Default)]
pub struct Updates {
    pub groups: BTreeMap<u32, Group>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// Distinct event ids, in row order.
    pub event_ids: Vec<String>,
    /// Rows of the chunk that the update answers for.
    pub rows: Vec<usize>,
    /// Distinct descriptions of the remote objects that decided.
    pub reasons: Vec<String>,
}

impl Updates {
    pub fn add(&mut self, row: usize, event_id: &str, to: u32, reasons: Vec<String>) {
        let group = self.groups.entry(to).or_default();
        if !group.event_ids.iter().any(|known| known == event_id) {
            group.event_ids.push(event_id.to_string());
        }
        group.rows.push(row);
        for reason in reasons {
            if !group.reasons.contains(&reason) {
                group.reasons.push(reason);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// The comment of one grouped update: the prefix, then the remote object(s) that decided.
pub fn comment(prefix: Option<&str>, reasons: &[String]) -> String {
    let prefix = prefix.unwrap_or(COMMENT_PREFIX).trim().trim_end_matches(':');
    match reasons {
        [] => prefix.to_string(),
        [reason] => format!("{prefix}: {reason}"),
        _ => {
            let mut text = format!("{prefix}: {} remote objects: ", reasons.len());
            for (n, reason) in reasons.iter().enumerate() {
                if text.chars().count() + reason.chars().count() > MAX_COMMENT_CHARS {
                    text.push_str(&format!("… and {} more", reasons.len() - n));
                    return text;
                }
                if n > 0 {
                    text.push_str("; ");
                }
                text.push_str(reason);
            }
            text
        }
    }
}

/// Whether the search's user holds [`CAPABILITY`], from splunkd's current context. splunkd's
/// own `splunk-system-user` (which runs the shipped *StackFlow - Sync notables* search, owned
/// by nobody) is not described with capabilities and may.
/// `Ok(None)`: splunkd has no such endpoint (404; not a real splunkd), so the check cannot be
/// made.
pub fn has_capability(splunkd: &Splunkd) -> Result<Option<bool>, String> {
    splunkd
        .current_context()
        .map(|context| {
            context.map(|context| {
                context.has_capability(CAPABILITY)
                    || context.username == crate::remotes::splunkd::SYSTEM_USER
            })
        })
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(remote: Remote, id: &str, status: &str) -> RemoteState {
        RemoteState {
            remote,
            object_id: id.to_string(),
            status: status.to_string(),
            resolution: String::new(),
            url: format!("https://x/{id}"),
        }
    }

    #[test]
    fn decisions_follow_the_status_map() {
        let map = StatusMap::default();
        let soar_closed = state(Remote::Soar, "42", "closed");
        let soar_open = state(Remote::Soar, "43", "open");
        let sf_closed = state(Remote::Stackflow, "INC1", "closed");
        assert_eq!(
            decide(&map, "1", std::slice::from_ref(&soar_closed)),
            Decision::Change { from: Some(1), to: 4, because: vec![0] }
        );
        assert_eq!(
            decide(&map, "4", std::slice::from_ref(&soar_closed)),
            Decision::Unchanged { status: 4 }
        );
        assert_eq!(
            decide(&map, "resolved", std::slice::from_ref(&soar_closed)),
            Decision::Unchanged { status: 4 }
        );
        assert_eq!(decide(&map, "1", std::slice::from_ref(&soar_open)), Decision::NoMapping);
        assert_eq!(decide(&map, "1", &[]), Decision::NoMapping);
        assert_eq!(
            decide(&map, "", &[soar_closed.clone(), sf_closed.clone()]),
            Decision::Change { from: None, to: 5, because: vec![1] }
        );
        let custom = StatusMap::parse("open:2").unwrap();
        assert_eq!(
            decide(&custom, "1", &[soar_open, soar_closed]),
            Decision::Change { from: Some(1), to: 2, because: vec![0] }
        );
        assert_eq!(describe_change(Some(1), 4), "New (1) → Resolved (4)");
    }

    #[test]
    fn updates_group_by_status_and_dedupe() {
        let mut updates = Updates::default();
        updates.add(0, "e1", 4, vec!["SOAR container 1 is closed".into()]);
        updates.add(1, "e2", 5, vec!["StackFlow incident I is closed".into()]);
        updates.add(2, "e3", 4, vec!["SOAR container 3 is closed".into()]);
        updates.add(3, "e1", 4, vec!["SOAR container 1 is closed".into()]);
        assert_eq!(updates.groups.len(), 2);
        let resolved = &updates.groups[&4];
        assert_eq!(resolved.event_ids, ["e1", "e3"]);
        assert_eq!(resolved.rows, [0, 2, 3]);
        assert_eq!(resolved.reasons.len(), 2);
    }

    #[test]
    fn comments_name_the_remote_objects() {
        let one = vec![state(Remote::Soar, "42", "closed").describe()];
        assert_eq!(
            comment(None, &one),
            "StackFlow for Splunk: SOAR container 42 is closed — https://x/42"
        );
        assert_eq!(
            comment(Some("Closed in SOAR:"), &one),
            "Closed in SOAR: SOAR container 42 is closed — https://x/42"
        );
        let mut resolved = state(Remote::Stackflow, "INC7", "resolved");
        resolved.resolution = "fixed".into();
        assert_eq!(
            resolved.describe(),
            "StackFlow incident INC7 is resolved (resolution: fixed) — https://x/INC7"
        );
        let many: Vec<String> =
            (0..500).map(|n| state(Remote::Soar, &n.to_string(), "closed").describe()).collect();
        let text = comment(None, &many);
        assert!(
            text.starts_with(
                "StackFlow for Splunk: 500 remote objects: SOAR container 0 is closed"
            ),
            "{text}"
        );
        assert!(text.ends_with("more") && text.chars().count() < MAX_COMMENT_CHARS + 100, "{text}");
    }
}
