//! Splunk `.conf` files: parsing and the default/ then local/ layering.
//!
//! Splunk's grammar differs from INI in ways that matter for correctness: comments are only
//! lines that start with `#` (a `#` after a value is part of the value), keys are case
//! sensitive, a trailing backslash continues a value on the next line, and a later layer
//! overrides single keys, not whole stanzas. Hence a small parser of our own instead of an
//! INI crate. Values are trimmed; empty values are kept (an empty value is a real setting
//! that means "use the fallback"). A layer that exists but cannot be read is a configuration
//! error (exit 4) naming the file.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One conf file (or the merge of several layers): stanza → key → value.
#[derive(Clone, Debug, Default)]
pub struct ConfFile {
    stanzas: BTreeMap<String, BTreeMap<String, String>>,
    /// The file's documented keys, when its reader knows them: in debug builds a read of any
    /// other key is a bug (a setting `stackflow check` would call unknown), so it panics.
    schema: Option<Schema>,
}

/// Whether `(stanza, key)` is documented.
pub type Schema = fn(&str, &str) -> bool;

impl PartialEq for ConfFile {
    fn eq(&self, other: &ConfFile) -> bool {
        self.stanzas == other.stanzas
    }
}

impl Eq for ConfFile {}

impl ConfFile {
    /// Parses conf text. Settings before the first stanza header go to `default`, as in Splunk.
    pub fn parse_str(text: &str) -> ConfFile {
        let mut conf = ConfFile::default();
        let mut stanza = String::from("default");
        let mut lines = text.lines();
        while let Some(raw_line) = lines.next() {
            let line = raw_line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                stanza = line[1..line.len() - 1].trim().to_string();
                conf.stanzas.entry(stanza.clone()).or_default();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let mut value = value.trim().to_string();
            while value.ends_with('\\') {
                value.pop();
                value.push('\n');
                match lines.next() {
                    Some(next) => value.push_str(next.trim()),
                    None => break,
                }
            }
            conf.stanzas
                .entry(stanza.clone())
                .or_default()
                .insert(key.trim().to_string(), value.trim().to_string());
        }
        conf
    }

    /// Reads one file; a missing file is an empty layer (local/ usually does not exist). A file
    /// that exists but cannot be read (permissions, a directory in its place, a FIFO) is a
    /// configuration error naming the path: the admin can fix it, it is not a bug.
    pub fn read_layer(path: &Path) -> Result<ConfFile> {
        let unreadable = |problem: String| Error::Config {
            file: path.display().to_string(),
            stanza: String::new(),
            key: String::new(),
            problem,
        };
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfFile::default());
            }
            Ok(metadata) if !metadata.is_file() => {
                let what = if metadata.is_dir() { "a directory" } else { "not a regular file" };
                return Err(unreadable(format!("cannot read: {what}")));
            }
            _ => {}
        }
        match std::fs::read(path) {
            Ok(bytes) => Ok(ConfFile::parse_str(&String::from_utf8_lossy(&bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(ConfFile::default()),
            Err(error) => Err(unreadable(format!("cannot read: {error}"))),
        }
    }

    /// `default/<name>` overlaid by `local/<name>` of one app directory.
    pub fn load_app_conf(app_dir: &Path, name: &str) -> Result<ConfFile> {
        let mut conf = ConfFile::read_layer(&app_dir.join("default").join(name))?;
        conf.overlay(ConfFile::read_layer(&app_dir.join("local").join(name))?);
        Ok(conf)
    }

    /// Key-by-key override: `upper` wins where it sets a key.
    pub fn overlay(&mut self, upper: ConfFile) {
        for (stanza, settings) in upper.stanzas {
            self.stanzas.entry(stanza).or_default().extend(settings);
        }
    }

    /// Declares the documented keys: reads of others panic in debug builds (see `schema`).
    pub fn set_schema(&mut self, schema: Schema) {
        self.schema = Some(schema);
    }

    /// Panics in debug builds when a reader asks for a key its file does not document.
    pub fn assert_documented(&self, stanza: &str, key: &str) {
        if let Some(documented) = self.schema {
            debug_assert!(
                documented(stanza, key),
                "[{stanza}] {key} is read but not documented (settings::keys, the one table)"
            );
        }
    }

    pub fn get(&self, stanza: &str, key: &str) -> Option<&str> {
        self.assert_documented(stanza, key);
        self.stanzas.get(stanza).and_then(|settings| settings.get(key)).map(String::as_str)
    }

    /// A value that is set and not empty.
    pub fn get_nonempty(&self, stanza: &str, key: &str) -> Option<&str> {
        self.get(stanza, key).filter(|value| !value.is_empty())
    }

    pub fn has_stanza(&self, stanza: &str) -> bool {
        self.stanzas.contains_key(stanza)
    }

    pub fn stanza_names(&self) -> impl Iterator<Item = &str> {
        self.stanzas.keys().map(String::as_str)
    }

    pub fn stanza(&self, stanza: &str) -> Option<&BTreeMap<String, String>> {
        self.stanzas.get(stanza)
    }
}

/// Splunk's boolean spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// Where the app is installed: the folder above the executable's `bin/` (or `<platform>/bin/`).
/// `STACKFLOW_APP_DIR` overrides it for development runs outside an installed app.
pub fn app_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STACKFLOW_APP_DIR") {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    let bin_dir = exe.parent()?;
    let above_bin = bin_dir.parent()?;
    if above_bin.join("default").is_dir() {
        return Some(above_bin.to_path_buf());
    }
    // <app>/<platform>/bin/stackflow
    let app = above_bin.parent()?;
    app.join("default").is_dir().then(|| app.to_path_buf())
}

