//! splunkd emulation: `storage/passwords` (one, list, create, update, delete), the app KV
//! store collection data API (insert, update, batch_save, query with `$or`/`$and`/`$not`/
//! `$gt`…/`$ne`/equality and the `$in` extension — refused with 400 when `kv_refuse_in` is set,
//! as a splunkd that keeps to its documented operators would — skip/limit/sort/fields,
//! delete by key or by query), `authentication/users` (by name, and
//! `search=email=…`), ES 7 `notable_update`, the ES app version, and ES 8's finding update and
//! notes endpoints; the search endpoints are in `splunkd_search.rs`.

#[path = "splunkd_kv.rs"]
mod kv_api;
#[path = "splunkd_search.rs"]
mod search;
pub(crate) use search::{apply_config as apply_search_config, snapshot as search_snapshot};

use crate::http::{Request, Response, decode, parse_form};
use kv_api::{kv, matches};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// One collection: documents in insertion order (the order an unsorted query answers in) and
/// an index by `_key`, so that get, replace and delete stay O(log n) at a large backlog (a
/// delete used to rebuild the index: the spool benchmark's KV drain was quadratic).
#[derive(Default)]
struct Collection {
    records: BTreeMap<u64, Value>,
    index: HashMap<String, u64>,
    next_seq: u64,
}

impl Collection {
    fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).and_then(|seq| self.records.get(seq))
    }
    fn all(&self) -> Vec<Value> {
        self.records.values().cloned().collect()
    }
    fn remove(&mut self, key: &str) {
        if let Some(seq) = self.index.remove(key) {
            self.records.remove(&seq);
        }
    }
    /// The records matching `query`, in insertion order. A query on `_key` alone (`{"_key":
    /// k}` or `{"_key": {"$in": [...]}}`, as the spool's claims and batched deletes send) is
    /// answered from the key index, as the KV store answers it from its `_key` index; any
    /// other query scans the collection.
    fn matching(&self, query: &Value) -> Vec<&Value> {
        match keys_of(query) {
            Some(keys) => {
                let mut seqs: Vec<u64> =
                    keys.iter().filter_map(|key| self.index.get(*key).copied()).collect();
                seqs.sort_unstable();
                seqs.dedup();
                seqs.iter().filter_map(|seq| self.records.get(seq)).collect()
            }
            None => self.records.values().filter(|r| matches(r, query)).collect(),
        }
    }
}

/// The keys of a query on `_key` alone (`{"_key": k}`, `{"_key": {"$in": [...]}}` or `{"$or":
/// [{"_key": k}, ...]}`); `None` for any other query.
fn keys_of(query: &Value) -> Option<Vec<&str>> {
    let object = query.as_object().filter(|object| object.len() == 1)?;
    if let Some(any) = object.get("$or") {
        let mut keys = Vec::new();
        for clause in any.as_array()? {
            keys.extend(keys_of(clause)?);
        }
        return Some(keys);
    }
    match object.get("_key")? {
        Value::String(key) => Some(vec![key.as_str()]),
        Value::Object(condition) if condition.len() == 1 => {
            condition.get("$in")?.as_array()?.iter().map(Value::as_str).collect()
        }
        _ => None,
    }
}

pub(crate) struct Splunkd {
    pub session_key: String,
    /// name (`realm:username:`) → (realm, username, clear password)
    secrets: BTreeMap<String, (String, String, String)>,
    kv: BTreeMap<String, Collection>,
    next_key: u64,
    /// The status of an insert whose `_key` exists (409 per public accounts; unverified).
    pub kv_conflict_status: u16,
    /// Answer 400 to a query that uses `$in`: the Splunk REST API Reference ("KV store
    /// endpoints", `storage/collections/data/{collection}`, parameter `query`) lists only the
    /// conditional operators `$gt $gte $lt $lte $ne` and the logical `$and $or $not`.
    pub kv_refuse_in: bool,
    pub notable_updates: Vec<Vec<(String, String)>>,
    pub notable_status: HashMap<String, String>,
    /// Capabilities of the session's user (`GET /services/authentication/current-context`).
    pub capabilities: Vec<String>,
    /// User name `current-context` reports (default `admin`).
    pub username: String,
    /// Roles `current-context` reports (default none: tests describe users by capabilities).
    pub roles: Vec<String>,
    /// Names of secrets created, updated (`realm:user:`) or deleted (`DELETE realm:user:`).
    pub secret_writes: Vec<String>,
    /// Version of the emulated Enterprise Security app (`None`: not installed, 404).
    pub es_version: Option<String>,
    /// ES 8 finding updates: `{"id", "notable_time", "body"}`.
    pub es8_updates: Vec<Value>,
    /// ES 8 notes: `{"id", "notable_time", "content"}`.
    pub es8_notes: Vec<Value>,
    /// `authentication/users` entries by name: `{"email", "roles", "capabilities"}`.
    pub users: BTreeMap<String, Value>,
    /// Search requests, jobs and their knobs (`splunkd_search.rs`).
    pub searches: search::Searches,
}

