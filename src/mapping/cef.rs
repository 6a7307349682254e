//! The CIM → CEF field table and CEF `contains` types (SOAR's `GET /rest/cef` defaults and the CIM_CEF_MAP of Splunk's SOAR connector for Splunk), the admin's
//! `field_mapping` overrides on top of it, and the list of Splunk-internal fields that never
//! reach SOAR. Pure lookups, no I/O.
//!
//! The table is the Splunk SOAR connector's `CIM_CEF_MAP` with PRODUCT §4's settled entries:
//! `src_user → sourceUserName`, `bytes_in → bytesIn`, `dest_translated_ip →
//! destinationTranslatedAddress` (the upstream typos corrected), plus `src_host`, `dest_host` and
//! `dvc_host` to the host-name keys, and ES's endpoint fields (PRODUCT §15) under the CEF keys
//! of SOAR's default CEF list (`GET /rest/cef`, "CEF field list"): process names to
//! `deviceProcessName` / `sourceProcessName` (`process name`), hashes to `fileHash` (`hash`),
//! `fileName` (`file name`), `filePath` (`file path`), `requestURL` (`url`).
//!
//! Types follow the value (PRODUCT §15): a value of a field mapped to an address key
//! (`sourceAddress`, `destinationAddress`, `dvc`, `deviceAddress`) that is not an IP address
//! goes to the matching host-name key ([`host_key`]), typed `host name`.

use std::collections::BTreeMap;

/// CIM (Splunk) field → CEF key.
const CIM_CEF: &[(&str, &str)] = &[
    ("action", "act"),
    ("action_name", "act"),
    ("app", "app"),
    ("bytes_in", "bytesIn"),
    ("bytes_out", "bytesOut"),
    ("category", "cat"),
    ("dest", "destinationAddress"),
    ("dest_ip", "destinationAddress"),
    ("dest_host", "destinationHostName"),
    ("dest_mac", "destinationMacAddress"),
    ("dest_nt_domain", "destinationNtDomain"),
    ("dest_port", "destinationPort"),
    ("dest_translated_ip", "destinationTranslatedAddress"),
    ("dest_translated_port", "destinationTranslatedPort"),
    ("direction", "deviceDirection"),
    ("dns", "destinationDnsDomain"),
    ("dvc", "dvc"),
    ("dvc_host", "deviceHostname"),
    ("dvc_ip", "deviceAddress"),
    ("dvc_mac", "deviceMacAddress"),
    ("file_create_time", "fileCreateTime"),
    ("file_hash", "fileHash"),
    ("file_modify_time", "fileModificationTime"),
    ("file_name", "fileName"),
    ("file_path", "filePath"),
    ("file_size", "fileSize"),
    // ES endpoint fields (Endpoint data model: Processes, Filesystem, Registry).
    ("process", "deviceProcessName"),
    ("process_name", "deviceProcessName"),
    ("parent_process_name", "sourceProcessName"),
    ("process_hash", "fileHash"),
    ("registry_path", "registryPath"),
    ("message", "message"),
    ("protocol", "transportProtocol"),
    ("transport", "transportProtocol"),
    ("request_payload", "request"),
    ("request_payload_type", "requestMethod"),
    ("src", "sourceAddress"),
    ("src_ip", "sourceAddress"),
    ("src_dns", "sourceDnsDomain"),
    ("src_host", "sourceHostName"),
    ("src_mac", "sourceMacAddress"),
    ("src_nt_domain", "sourceNtDomain"),
    ("src_port", "sourcePort"),
    ("src_translated_ip", "sourceTranslatedAddress"),
    ("src_translated_port", "sourceTranslatedPort"),
    ("src_user", "sourceUserName"),
    ("url", "requestURL"),
    ("user", "destinationUserName"),
    ("user_id", "destinationUserId"),
];

