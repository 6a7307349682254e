//! Typed views of `stackflow.conf` (PRODUCT §3) shared by every command.
//!
//! The conf is read once (default/ then local/), then each consumer asks for the part it needs
//! and gets a typed struct or an `Error::Config` naming file, stanza and key. Per-target account
//! settings (`[soar:<account>]` …) are read by the targets themselves through
//! `Settings::account`, so that the names of their keys live next to the code that uses them.

use crate::error::{Error, Result};
use crate::splunk::conf::{self, ConfFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod keys;

pub const CONF_NAME: &str = "stackflow.conf";
pub const DEFAULT_SPLUNKD_URI: &str = "https://127.0.0.1:8089";

/// Everything a command needs to know about where it runs and how it is configured.
#[derive(Clone, Debug)]
pub struct Settings {
    pub conf: ConfFile,
    pub app_dir: Option<PathBuf>,
    pub splunk_home: Option<PathBuf>,
}

/// One account stanza: its keys are read through `get`, which knows the one table.
#[derive(Debug)]
pub struct Section<'a> {
    conf: &'a ConfFile,
    stanza: String,
    settings: &'a BTreeMap<String, String>,
}

impl<'a> Section<'a> {
    pub fn get(&self, key: &str) -> Option<&'a String> {
        self.conf.assert_documented(&self.stanza, key);
        self.settings.get(key)
    }
}

/// TLS policy for one remote: verification on unless turned off, optional private CA bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub verify: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub spool_dir: PathBuf,
    /// `[delivery] retry_base_s`: first retry delay; the spool waits 120× this between flushes.
    pub retry_base: Duration,
    /// `[delivery] flush_max_items`: most items one `spool flush` sends.
    pub flush_max_items: usize,
    /// `[delivery] flush_max_s`: how long one `spool flush` keeps starting new items.
    pub flush_max_time: Duration,
    /// `[delivery] store`: where the spool lives.
    pub store: StoreKind,
    /// `[delivery] lease_s`: how long a KV store claim holds before another member may take over.
    pub lease_s: f64,
    /// `[delivery] kvstore_conflict_status`: the KV store's answer to an insert whose `_key`
    /// exists (409 per public accounts; unverified).
    pub kvstore_conflict_status: u16,
    /// `[delivery] ledger_retention_days`: how long the delivery ledger remembers a delivery.
    pub ledger_retention: Duration,
}

/// Where the spool lives (PRODUCT §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    File,
    KvStore,
}

impl Settings {
    /// Loads the installed app's configuration (see `conf::app_dir`).
    pub fn load() -> Result<Settings> {
        let app_dir = conf::app_dir();
        let conf = match &app_dir {
            Some(dir) => ConfFile::load_app_conf(dir, CONF_NAME)?,
            None => ConfFile::default(),
        };
        let splunk_home = conf::splunk_home(app_dir.as_deref());
        Ok(Settings::from_conf(conf, app_dir, splunk_home))
    }

    pub fn from_conf(
        conf: ConfFile,
        app_dir: Option<PathBuf>,
        splunk_home: Option<PathBuf>,
    ) -> Settings {
        let mut conf = conf;
        // Readers use only documented keys (PRODUCT §15): checked on every read in debug builds.
        conf.set_schema(keys::is_known);
        Settings { conf, app_dir, splunk_home }
    }