/// `$SPLUNK_HOME`, else derived from an app installed under `$SPLUNK_HOME/etc/apps/<app>`.
pub fn splunk_home(app_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("SPLUNK_HOME").filter(|home| !home.is_empty()) {
        return Some(PathBuf::from(home));
    }
    let apps = app_dir?.parent()?;
    if apps.file_name()? != "apps" {
        return None;
    }
    Some(apps.parent()?.parent()?.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_after_a_value_is_part_of_the_value() {
        let conf = ConfFile::parse_str(
            "[slack:default]\nchannel = #soc-alerts\n# a comment\nurl = a # b\n",
        );
        assert_eq!(conf.get("slack:default", "channel"), Some("#soc-alerts"));
        assert_eq!(conf.get("slack:default", "url"), Some("a # b"));
    }

    #[test]
    fn continuation_lines_join_and_keys_are_case_sensitive() {
        let conf = ConfFile::parse_str("[a]\nKey = one \\\n  two\nkey = x\n");
        assert_eq!(conf.get("a", "Key"), Some("one \ntwo"));
        assert_eq!(conf.get("a", "key"), Some("x"));
    }

    #[test]
    fn local_overrides_single_keys_not_whole_stanzas() {
        let mut conf = ConfFile::parse_str("[soar:default]\nurl = https://a\nlabel = events\n");
        conf.overlay(ConfFile::parse_str("[soar:default]\nurl = https://b\n"));
        assert_eq!(conf.get("soar:default", "url"), Some("https://b"));
        assert_eq!(conf.get("soar:default", "label"), Some("events"));
    }

    #[test]
    fn an_unreadable_layer_is_a_configuration_error_naming_the_path() {
        let dir = std::env::temp_dir().join(format!("stackflow-conf-{}", std::process::id()));
        let path = dir.join("stackflow.conf");
        std::fs::create_dir_all(&path).unwrap();
        let error = ConfFile::read_layer(&path).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("a directory"), "{message}");
        assert_eq!(ConfFile::read_layer(&dir.join("missing.conf")).unwrap(), ConfFile::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn empty_values_are_kept_but_not_nonempty() {
        let conf = ConfFile::parse_str("[proxy]\nurl =\n");
        assert_eq!(conf.get("proxy", "url"), Some(""));
        assert_eq!(conf.get_nonempty("proxy", "url"), None);
    }
}