/// CEF key → SOAR `contains` types (the defaults SOAR's `GET /rest/cef` lists).
const CEF_CONTAINS: &[(&str, &str)] = &[
    ("sourceAddress", "ip"),
    ("src", "ip"),
    ("destinationAddress", "ip"),
    ("dst", "ip"),
    ("sourceHostName", "host name"),
    ("shost", "host name"),
    ("destinationHostName", "host name"),
    ("dhost", "host name"),
    ("sourceUserName", "user name"),
    ("suser", "user name"),
    ("destinationUserName", "user name"),
    ("duser", "user name"),
    ("sourcePort", "port"),
    ("spt", "port"),
    ("destinationPort", "port"),
    ("dpt", "port"),
    ("sourceMacAddress", "mac address"),
    ("smac", "mac address"),
    ("destinationMacAddress", "mac address"),
    ("dmac", "mac address"),
    ("sourceDnsDomain", "domain"),
    ("destinationDnsDomain", "domain"),
    ("dntdom", "domain"),
    ("sourceTranslatedAddress", "ip"),
    ("destinationTranslatedAddress", "ip"),
    ("sourceTranslatedPort", "port"),
    ("destinationTranslatedPort", "port"),
    ("destinationServiceName", "process name"),
    ("destinationProcessName", "process name"),
    ("dproc", "process name"),
    ("fileHash", "hash"),
    ("oldfileHash", "hash"),
    ("fileName", "file name"),
    ("fname", "file name"),
    ("oldfileName", "file name"),
    ("filePath", "file path"),
    ("oldfilePath", "file path"),
    ("requestURL", "url"),
    ("deviceAddress", "ip"),
    ("dvc", "ip"),
    ("deviceTranslatedAddress", "ip"),
    ("deviceHostname", "host name"),
    ("dvchost", "host name"),
    ("deviceDnsDomain", "domain"),
    ("deviceMacAddress", "mac address"),
    ("deviceProcessName", "process name"),
    // ArcSight CEF's `sproc`: the parent (source) process of an endpoint event. SOAR's default
    // list has no `contains` for it, so `cef_types` carries it.
    ("sourceProcessName", "process name"),
    ("sproc", "process name"),
];

/// The host-name key beside an address key: where a value that is not an IP address goes.
pub fn host_key(address_key: &str) -> Option<&'static str> {
    match address_key {
        "destinationAddress" | "dst" => Some("destinationHostName"),
        "sourceAddress" | "src" => Some("sourceHostName"),
        "dvc" | "deviceAddress" => Some("deviceHostname"),
        _ => None,
    }
}

/// Whether a value is an IP address (v4 or v6, or a network such as `10.0.0.0/8`): what an
/// address key may hold.
pub fn is_ip(value: &str) -> bool {
    let value = value.trim();
    let (address, prefix) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (value, None),
    };
    let prefix_ok = prefix.is_none_or(|prefix| prefix.parse::<u8>().is_ok_and(|bits| bits <= 128));
    prefix_ok && address.parse::<std::net::IpAddr>().is_ok()
}

/// The CEF key the CIM table gives a Splunk field.
pub fn cim_to_cef(field: &str) -> Option<&'static str> {
    CIM_CEF.iter().find(|(cim, _)| *cim == field).map(|(_, cef)| *cef)
}

/// The `contains` types of a CEF key (for `cef_types`), when SOAR knows any.
pub fn contains(cef_key: &str) -> Option<&'static str> {
    CEF_CONTAINS.iter().find(|(key, _)| *key == cef_key).map(|(_, contains)| *contains)
}

/// Every (CIM field, CEF key) pair of the built-in table, for documentation and `check`.
pub fn table() -> &'static [(&'static str, &'static str)] {
    CIM_CEF
}

/// Splunk-internal fields that are not sent at all (neither CEF nor `data`). `_raw` and
/// `_time` are kept.
pub fn is_internal(field: &str) -> bool {
    const EXACT: &[&str] = &[
        "_bkt",
        "_cd",
        "_si",
        "_serial",
        "_indextime",
        "_sourcetype",
        "_subsecond",
        "_eventtype_color",
        "_kv",
        "punct",
        "linecount",
        "timestartpos",
        "timeendpos",
    ];
    EXACT.contains(&field)
        || field.starts_with("__mv_")
        || field.starts_with("date_")
        || field.starts_with("splunk_server")
        || field.starts_with("tag::")
}

/// The Splunk field → CEF key map of one alert: the built-in table under the admin's
/// `field_mapping` overrides (`splunk_field=cefKey,…`; `field=` keeps a field out of CEF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMapping {
    overrides: BTreeMap<String, Option<String>>,
}

