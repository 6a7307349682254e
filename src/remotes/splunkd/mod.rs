//! The local splunkd's REST API, with the session key splunkd handed us: credentials from
//! `storage/passwords`, the KV store, and notable updates.
//!
//! Every call is authenticated with `Authorization: Splunk <session key>`. The local splunkd
//! usually serves Splunk's self-signed certificate, so `[splunkd] verify_ssl` defaults to
//! false; no proxy is ever used for it. A secret read is classified like any remote's answer
//! (`net::classify`): splunkd busy or unreachable defers, a refusal is a credentials error.

use crate::error::{Error, Result};
use crate::net::classify::{StatusClass, classify_status, classify_transport, server_message};
use crate::net::http::{HttpClient, HttpOptions, HttpResponse, TransportError};
use crate::net::{Outcome, RejectClass, form_encode, url_encode};
use crate::secret::Secret;
use crate::settings::Settings;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The app whose namespace holds our secrets and collections.
pub const APP: &str = "stackflow";
/// The `storage/passwords` realm of every StackFlow secret (PRODUCT §3).
pub const REALM: &str = "stackflow";

/// The user behind a session key (`authentication/current-context`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentContext {
    pub username: String,
    pub roles: Vec<String>,
    pub capabilities: Vec<String>,
    /// Whether the answer listed capabilities at all (every real splunkd does).
    pub lists_capabilities: bool,
}

impl CurrentContext {
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|held| held == capability)
    }
}

#[derive(Clone)]
pub struct Splunkd {
    base: String,
    session_key: Secret,
    http: HttpClient,
    /// How `http` was built (a search builds its own agent with the search's time budget).
    options: HttpOptions,
    /// The session's user, asked once per process (`authentication/current-context`).
    context: Arc<OnceLock<Option<CurrentContext>>>,
}

/// The capability that lets a user's runs read this app's secrets (authorize.conf; granted by
/// the `stackflow_user` role).
pub const READ_CREDENTIALS: &str = "stackflow_read_credentials";
/// Admins hold every capability through `admin_all_objects`; the scripted input runs as
/// `splunk-system-user`, which splunkd does not describe with capabilities.
const ADMIN_CAPABILITY: &str = "admin_all_objects";
pub const SYSTEM_USER: &str = "splunk-system-user";

/// The storage/passwords entry name of `<realm>:<username>:` as it goes in a URL path: splunkd
/// names an entry `realm:username:` with every `:` inside the realm or the user name escaped
/// as `\:` (Splunk REST API Reference, "storage/passwords"), then each part is percent-encoded,
/// so that no realm or user name can spell another entry's name.
pub fn password_entry_name(realm: &str, username: &str) -> String {
    let escaped = |part: &str| url_encode(&part.replace(':', "\\:"));
    format!("{}:{}:", escaped(realm), escaped(username))
}

/// A configuration error (exit 4) unless `username` is `<prefix>.<valid account>`: checked
/// before any request, so that a bad account name never reaches storage/passwords.
fn check_secret_user(username: &str) -> Result<()> {
    if crate::remotes::secrets::valid_user(username) {
        return Ok(());
    }
    let account = username.split_once('.').map_or(username, |(_, account)| account);
    crate::remotes::secrets::check_account(account, "storage/passwords user name")?;
    Err(Error::config("splunkd", "", format!("{username:?} is not a StackFlow secret name")))
}

/// What a failed secret read means for the run (see `Splunkd::secret`); `status` is the HTTP
/// status when splunkd answered at all.
fn secret_error(username: &str, status: Option<u16>, outcome: Outcome) -> Error {
    let rejection = match outcome {
        Outcome::Retry(retry) => return Error::Unavailable(retry.reason),
        Outcome::Rejected(rejection) => rejection,
        Outcome::Delivered(_) => {
            return Error::Internal(format!(
                "reading secret {REALM}:{username}: a failed answer was classified as delivered"
            ));
        }
    };
    match (status, rejection.class) {
        (_, RejectClass::Configuration) => Error::config("splunkd", "", rejection.reason),
        (Some(404), _) => Error::Credentials(format!(
            "no secret \"{username}\" in realm \"{REALM}\" of storage/passwords; store it on \
             the app's setup page (Apps > Manage Apps > StackFlow for Splunk > Set up) or with \
             `stackflow secret set {username}` (session key and secret on stdin)"
        )),
        (Some(status), RejectClass::Credentials) => Error::Credentials(format!(
            "splunkd refused to read secret {REALM}:{username} (HTTP {status}): the alert owner needs the \
             stackflow_user role (list_storage_passwords)"
        )),
        _ => Error::Credentials(rejection.reason),
    }
}