    /// The `[<kind>:<account>]` stanza, or a configuration error that lists the accounts that do exist.
    pub fn account(&self, kind: &str, account: &str) -> Result<Section<'_>> {
        let stanza = format!("{kind}:{account}");
        let settings = self.conf.stanza(&stanza).ok_or_else(|| {
            let prefix = format!("{kind}:");
            let known: Vec<&str> = self
                .conf
                .stanza_names()
                .filter_map(|name| name.strip_prefix(prefix.as_str()))
                .collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            Error::config(
                &stanza,
                "",
                format!("unknown {kind} account \"{account}\" (configured: {known})"),
            )
        })?;
        Ok(Section { conf: &self.conf, stanza, settings })
    }

    /// `verify_ssl` and `ca_file` of a stanza. A CA file that does not exist is a configuration
    /// error now, not a TLS failure later.
    pub fn tls(&self, stanza: &str, verify_default: bool) -> Result<TlsSettings> {
        let verify = match self.conf.get_nonempty(stanza, "verify_ssl") {
            None => verify_default,
            Some(value) => conf::parse_bool(value).ok_or_else(|| {
                Error::config(stanza, "verify_ssl", format!("\"{value}\" is not a boolean"))
            })?,
        };
        let ca_file = self.conf.get_nonempty(stanza, "ca_file").map(|path| self.resolve_path(path));
        if let Some(path) = &ca_file
            && !path.is_file()
        {
            return Err(Error::config(
                stanza,
                "ca_file",
                format!("{} does not exist", path.display()),
            ));
        }
        Ok(TlsSettings { verify, ca_file })
    }

    /// `[proxy] url`, if set.
    pub fn proxy(&self) -> Option<String> {
        self.conf.get_nonempty("proxy", "url").map(str::to_string)
    }

    /// `[delivery] timeout_s`: the limit of one request to a remote.
    pub fn request_timeout(&self) -> Result<Duration> {
        let timeout_s = self.parse_number("delivery", "timeout_s", 30.0)?;
        if !(timeout_s > 0.0 && timeout_s <= 3600.0) {
            return Err(Error::config(
                "delivery",
                "timeout_s",
                "must be between 0 and 3600 seconds",
            ));
        }
        Ok(Duration::from_secs_f64(timeout_s))
    }

    pub fn delivery(&self) -> Result<DeliverySettings> {
        let timeout = self.request_timeout()?;
        let max_attempts = self.parse_number("delivery", "max_attempts", 5.0)?;
        if !(1.0..=100.0).contains(&max_attempts) {
            return Err(Error::config("delivery", "max_attempts", "must be between 1 and 100"));
        }
        let retry_base_s = self.parse_number("delivery", "retry_base_s", 0.5)?;
        if !(0.001..=60.0).contains(&retry_base_s) {
            return Err(Error::config(
                "delivery",
                "retry_base_s",
                "must be between 0.001 and 60 seconds",
            ));
        }
        let spool_dir = match self.conf.get_nonempty("delivery", "spool_dir") {
            Some(dir) => self.resolve_path(dir),
            None => match &self.splunk_home {
                Some(home) => home.join("var").join("spool").join("stackflow"),
                None => {
                    return Err(Error::config(
                        "delivery",
                        "spool_dir",
                        "not set and SPLUNK_HOME is unknown: set spool_dir or SPLUNK_HOME",
                    ));
                }
            },
        };
        let flush_max_items = self.parse_number("delivery", "flush_max_items", 10_000.0)?;
        if !(1.0..=1_000_000.0).contains(&flush_max_items) {
            return Err(Error::config(
                "delivery",
                "flush_max_items",
                "must be between 1 and 1000000",
            ));
        }
        let flush_max_s = self.parse_number("delivery", "flush_max_s", 50.0)?;
        if !(1.0..=86_400.0).contains(&flush_max_s) {
            return Err(Error::config(
                "delivery",
                "flush_max_s",
                "must be between 1 and 86400 seconds",
            ));
        }
        let store = match self.conf.get_nonempty("delivery", "store") {
            Some("file") => StoreKind::File,
            Some("kvstore") => StoreKind::KvStore,
            Some(_) => return Err(Error::config("delivery", "store", "must be kvstore or file")),
            None if self.is_shc_member() => StoreKind::KvStore,
            None => StoreKind::File,
        };
        let lease_s = self.parse_number("delivery", "lease_s", 120.0)?;
        if !(1.0..=86_400.0).contains(&lease_s) {
            return Err(Error::config(
                "delivery",
                "lease_s",
                "must be between 1 and 86400 seconds",
            ));
        }
        let conflict = self.parse_number("delivery", "kvstore_conflict_status", 409.0)?;
        if !(400.0..=599.0).contains(&conflict) || conflict.fract() != 0.0 {
            return Err(Error::config(
                "delivery",
                "kvstore_conflict_status",
                "must be an HTTP status between 400 and 599",
            ));
        }
        let retention_days = self.parse_number("delivery", "ledger_retention_days", 30.0)?;
        if !(1.0..=3650.0).contains(&retention_days) {
            return Err(Error::config(
                "delivery",
                "ledger_retention_days",
                "must be between 1 and 3650 days",
            ));
        }
        Ok(DeliverySettings {
            timeout,
            max_attempts: max_attempts as u32,
            spool_dir,
            retry_base: Duration::from_secs_f64(retry_base_s),
            flush_max_items: flush_max_items as usize,
            flush_max_time: Duration::from_secs_f64(flush_max_s),
            store,
            lease_s,
            kvstore_conflict_status: conflict as u16,
            ledger_retention: Duration::from_secs_f64(retention_days * 86400.0),
        })
    }

    /// `[slack_response] max_concurrent_searches` (PRODUCT §16): the most triage searches one
    /// listener runs at once (1 to 16, default 2).
    pub fn max_concurrent_searches(&self) -> Result<usize> {
        let key = "max_concurrent_searches";
        let value = self.parse_number("slack_response", key, 2.0)?;
        if !(1.0..=16.0).contains(&value) || value.fract() != 0.0 {
            return Err(Error::config(
                "slack_response",
                key,
                "must be a whole number from 1 to 16",
            ));
        }
        Ok(value as usize)
    }

    /// The index receipts go to.
    pub fn receipts_index(&self) -> String {
        self.conf.get_nonempty("receipts", "index").unwrap_or("stackflow").to_string()
    }

    /// Whether this instance is a search head cluster member: `etc/system/local/server.conf`
    /// has a `[shclustering]` stanza that is not disabled (`mode = member|captain`, or no
    /// `disabled = true`). The shipped default server.conf has the stanza disabled, so only the
    /// local layer counts.
    pub fn is_shc_member(&self) -> bool {
        let Some(home) = &self.splunk_home else { return false };
        let Ok(server) = ConfFile::read_layer(&home.join("etc/system/local/server.conf")) else {
            return false;
        };
        if !server.has_stanza("shclustering") {
            return false;
        }
        let disabled = server
            .get_nonempty("shclustering", "disabled")
            .and_then(crate::splunk::conf::parse_bool)
            .unwrap_or(false);
        let mode = server.get_nonempty("shclustering", "mode").unwrap_or("member");
        !disabled && mode != "disabled"
    }

    /// The local splunkd: `[splunkd] uri`, else web.conf `mgmtHostPort`, else the default.
    pub fn splunkd_uri(&self) -> String {
        if let Some(uri) = self.conf.get_nonempty("splunkd", "uri") {
            return uri.trim_end_matches('/').to_string();
        }
        if let Some(home) = &self.splunk_home {
            let mut web = ConfFile::default();
            for layer in ["etc/system/default/web.conf", "etc/system/local/web.conf"] {
                if let Ok(conf) = ConfFile::read_layer(&home.join(layer)) {
                    web.overlay(conf);
                }
            }
            if let Some(host_port) = web.get_nonempty("settings", "mgmtHostPort") {
                return format!("https://{host_port}");
            }
        }
        DEFAULT_SPLUNKD_URI.to_string()
    }

    /// `$SPLUNK_HOME`-relative and `$SPLUNK_HOME`-prefixed paths become absolute.
    pub fn resolve_path(&self, value: &str) -> PathBuf {
        let home = self.splunk_home.as_deref().unwrap_or(Path::new(""));
        let expanded = value
            .strip_prefix("$SPLUNK_HOME")
            .map(|rest| home.join(rest.trim_start_matches(['/', '\\'])))
            .unwrap_or_else(|| PathBuf::from(value));
        if expanded.is_relative() && !home.as_os_str().is_empty() {
            home.join(expanded)
        } else {
            expanded
        }
    }

    fn parse_number(&self, stanza: &str, key: &str, default: f64) -> Result<f64> {
        match self.conf.get_nonempty(stanza, key) {
            None => Ok(default),
            Some(value) => {
                value.parse::<f64>().ok().filter(|number| number.is_finite()).ok_or_else(|| {
                    Error::config(stanza, key, format!("\"{value}\" is not a number"))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str, home: Option<&str>) -> Settings {
        Settings::from_conf(ConfFile::parse_str(text), None, home.map(PathBuf::from))
    }

    #[test]
    fn unknown_account_lists_the_configured_ones() {
        let settings =
            settings("[soar:default]\nurl = https://x\n[soar:lab]\nurl = https://y\n", None);
        let message = settings.account("soar", "prod").unwrap_err().to_string();
        assert!(
            message.contains("unknown soar account \"prod\" (configured: default, lab)"),
            "{message}"
        );
    }

    #[test]
    fn spool_dir_defaults_under_splunk_home() {
        let settings = settings("", Some("/opt/splunk"));
        let delivery = settings.delivery().unwrap();
        assert_eq!(delivery.spool_dir, PathBuf::from("/opt/splunk/var/spool/stackflow"));
        assert_eq!(delivery.max_attempts, 5);
        assert_eq!(delivery.timeout, Duration::from_secs(30));
        assert_eq!(delivery.retry_base, Duration::from_millis(500));
    }

    #[test]
    fn the_store_is_kvstore_on_a_cluster_member_and_file_elsewhere() {
        let home = std::env::temp_dir().join(format!("stackflow-shc-{}", std::process::id()));
        let local = home.join("etc/system/local");
        std::fs::create_dir_all(&local).unwrap();
        let home_text = home.to_str().unwrap();
        let store = |conf: &str| settings(conf, Some(home_text)).delivery().unwrap().store;
        assert_eq!(store(""), StoreKind::File, "no server.conf");
        for (server, expected) in [
            ("[general]\nserverName = sh1\n", StoreKind::File),
            ("[shclustering]\nmode = member\n", StoreKind::KvStore),
            ("[shclustering]\ndisabled = 0\nid = x\n", StoreKind::KvStore),
            ("[shclustering]\ndisabled = true\n", StoreKind::File),
        ] {
            std::fs::write(local.join("server.conf"), server).unwrap();
            assert_eq!(store(""), expected, "{server}");
        }
        std::fs::write(local.join("server.conf"), "[shclustering]\nmode = member\n").unwrap();
        assert_eq!(store("[delivery]\nstore = file\n"), StoreKind::File, "the setting wins");
        let bad = settings("[delivery]\nstore = mongo\n", Some(home_text)).delivery();
        assert!(bad.unwrap_err().to_string().contains("[delivery] store"));
        let delivery = settings("", Some(home_text)).delivery().unwrap();
        assert_eq!((delivery.lease_s, delivery.kvstore_conflict_status), (120.0, 409));
        assert_eq!(delivery.ledger_retention, Duration::from_secs(30 * 86400));
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn bad_numbers_name_the_key() {
        let settings = settings("[delivery]\ntimeout_s = soon\n", Some("/opt/splunk"));
        let message = settings.delivery().unwrap_err().to_string();
        assert!(message.contains("[delivery] timeout_s"), "{message}");
    }

    #[test]
    fn max_concurrent_searches_defaults_to_two_and_names_the_key() {
        assert_eq!(settings("", None).max_concurrent_searches().unwrap(), 2);
        let four = settings("[slack_response]\nmax_concurrent_searches = 4\n", None);
        assert_eq!(four.max_concurrent_searches().unwrap(), 4);
        for bad in ["0", "2.5", "17", "lots"] {
            let text = format!("[slack_response]\nmax_concurrent_searches = {bad}\n");
            let error = settings(&text, None).max_concurrent_searches().unwrap_err().to_string();
            assert!(error.contains("[slack_response] max_concurrent_searches"), "{bad}: {error}");
        }
    }

    #[test]
    fn splunkd_uri_prefers_conf_then_default() {
        assert_eq!(
            settings("[splunkd]\nuri = https://sh:8089/\n", None).splunkd_uri(),
            "https://sh:8089"
        );
        assert_eq!(settings("", None).splunkd_uri(), DEFAULT_SPLUNKD_URI);
    }
}
