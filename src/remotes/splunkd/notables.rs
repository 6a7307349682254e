//! The one way this app changes ES notables (findings): status, owner, disposition and a
//! note/comment, behind `NotableUpdater`, used by `| stackflowsync` and by the Slack buttons.
//!
//! - ES 7 (and ES 8 when configured so): `POST /services/notable_update` with `ruleUIDs`
//!   repeated, `status`, `newOwner`, `disposition`, `comment` — one request for many notables
//!   (ES "Notable Event API").
//! - ES 8: Mission Control's investigations API, as Red Hat's Ansible collection `splunk.es`
//!   (`splunk_finding`, `splunk_notes`) calls it: `POST servicesNS/nobody/missioncontrol/v1/
//!   investigations/<url-encoded finding id>?notable_time=<t>` with JSON `{status, assignee,
//!   disposition}`, and a note as `POST servicesNS/nobody/missioncontrol/public/v2/
//!   investigations/<id>/notes?notable_time=<t>` with `{"content": …}`. `notable_time` is the
//!   digits after `@@time` in the finding id (omitted when the id has none). The API updates
//!   one finding per request. These paths are not documented by Splunk (unverified), so both
//!   are settings (`[notables] es8_update_path`, `es8_notes_path`).
//!
//! Which API: `[notables] api = auto` (default) asks splunkd for the ES app version once
//! (`apps/local/SplunkEnterpriseSecuritySuite`): major version 8 or later → ES 8's API,
//! otherwise (or no ES) `notable_update`; `api = notable_update` / `es8` forces one.

use super::Splunkd;
use crate::error::{Error, Result};
use crate::net::url_encode;
use crate::settings::Settings;
use serde_json::{Map, Value};

pub const DEFAULT_ES8_UPDATE_PATH: &str =
    "/servicesNS/nobody/missioncontrol/v1/investigations/{id}";
pub const DEFAULT_ES8_NOTES_PATH: &str =
    "/servicesNS/nobody/missioncontrol/public/v2/investigations/{id}/notes";

/// One change applied to one or more notables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotableChange {
    /// Notable `event_id`s (ES 8: finding ids).
    pub event_ids: Vec<String>,
    /// ES status code (0 unassigned … 5 closed).
    pub status: Option<u32>,
    /// Splunk user name of the new owner.
    pub owner: Option<String>,
    /// `disposition:N`.
    pub disposition: Option<String>,
    /// The comment (ES 7) / note (ES 8).
    pub comment: Option<String>,
}

/// Which API an updater uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EsApi {
    NotableUpdate,
    Es8,
}

pub trait NotableUpdater {
    fn api(&self) -> EsApi;
    /// Applies the change; `Err` names what failed (the notables of a failed request are not
    /// changed by it; with ES 8, earlier findings of the same change may have been).
    fn update(&self, change: &NotableChange) -> std::result::Result<(), String>;
    /// Requests sent so far.
    fn requests(&self) -> usize;
}

/// `[notables]` of stackflow.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotableSettings {
    /// `auto`, `notable_update` or `es8`.
    pub api: String,
    pub es8_update_path: String,
    pub es8_notes_path: String,
}

impl NotableSettings {
    pub fn from_settings(settings: &Settings) -> Result<NotableSettings> {
        let value = |key: &str, default: &str| {
            settings.conf.get_nonempty("notables", key).unwrap_or(default).trim().to_string()
        };
        let api = value("api", "auto");
        if !matches!(api.as_str(), "auto" | "notable_update" | "es8") {
            return Err(Error::config(
                "notables",
                "api",
                format!("\"{api}\" is not one of auto, notable_update, es8"),
            ));
        }
        let path = |key: &str, default: &str| -> Result<String> {
            let path = value(key, default);
            if !path.starts_with("/services") || !path.contains("{id}") || path.contains('?') {
                return Err(Error::config(
                    "notables",
                    key,
                    format!(
                        "\"{path}\": a splunkd path starting with /services or /servicesNS, containing {{id}}, without a query"
                    ),
                ));
            }
            Ok(path)
        };
        Ok(NotableSettings {
            api,
            es8_update_path: path("es8_update_path", DEFAULT_ES8_UPDATE_PATH)?,
            es8_notes_path: path("es8_notes_path", DEFAULT_ES8_NOTES_PATH)?,
        })
    }
}

/// The major version of a version string (`8.1.0` → 8).
pub fn major_version(version: &str) -> Option<u32> {
    version.trim().split(['.', '-', ' ']).next()?.parse().ok()
}

/// The updater for this splunkd (asks it for the ES version when `api = auto`).
pub fn open(settings: &Settings, splunkd: &Splunkd) -> Result<Box<dyn NotableUpdater>> {
    let config = NotableSettings::from_settings(settings)?;
    let api = match config.api.as_str() {
        "es8" => EsApi::Es8,
        "notable_update" => EsApi::NotableUpdate,
        _ => match splunkd.es_version() {
            Ok(version) => match version.as_deref().and_then(major_version) {
                Some(major) if major >= 8 => EsApi::Es8,
                _ => EsApi::NotableUpdate,
            },
            // splunkd busy: the caller retries later; anything else (e.g. the user may not
            // read apps/local) keeps the API every ES version has documented.
            Err(error @ Error::Unavailable(_)) => return Err(error),
            Err(error) => {
                log::warn!(
                    "cannot read the Enterprise Security version ({error}); using /services/notable_update (set [notables] api = es8 for ES 8)"
                );
                EsApi::NotableUpdate
            }
        },
    };
    let requests = std::cell::Cell::new(0);
    Ok(match api {
        EsApi::NotableUpdate => Box::new(NotableUpdate { splunkd: splunkd.clone(), requests }),
        EsApi::Es8 => Box::new(Es8 { splunkd: splunkd.clone(), config, requests }),
    })
}