impl FieldMapping {
    /// Parses the `field_mapping` parameter. The error text says which entry is wrong.
    pub fn parse(text: &str) -> Result<FieldMapping, String> {
        let mut overrides = BTreeMap::new();
        for entry in text.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some((field, key)) = entry.split_once('=') else {
                return Err(format!(
                    "entry \"{entry}\" is not splunk_field=cefKey (use field= to keep a field out of CEF)"
                ));
            };
            let (field, key) = (field.trim(), key.trim());
            if field.is_empty() || field.chars().any(|c| c.is_whitespace() || c == '=') {
                return Err(format!("entry \"{entry}\" has no usable Splunk field name"));
            }
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "entry \"{entry}\": CEF key \"{key}\" may only hold letters, digits and _"
                ));
            }
            if overrides.contains_key(field) {
                return Err(format!("field \"{field}\" is mapped twice"));
            }
            let key = (!key.is_empty()).then(|| key.to_string());
            overrides.insert(field.to_string(), key);
        }
        Ok(FieldMapping { overrides })
    }

    /// The CEF key of a Splunk field, if it maps to one.
    pub fn cef_key(&self, field: &str) -> Option<&str> {
        match self.overrides.get(field) {
            Some(key) => key.as_deref(),
            None => cim_to_cef(field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_entries_use_the_correct_spellings() {
        assert_eq!(cim_to_cef("src_user"), Some("sourceUserName"));
        assert_eq!(cim_to_cef("bytes_in"), Some("bytesIn"));
        assert_eq!(cim_to_cef("dest_translated_ip"), Some("destinationTranslatedAddress"));
        assert_eq!(cim_to_cef("src_host"), Some("sourceHostName"));
        assert_eq!(cim_to_cef("dest_host"), Some("destinationHostName"));
        assert_eq!(cim_to_cef("dvc_host"), Some("deviceHostname"));
        assert_eq!(cim_to_cef("src"), Some("sourceAddress"));
        assert_eq!(cim_to_cef("user"), Some("destinationUserName"));
        assert_eq!(cim_to_cef("url"), Some("requestURL"));
        assert_eq!(cim_to_cef("nonsense"), None);
    }

    #[test]
    fn every_table_target_is_spelled_like_cef() {
        for (_, key) in table() {
            assert!(!key.contains("butes") && !key.contains("Tranlsated"), "{key}");
        }
    }

    #[test]
    fn contains_types_follow_the_cef_metadata() {
        assert_eq!(contains("sourceAddress"), Some("ip"));
        assert_eq!(contains("destinationUserName"), Some("user name"));
        assert_eq!(contains("fileHash"), Some("hash"));
        assert_eq!(contains("requestURL"), Some("url"));
        assert_eq!(contains("deviceHostname"), Some("host name"));
        assert_eq!(contains("bytesIn"), None);
    }

    #[test]
    fn internal_fields_are_recognised_but_raw_and_time_are_kept() {
        for field in
            ["_bkt", "_cd", "_si", "date_hour", "punct", "splunk_server_group", "tag::host"]
        {
            assert!(is_internal(field), "{field}");
        }
        for field in ["_raw", "_time", "host", "tag", "date"] {
            assert!(!is_internal(field), "{field}");
        }
    }

    #[test]
    fn overrides_win_over_the_table_and_empty_keys_keep_fields_out() {
        let mapping = FieldMapping::parse(" src = deviceAddress ,user=, sig=cs1").unwrap();
        assert_eq!(mapping.cef_key("src"), Some("deviceAddress"));
        assert_eq!(mapping.cef_key("user"), None);
        assert_eq!(mapping.cef_key("sig"), Some("cs1"));
        assert_eq!(mapping.cef_key("dest"), Some("destinationAddress"));
        assert_eq!(FieldMapping::parse("").unwrap(), FieldMapping::default());
    }

    #[test]
    fn malformed_overrides_are_refused() {
        assert!(FieldMapping::parse("src").unwrap_err().contains("\"src\""));
        assert!(FieldMapping::parse("=sourceAddress").is_err());
        assert!(FieldMapping::parse("src=source Address").is_err());
        assert!(FieldMapping::parse("src=a,src=b").unwrap_err().contains("twice"));
    }
}