/// The name splunkd gives a storage/passwords entry: `realm:username:`, each `:` inside the
/// realm or the user name escaped as `\:` (Splunk REST API Reference, "storage/passwords"), so
/// that two different (realm, user) pairs never share a name.
pub(crate) fn entry_name(realm: &str, username: &str) -> String {
    let escape = |part: &str| part.replace(':', "\\:");
    format!("{}:{}:", escape(realm), escape(username))
}

fn messages(status: u16, kind: &str, text: &str) -> Response {
    Response::json(status, &json!({"messages": [{"type": kind, "text": text}]}))
}

impl Splunkd {
    pub fn new() -> Splunkd {
        Splunkd {
            session_key: "test-session-key".into(),
            secrets: BTreeMap::new(),
            kv: BTreeMap::new(),
            next_key: 1,
            kv_conflict_status: 409,
            kv_refuse_in: false,
            notable_updates: Vec::new(),
            notable_status: HashMap::new(),
            capabilities: [
                "edit_notable_events",
                "edit_storage_passwords",
                "list_storage_passwords",
                "stackflow_read_credentials",
                "stackflow_update_notables",
            ]
            .map(String::from)
            .to_vec(),
            secret_writes: Vec::new(),
            roles: Vec::new(),
            username: "admin".into(),
            es_version: None,
            es8_updates: Vec::new(),
            es8_notes: Vec::new(),
            users: BTreeMap::new(),
            searches: search::Searches::default(),
        }
    }
    pub fn set_secret(&mut self, realm: &str, username: &str, password: &str) {
        self.secrets
            .insert(entry_name(realm, username), (realm.into(), username.into(), password.into()));
    }
    pub fn secret(&self, realm: &str, username: &str) -> Option<String> {
        self.secrets.get(&entry_name(realm, username)).map(|(_, _, pw)| pw.clone())
    }
    pub fn kv_records(&self, collection: &str) -> Vec<Value> {
        self.kv.get(collection).map(Collection::all).unwrap_or_default()
    }
    pub fn kv_json(&self) -> Value {
        Value::Object(self.kv.iter().map(|(k, c)| (k.clone(), Value::Array(c.all()))).collect())
    }
    fn upsert(
        &mut self,
        collection: &str,
        mut rec: Value,
        replace_key: Option<&str>,
    ) -> Result<String, Response> {
        let Some(obj) = rec.as_object_mut() else {
            return Err(messages(400, "ERROR", "Request body must be a JSON object"));
        };
        let key = match (replace_key, obj.get("_key").and_then(Value::as_str)) {
            (Some(k), _) => k.to_string(),
            (None, Some(k)) => k.to_string(),
            (None, None) => {
                self.next_key += 1;
                format!("{:024x}", self.next_key)
            }
        };
        obj.insert("_key".into(), Value::String(key.clone()));
        obj.entry("_user").or_insert_with(|| "nobody".into());
        let c = self.kv.entry(collection.to_string()).or_default();
        match c.index.get(&key) {
            Some(&seq) => {
                c.records.insert(seq, rec);
            }
            None => {
                c.next_seq += 1;
                c.index.insert(key.clone(), c.next_seq);
                c.records.insert(c.next_seq, rec);
            }
        }
        Ok(key)
    }
    fn secret_entry(&self, name: &str) -> Value {
        let (realm, user, pw) = &self.secrets[name];
        json!({"name": name, "id": format!("/servicesNS/nobody/-/storage/passwords/{name}"),
               "content": {"clear_password": pw, "realm": realm, "username": user, "password": "********"}})
    }
}