struct NotableUpdate {
    splunkd: Splunkd,
    requests: std::cell::Cell<usize>,
}

impl NotableUpdater for NotableUpdate {
    fn api(&self) -> EsApi {
        EsApi::NotableUpdate
    }

    fn update(&self, change: &NotableChange) -> std::result::Result<(), String> {
        let status = change.status.map(|status| status.to_string());
        let mut form: Vec<(&str, &str)> =
            change.event_ids.iter().map(|event_id| ("ruleUIDs", event_id.as_str())).collect();
        let optional = [
            ("status", status.as_deref()),
            ("newOwner", change.owner.as_deref()),
            ("disposition", change.disposition.as_deref()),
            ("comment", change.comment.as_deref()),
        ];
        form.extend(optional.into_iter().filter_map(|(key, value)| value.map(|v| (key, v))));
        self.requests.set(self.requests.get() + 1);
        self.splunkd.notable_update(&form).map(|_| ()).map_err(|error| error.to_string())
    }

    fn requests(&self) -> usize {
        self.requests.get()
    }
}

struct Es8 {
    splunkd: Splunkd,
    config: NotableSettings,
    requests: std::cell::Cell<usize>,
}

/// `?notable_time=<digits after "@@time">` of a finding id, or nothing.
pub fn notable_time_query(finding_id: &str) -> String {
    finding_id
        .rsplit_once("time")
        .map(|(_, digits)| digits)
        .filter(|digits| !digits.is_empty() && digits.len() <= 12)
        .filter(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()))
        .map(|digits| format!("?notable_time={digits}"))
        .unwrap_or_default()
}

impl NotableUpdater for Es8 {
    fn api(&self) -> EsApi {
        EsApi::Es8
    }

    fn update(&self, change: &NotableChange) -> std::result::Result<(), String> {
        let mut fields = Map::new();
        if let Some(status) = change.status {
            fields.insert("status".into(), Value::String(status.to_string()));
        }
        if let Some(owner) = &change.owner {
            fields.insert("assignee".into(), Value::String(owner.clone()));
        }
        if let Some(disposition) = &change.disposition {
            fields.insert("disposition".into(), Value::String(disposition.clone()));
        }
        let note = change.comment.as_deref().filter(|note| !note.trim().is_empty());
        for finding in &change.event_ids {
            let id = url_encode(finding);
            let query = notable_time_query(finding);
            if !fields.is_empty() {
                let path = self.config.es8_update_path.replace("{id}", &id);
                self.requests.set(self.requests.get() + 1);
                self.splunkd
                    .post_json(
                        &format!("{path}{query}"),
                        &Value::Object(fields.clone()),
                        &format!("ES 8 finding update of {finding}"),
                    )
                    .map_err(|error| error.to_string())?;
            }
            if let Some(note) = note {
                let path = self.config.es8_notes_path.replace("{id}", &id);
                self.requests.set(self.requests.get() + 1);
                self.splunkd
                    .post_json(
                        &format!("{path}{query}"),
                        &serde_json::json!({"content": note}),
                        &format!("ES 8 note on {finding}"),
                    )
                    .map_err(|error| error.to_string())?;
            }
        }
        Ok(())
    }

    fn requests(&self) -> usize {
        self.requests.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn settings(text: &str) -> Settings {
        Settings::from_conf(ConfFile::parse_str(text), None, None)
    }

    #[test]
    fn settings_default_and_checked() {
        let config = NotableSettings::from_settings(&settings("")).unwrap();
        assert_eq!(config.api, "auto");
        assert_eq!(config.es8_update_path, DEFAULT_ES8_UPDATE_PATH);
        for bad in [
            "[notables]\napi = es9\n",
            "[notables]\nes8_update_path = /x/{id}\n",
            "[notables]\nes8_notes_path = /services/x\n",
            "[notables]\nes8_notes_path = /services/{id}?a=b\n",
        ] {
            let error = NotableSettings::from_settings(&settings(bad)).unwrap_err();
            assert!(error.to_string().contains("[notables]"), "{bad}: {error}");
        }
    }

    #[test]
    fn versions_and_finding_times() {
        assert_eq!(major_version("8.1.0"), Some(8));
        assert_eq!(major_version("7.3.2"), Some(7));
        assert_eq!(major_version("10"), Some(10));
        assert_eq!(major_version("x"), None);
        assert_eq!(
            notable_time_query("2008e99d-af14-4fec-89da-b9b17a81820a@@notable@@time1768225865"),
            "?notable_time=1768225865"
        );
        assert_eq!(notable_time_query("1A082D7B@@notable@@0123456789abcdef"), "");
        assert_eq!(notable_time_query("x@@notable@@time"), "");
        assert_eq!(notable_time_query("x@@time99999999999999999999"), "");
    }
}