impl Splunkd {
    /// `server_uri` is what splunkd handed over (payload `server_uri`, search info
    /// `splunkd_uri`); when empty, `[splunkd] uri` / web.conf / the default decide.
    pub fn new(settings: &Settings, server_uri: &str, session_key: Secret) -> Result<Splunkd> {
        let base = if server_uri.trim().is_empty() {
            settings.splunkd_uri()
        } else {
            server_uri.trim().to_string()
        };
        let options = HttpOptions {
            tls: settings.tls("splunkd", false)?,
            proxy: None,
            timeout: Duration::from_secs(30),
        };
        let http = HttpClient::new(&options, "splunkd")?;
        Ok(Splunkd {
            base: base.trim_end_matches('/').to_string(),
            session_key,
            http,
            options,
            context: Arc::new(OnceLock::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn auth_header(&self) -> String {
        format!("Splunk {}", self.session_key.expose())
    }

    /// `GET <splunkd><path>`; a transport failure is returned as such, for the caller to judge.
    fn get(&self, path: &str) -> Result<HttpResponse, TransportError> {
        let auth = self.auth_header();
        self.http.get(&format!("{}{path}", self.base), &[("Authorization", auth.as_str())])
    }

    /// `POST <splunkd><path>` with a body of `content_type`.
    fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, TransportError> {
        let auth = self.auth_header();
        let headers = [("Authorization", auth.as_str()), ("Content-Type", content_type)];
        self.http.post(&format!("{}{path}", self.base), &headers, body)
    }

    /// A response, or the error its failure stands for, classified as every remote's answer is
    /// (`net::classify`): splunkd busy or unreachable is `Unavailable` (retry later), a
    /// refused session key `Credentials`, an untrusted certificate configuration, anything
    /// else `Rejected`.
    fn checked(
        &self,
        response: std::result::Result<HttpResponse, TransportError>,
        what: &str,
    ) -> Result<HttpResponse> {
        let what = format!("{what} (splunkd at {})", self.base);
        let outcome = match response {
            Err(error) => classify_transport(&error, &what),
            Ok(response) => match classify_status(&response, &what) {
                StatusClass::Success => return Ok(response),
                StatusClass::Failed(outcome) => outcome,
            },
        };
        Err(match outcome {
            Outcome::Retry(retry) => Error::Unavailable(retry.reason),
            Outcome::Rejected(rejection) => match rejection.class {
                RejectClass::Configuration => Error::config("splunkd", "", rejection.reason),
                RejectClass::Credentials => Error::Credentials(format!(
                    "{}: the session key was refused (expired, or the user lacks the capability)",
                    rejection.reason
                )),
                RejectClass::Remote => Error::Rejected(rejection.reason),
            },
            Outcome::Delivered(delivered) => Error::Internal(delivered.message),
        })
    }

    /// Reads `<realm>:<username>:` from storage/passwords.
    ///
    /// splunkd's answer goes through the classifier the remotes use (`net::classify`): a
    /// splunkd that is restarting or busy (5xx, 408, 429) or unreachable is `Unavailable` —
    /// the secret is probably fine, so the items are deferred to the spool (exit 7) and
    /// `spool flush` tries again — while a refusal (401/403), a missing secret (404) or any
    /// other rejection is a credentials error (exit 5), and an untrusted certificate or an
    /// unusable URL a configuration error (exit 4).
    pub fn secret(&self, username: &str) -> Result<Secret> {
        check_secret_user(username)?;
        self.check_read_credentials()?;
        let name = password_entry_name(REALM, username);
        let path = format!("/servicesNS/nobody/{APP}/storage/passwords/{name}?output_mode=json");
        let what = format!("cannot read secret {REALM}:{username} from splunkd at {}", self.base);
        let response = match self.get(&path) {
            Ok(response) => response,
            Err(error) => {
                return Err(secret_error(username, None, classify_transport(&error, &what)));
            }
        };
        if let StatusClass::Failed(outcome) = classify_status(&response, &what) {
            return Err(secret_error(username, Some(response.status), outcome));
        }
        let json = response.json().ok_or_else(|| {
            Error::Credentials(format!(
                "reading secret {REALM}:{username}: splunkd's answer is not JSON"
            ))
        })?;
        json.pointer("/entry/0/content/clear_password")
            .and_then(|value| value.as_str())
            .filter(|value| !value.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "secret {REALM}:{username} is empty in storage/passwords"
                ))
            })
    }

    /// The app's own gate on its secrets: the session's user must hold [`READ_CREDENTIALS`]
    /// (or be an admin — `admin_all_objects`, role `admin`/`sc_admin` — or splunkd's system
    /// user), whatever else lets them list storage/passwords. Defence in depth: when splunkd
    /// cannot say who the user is, the read goes ahead and splunkd's own access control
    /// decides.
    fn check_read_credentials(&self) -> Result<()> {
        let context = match self.current_context() {
            Ok(Some(context)) if context.lists_capabilities => context,
            // No endpoint, no capability list, or no answer: this gate cannot decide, and the
            // secret read that follows is still refused by splunkd's own access control.
            Ok(_) => return Ok(()),
            Err(error) => {
                log::debug!(
                    "cannot ask splunkd who the session's user is ({error}); reading the secret"
                );
                return Ok(());
            }
        };
        let admin = context.has_capability(ADMIN_CAPABILITY)
            || context.roles.iter().any(|role| role == "admin" || role == "sc_admin");
        if admin || context.has_capability(READ_CREDENTIALS) || context.username == SYSTEM_USER {
            return Ok(());
        }
        Err(Error::Credentials(format!(
            "the Splunk user \"{}\" lacks the capability {READ_CREDENTIALS}, which this app requires to read its secrets: give the alert owner the stackflow_user role",
            context.username
        )))
    }

    /// Creates or updates `<realm>:<username>:` in storage/passwords (`stackflow secret set`).
    ///
    /// `POST …/storage/passwords` with `name`, `realm`, `password` creates it; when splunkd
    /// answers 409 (it exists), `POST …/storage/passwords/<realm>:<username>:` with
    /// `password` updates it (Splunk REST API Reference, "storage/passwords"). The secret
    /// travels in the form body only, never in the URL. Returns whether it was created.
    pub fn store_secret(&self, username: &str, secret: &Secret) -> Result<bool> {
        check_secret_user(username)?;
        let base = format!("/servicesNS/nobody/{APP}/storage/passwords");
        let form = "application/x-www-form-urlencoded";
        let what = format!("storing secret {REALM}:{username}");
        let body = form_encode(&[
            ("name", username),
            ("realm", REALM),
            ("password", secret.expose()),
            ("output_mode", "json"),
        ]);
        let created = self.post(&base, form, body.as_bytes());
        if !matches!(&created, Ok(response) if response.status == 409) {
            return self.checked(created, &what).map(|_| true);
        }
        let name = password_entry_name(REALM, username);
        let body = form_encode(&[("password", secret.expose()), ("output_mode", "json")]);
        self.checked(self.post(&format!("{base}/{name}"), form, body.as_bytes()), &what)
            .map(|_| false)
    }

    /// The user names stored in realm [`REALM`] of this app's storage/passwords (never a
    /// value: the answer's `clear_password` is not read).
    pub fn secret_names(&self) -> Result<Vec<String>> {
        let path = format!(
            "/servicesNS/nobody/{APP}/storage/passwords?output_mode=json&count=0&search={}",
            url_encode(&format!("realm={REALM}"))
        );
        let what = "listing storage/passwords";
        let response = self.checked(self.get(&path), what)?;
        let json = response
            .json()
            .ok_or_else(|| Error::Rejected(format!("{what}: the answer is not JSON")))?;
        let mut names: Vec<String> = json
            .get("entry")
            .and_then(|entries| entries.as_array())
            .map(|entries| entries.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|entry| entry.get("content"))
            .filter(|content| content.get("realm").and_then(|v| v.as_str()) == Some(REALM))
            .filter_map(|content| content.get("username").and_then(|v| v.as_str()))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// `GET <splunkd><path>` as JSON; `None` on HTTP 404. `what` names the call in errors.
    pub fn get_json(&self, path: &str, what: &str) -> Result<Option<serde_json::Value>> {
        let response = self.get(path);
        if matches!(&response, Ok(response) if response.status == 404) {
            return Ok(None);
        }
        let response = self.checked(response, what)?;
        response
            .json()
            .map(Some)
            .ok_or_else(|| Error::Rejected(format!("{what}: the answer is not JSON")))
    }

    /// `GET /services/authentication/current-context`: who the session key belongs to and
    /// what they may do, asked once per process (a failure is not remembered). `None` when
    /// this splunkd has no such endpoint (HTTP 404).
    pub fn current_context(&self) -> Result<Option<CurrentContext>> {
        if let Some(known) = self.context.get() {
            return Ok(known.clone());
        }
        let context = self.fetch_current_context()?;
        let _ = self.context.set(context.clone());
        Ok(context)
    }

    fn fetch_current_context(&self) -> Result<Option<CurrentContext>> {
        let what = "splunkd GET /services/authentication/current-context";
        let response = self.get("/services/authentication/current-context?output_mode=json");
        if matches!(&response, Ok(response) if response.status == 404) {
            return Ok(None);
        }
        let response = self.checked(response, what)?;
        let json = response
            .json()
            .ok_or_else(|| Error::Rejected(format!("{what}: the answer is not JSON")))?;
        let content = json.pointer("/entry/0/content").unwrap_or(&serde_json::Value::Null);
        let strings = |key: &str| -> Vec<String> {
            content
                .get(key)
                .and_then(|list| list.as_array())
                .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        Ok(Some(CurrentContext {
            username: content.get("username").and_then(|v| v.as_str()).unwrap_or("?").to_string(),
            roles: strings("roles"),
            capabilities: strings("capabilities"),
            lists_capabilities: content.get("capabilities").is_some_and(|list| list.is_array()),
        }))
    }

    /// The installed Enterprise Security version: `GET /services/apps/local/
    /// SplunkEnterpriseSecuritySuite` → `entry[0].content.version`; `None` when ES is not
    /// installed (HTTP 404).
    pub fn es_version(&self) -> Result<Option<String>> {
        let what = "splunkd GET /services/apps/local/SplunkEnterpriseSecuritySuite";
        let response =
            self.get("/services/apps/local/SplunkEnterpriseSecuritySuite?output_mode=json");
        if matches!(&response, Ok(response) if response.status == 404) {
            return Ok(None);
        }
        let response = self.checked(response, what)?;
        let json = response
            .json()
            .ok_or_else(|| Error::Rejected(format!("{what}: the answer is not JSON")))?;
        Ok(json
            .pointer("/entry/0/content/version")
            .and_then(|version| version.as_str())
            .map(|version| version.trim().to_string())
            .filter(|version| !version.is_empty()))
    }

    /// `POST <splunkd><path_and_query>` of a JSON body; the answer parsed (`null` when empty or
    /// not JSON). `what` names the call in errors.
    pub fn post_json(
        &self,
        path_and_query: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<serde_json::Value> {
        let bytes = serde_json::to_vec(body).map_err(|error| Error::Internal(error.to_string()))?;
        let response = self.checked(self.post(path_and_query, "application/json", &bytes), what)?;
        Ok(response.json().unwrap_or(serde_json::Value::Null))
    }

    /// `POST /services/notable_update` with form fields; returns the parsed answer.
    pub fn notable_update(&self, form: &[(&str, &str)]) -> Result<serde_json::Value> {
        let mut pairs = form.to_vec();
        pairs.push(("output_mode", "json"));
        let body = form_encode(&pairs);
        let response = self.checked(
            self.post(
                "/services/notable_update",
                "application/x-www-form-urlencoded",
                body.as_bytes(),
            ),
            "notable_update",
        )?;
        let json = response.json().unwrap_or(serde_json::Value::Null);
        let failed = json.get("success").and_then(|value| value.as_bool()) == Some(false)
            || json.is_string();
        if failed {
            return Err(Error::Rejected(format!(
                "notable_update: splunkd answered HTTP {}: {}",
                response.status,
                server_message(&response)
            )));
        }
        Ok(json)
    }
}

mod kv;
pub mod notables;
pub mod search;
pub mod users;

#[cfg(test)]
mod tests;