pub(crate) fn handle(s: &mut Splunkd, req: &Request) -> Response {
    if req.header("authorization") != Some(format!("Splunk {}", s.session_key).as_str()) {
        return messages(401, "WARN", "call not properly authenticated");
    }
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let m = req.method.as_str();
    match segs.as_slice() {
        ["services", "notable_update"] if m == "POST" => notable_update(s, req),
        ["services", "apps", "local", "SplunkEnterpriseSecuritySuite"] if m == "GET" => {
            match &s.es_version {
                Some(version) => Response::json(
                    200,
                    &json!({"entry": [{"name": "SplunkEnterpriseSecuritySuite",
                        "content": {"version": version, "disabled": false, "label": "Enterprise Security"}}]}),
                ),
                None => messages(
                    404,
                    "ERROR",
                    "Application does not exist: SplunkEnterpriseSecuritySuite",
                ),
            }
        }
        ["servicesNS", "nobody", "missioncontrol", "v1", "investigations", id]
            if m == "POST" && s.es_version.is_some() =>
        {
            es8_update(s, req, &decode(id, false))
        }
        [
            "servicesNS",
            "nobody",
            "missioncontrol",
            "public",
            "v2",
            "investigations",
            id,
            "notes",
        ] if m == "POST" && s.es_version.is_some() => es8_note(s, req, &decode(id, false)),
        ["services", "authentication", "users", name] if m == "GET" => {
            let name = decode(name, false);
            match s.users.get(&name) {
                Some(content) => {
                    Response::json(200, &json!({"entry": [{"name": name, "content": content}]}))
                }
                None => messages(404, "ERROR", &format!("User does not exist: {name}")),
            }
        }
        ["services", "authentication", "users"] if m == "GET" => {
            // `search=email=<value>`: splunkd's substring match on the field, case-insensitive.
            let search = req.query_param("search").unwrap_or_default().to_lowercase();
            let wanted = search.strip_prefix("email=").map(str::to_string);
            let entries: Vec<Value> = s
                .users
                .iter()
                .filter(|(_, content)| match &wanted {
                    Some(email) => content["email"]
                        .as_str()
                        .is_some_and(|e| e.to_lowercase().contains(email.as_str())),
                    None => true,
                })
                .map(|(name, content)| json!({"name": name, "content": content}))
                .collect();
            Response::json(200, &json!({"entry": entries}))
        }
        ["services", "authentication", "current-context"] if m == "GET" => Response::json(
            200,
            &json!({"entry": [{"name": s.username, "content": {"username": s.username, "roles": s.roles, "capabilities": s.capabilities}}]}),
        ),
        // Reading storage/passwords takes list_storage_passwords (or more) (Splunk
        // authorize.conf.spec: "Lets a user read from (GET) the /storage/passwords endpoint").
        ["servicesNS", _, _, "storage", "passwords", ..] if m == "GET" && !may_read_secrets(s) => {
            messages(
                403,
                "ERROR",
                &format!(
                    "You (user={}) do not have permission to perform this operation (requires capability: list_storage_passwords OR edit_storage_passwords OR admin_all_objects).",
                    s.username
                ),
            )
        }
        ["servicesNS", _, _, "storage", "passwords"] if m == "GET" => {
            let search = req.query_param("search").unwrap_or_default();
            // `field=value` filters on that field of the entry's content, anything else on
            // the name (Splunk REST API Reference, "Request and response details": search).
            let wanted = |name: &String| match search.split_once('=') {
                Some((field, value)) => {
                    s.secret_entry(name)["content"][field].as_str() == Some(value)
                }
                None => name.contains(search.as_str()),
            };
            let entries: Vec<Value> =
                s.secrets.keys().filter(|n| wanted(n)).map(|n| s.secret_entry(n)).collect();
            Response::json(
                200,
                &json!({"entry": entries, "paging": {"total": entries.len(), "offset": 0}}),
            )
        }
        ["servicesNS", _, _, "storage", "passwords", name] if m == "GET" => {
            // The name exactly as splunkd wrote it (after percent-decoding), or without its
            // trailing `:`; an unescaped `:` is a separator, never part of a realm or user.
            let name = decode(name, false);
            let found =
                [name.clone(), format!("{name}:")].into_iter().find(|n| s.secrets.contains_key(n));
            match found {
                Some(n) => Response::json(200, &json!({"entry": [s.secret_entry(&n)]})),
                None => messages(404, "ERROR", &format!("Could not find object id={name}")),
            }
        }
        ["servicesNS", _, _, "storage", "passwords"] if m == "POST" => create_secret(s, req),
        ["servicesNS", _, _, "storage", "passwords", name] if m == "POST" || m == "DELETE" => {
            update_secret(s, req, &decode(name, false))
        }
        ["servicesNS", _, _, "storage", "collections", "data", coll, rest @ ..] => {
            kv(s, req, &decode(coll, false), rest)
        }
        ["servicesNS", user, app, "search", rest @ ..] => {
            search::handle(s, req, Some((user, app)), rest)
        }
        ["services", "search", rest @ ..] => search::handle(s, req, None, rest),
        _ => messages(404, "ERROR", &format!("Not Found: {}", req.path)),
    }
}

/// Writing storage/passwords takes an admin (`admin_all_objects`) or, since Splunk 9.0,
/// `edit_storage_passwords` (Splunk authorize.conf.spec).
fn may_write_secrets(s: &Splunkd) -> bool {
    s.capabilities.iter().any(|c| c == "admin_all_objects" || c == "edit_storage_passwords")
}

