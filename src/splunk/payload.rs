//! The alert payload splunkd writes to an alert action's stdin (`payload_format = json`).
//!
//! Everything arrives as strings; `configuration` holds the merged `param.*` values without the
//! `param.` prefix; `result` is the first row. An XML payload (the splunkd default) is refused
//! with a message that names the setting to change; anything but one JSON object (an array, a
//! string, a number) is a bad payload too.

use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// Payloads larger than this are not something splunkd writes (the first row is the biggest part).
const MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct AlertPayload {
    #[serde(default, deserialize_with = "lenient_string")]
    pub app: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub owner: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub results_file: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub results_link: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub search_uri: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub server_host: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub server_uri: String,
    #[serde(default)]
    pub session_key: Secret,
    #[serde(default, deserialize_with = "lenient_string")]
    pub sid: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub search_name: String,
    /// Set for per-result alerts (`alert.digest_mode = 0`).
    #[serde(default, deserialize_with = "lenient_optional_string")]
    pub result_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_map")]
    pub configuration: BTreeMap<String, String>,
    /// The first result row, as splunkd sends it (multivalue fields are arrays).
    #[serde(default)]
    pub result: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AlertPayload {
    /// Reads and parses the payload; `stanza` names the action in the XML hint.
    pub fn read(input: impl Read, stanza: &str) -> Result<AlertPayload> {
        let mut bytes = Vec::new();
        input
            .take(MAX_PAYLOAD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| Error::Payload(format!("cannot read stdin: {error}")))?;
        if bytes.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(Error::Payload(format!("stdin holds more than {MAX_PAYLOAD_BYTES} bytes")));
        }
        AlertPayload::parse(&bytes, stanza)
    }

    pub fn parse(bytes: &[u8], stanza: &str) -> Result<AlertPayload> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let first = bytes.iter().copied().find(|byte| !byte.is_ascii_whitespace());
        match first {
            None => {
                return Err(Error::Payload(
                    "stdin was empty: splunkd sends the alert payload there".into(),
                ));
            }
            Some(b'<') => {
                return Err(Error::Payload(format!(
                    "the payload is XML; set payload_format = json in alert_actions.conf [{stanza}]"
                )));
            }
            // serde reads a struct from an array too (fields by position, missing ones
            // defaulted), which would turn `[]` into a payload without a results file.
            Some(b'[') => {
                return Err(Error::Payload(
                    "the payload is a JSON array: splunkd sends one JSON object".into(),
                ));
            }
            _ => {}
        }
        let payload: AlertPayload = serde_json::from_slice(bytes).map_err(|error| {
            Error::Payload(format!(
                "not valid JSON (line {}, column {}): {error}",
                error.line(),
                error.column()
            ))
        })?;
        Ok(payload)
    }

    /// A `configuration` value, trimmed, if set and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.configuration.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
    }

    /// `configuration.verbose` is truthy (ModularAction convention).
    pub fn verbose(&self) -> bool {
        self.param("verbose").and_then(crate::splunk::conf::parse_bool).unwrap_or(false)
    }
}

fn value_to_string(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text,
        serde_json::Value::Array(values) => {
            values.into_iter().map(value_to_string).collect::<Vec<_>>().join("\n")
        }
        other => other.to_string(),
    }
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    serde_json::Value::deserialize(deserializer).map(value_to_string)
}

fn lenient_optional_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Null => None,
        other => Some(value_to_string(other)),
    })
}

fn lenient_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    match value {
        serde_json::Value::Object(map) => {
            Ok(map.into_iter().map(|(key, value)| (key, value_to_string(value))).collect())
        }
        serde_json::Value::Null => Ok(BTreeMap::new()),
        _ => Err(serde::de::Error::custom("configuration must be an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_splunk_payload_shape() {
        let payload = AlertPayload::parse(
            br#"{"app":"search","owner":"admin","results_file":"/x/results.csv.gz","sid":"scheduler__a","search_name":"t",
                "server_uri":"https://127.0.0.1:8089","session_key":"abc","configuration":{"account":"default","max_rows":10},
                "result":{"_si":["a","b"],"host":"h"}}"#,
            "stackflow_soar",
        )
        .unwrap();
        assert_eq!(payload.param("account"), Some("default"));
        assert_eq!(payload.param("max_rows"), Some("10"));
        assert_eq!(payload.session_key.expose(), "abc");
        assert!(payload.result_id.is_none());
        assert!(!format!("{payload:?}").contains("abc"));
    }

    #[test]
    fn xml_names_the_setting_to_change() {
        let error = AlertPayload::parse(b"  <?xml version=\"1.0\"?><alert/>", "stackflow_soar")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("payload_format = json in alert_actions.conf [stackflow_soar]")
        );
        assert_eq!(error.exit_code(), crate::error::ExitCode::BadInvocation);
    }

    #[test]
    fn arrays_and_other_non_objects_are_bad_payloads() {
        for input in [&b"[]"[..], b" [{\"results_file\": \"/x.csv.gz\"}]", b"42", b"\"x\"", b"null"]
        {
            let error = AlertPayload::parse(input, "stackflow_soar").unwrap_err();
            assert_eq!(error.exit_code(), crate::error::ExitCode::BadInvocation, "{error}");
        }
        let error = AlertPayload::parse(b"[]", "stackflow_soar").unwrap_err().to_string();
        assert!(error.contains("JSON array"), "{error}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let payload =
            AlertPayload::parse(b"\xEF\xBB\xBF{\"sid\": \"s\"}", "stackflow_soar").unwrap();
        assert_eq!(payload.sid, "s");
        let error = AlertPayload::parse(b"\xEF\xBB\xBF <alert/>", "stackflow_soar").unwrap_err();
        assert!(error.to_string().contains("payload_format = json"), "{error}");
    }

    #[test]
    fn malformed_json_says_where() {
        let error = AlertPayload::parse(b"{\"sid\": ", "stackflow_soar").unwrap_err().to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