/// splunkd's own system user (scheduled searches owned by nobody, passAuth inputs) is not
/// described by capabilities and may read them.
fn may_read_secrets(s: &Splunkd) -> bool {
    may_write_secrets(s)
        || s.username == "splunk-system-user"
        || s.capabilities.iter().any(|c| c == "list_storage_passwords")
}

/// `POST storage/passwords` (`name`, `realm`, `password`): 201, or 409 when it exists.
fn create_secret(s: &mut Splunkd, req: &Request) -> Response {
    if !may_write_secrets(s) {
        return messages(
            403,
            "ERROR",
            "You (user=admin) do not have permission to perform this operation (requires capability: edit_storage_passwords).",
        );
    }
    let form = parse_form(&req.body);
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(user), Some(password)) = (field("name"), field("password")) else {
        return messages(400, "ERROR", "Missing argument: name and password are required");
    };
    let realm = field("realm").unwrap_or_default();
    let name = entry_name(&realm, &user);
    if s.secrets.contains_key(&name) {
        return messages(409, "ERROR", &format!("An object with name={name} already exists"));
    }
    s.set_secret(&realm, &user, &password);
    s.secret_writes.push(name.clone());
    Response::json(201, &json!({"entry": [s.secret_entry(&name)]}))
}

/// `POST storage/passwords/<realm:user:>` (`password`) updates; `DELETE` removes.
fn update_secret(s: &mut Splunkd, req: &Request, name: &str) -> Response {
    if !may_write_secrets(s) {
        return messages(
            403,
            "ERROR",
            "You (user=admin) do not have permission to perform this operation (requires capability: edit_storage_passwords).",
        );
    }
    if !s.secrets.contains_key(name) {
        return messages(404, "ERROR", &format!("Could not find object id={name}"));
    }
    if req.method == "DELETE" {
        s.secrets.remove(name);
        s.secret_writes.push(format!("DELETE {name}"));
        return Response::json(200, &json!({"entry": []}));
    }
    let form = parse_form(&req.body);
    let Some((_, password)) = form.iter().find(|(n, _)| n == "password") else {
        return messages(400, "ERROR", "Missing argument: password");
    };
    if let Some(entry) = s.secrets.get_mut(name) {
        entry.2 = password.clone();
    }
    s.secret_writes.push(name.to_string());
    Response::json(200, &json!({"entry": [s.secret_entry(name)]}))
}

fn notable_update(s: &mut Splunkd, req: &Request) -> Response {
    let form = parse_form(&req.body);
    let ids: Vec<&String> =
        form.iter().filter(|(k, _)| k == "ruleUIDs" || k == "ruleUIDs[]").map(|(_, v)| v).collect();
    if ids.is_empty() && !form.iter().any(|(k, _)| k == "searchID") {
        return Response::json(
            400,
            &json!({"success": false, "message": "ruleUIDs or searchID is required"}),
        );
    }
    if let Some((_, status)) = form.iter().find(|(k, _)| k == "status") {
        for id in &ids {
            s.notable_status.insert((*id).clone(), status.clone());
        }
    }
    let n = ids.len();
    s.notable_updates.push(form.clone());
    let mut body = Map::new();
    body.insert("success".into(), true.into());
    body.insert("message".into(), format!("{n} event(s) updated successfully").into());
    body.insert("failure_count".into(), 0.into());
    Response::json(200, &Value::Object(body))
}

/// ES 8 `POST …/missioncontrol/v1/investigations/<finding id>?notable_time=<t>`: only
/// `assignee`, `status`, `urgency`, `disposition` may change (Ansible `splunk.es` finding.py).
fn es8_update(s: &mut Splunkd, req: &Request, id: &str) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
        return messages(400, "ERROR", "Request body must be a JSON object");
    };
    if let Some(key) = body
        .keys()
        .find(|k| !["assignee", "status", "urgency", "disposition"].contains(&k.as_str()))
    {
        return messages(400, "ERROR", &format!("Field {key} cannot be updated"));
    }
    if body.is_empty() {
        return messages(400, "ERROR", "Nothing to update");
    }
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        s.notable_status.insert(id.to_string(), status.to_string());
    }
    s.es8_updates
        .push(json!({"id": id, "notable_time": req.query_param("notable_time"), "body": body}));
    Response::json(200, &json!({"id": id, "updated": true}))
}

/// ES 8 `POST …/missioncontrol/public/v2/investigations/<id>/notes`: `{"content": …}`.
fn es8_note(s: &mut Splunkd, req: &Request, id: &str) -> Response {
    let content = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_string));
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return messages(400, "ERROR", "content is required");
    };
    s.es8_notes.push(
        json!({"id": id, "notable_time": req.query_param("notable_time"), "content": content}),
    );
    Response::json(201, &json!({"id": format!("note-{}", s.es8_notes.len()), "content": content}))
}
