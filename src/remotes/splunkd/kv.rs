//! The app's KV store collections through splunkd's REST API (`storage/collections/data`):
//! insert, update, batch save, query, delete — with queries kept to the operators splunkd
//! documents; a `$in` the KV store refuses falls back to `$or` here, for every caller.

use super::{APP, Splunkd};
use crate::error::{Error, Result};
use crate::net::http::{HttpResponse, TransportError};
use crate::net::url_encode;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, Ordering};

impl Splunkd {
    /// Upserts records (each with `_key`) into a KV store collection.
    pub fn kv_batch_save(&self, collection: &str, records: &[Value]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let path = format!(
            "/servicesNS/nobody/{APP}/storage/collections/data/{}/batch_save",
            url_encode(collection)
        );
        let body =
            serde_json::to_vec(records).map_err(|error| Error::Internal(error.to_string()))?;
        let response = self.post(&path, "application/json", &body);
        self.checked(response, &format!("KV store {collection} batch_save")).map(|_| ())
    }

    /// Queries a KV store collection with a Mongo-style query object.
    pub fn kv_query(&self, collection: &str, query: &Value) -> Result<Vec<Value>> {
        self.kv_query_page(collection, query, 0, 0)
    }

    /// One page of a query: at most `limit` records (0: splunkd's own cap) after `skip`,
    /// ordered by `_key` so that consecutive pages neither repeat nor skip a record.
    pub fn kv_query_page(
        &self,
        collection: &str,
        query: &Value,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>> {
        self.kv_query_fields(collection, query, skip, limit, None)
    }

    fn kv_path(collection: &str, key: Option<&str>) -> String {
        let mut path =
            format!("/servicesNS/nobody/{APP}/storage/collections/data/{}", url_encode(collection));
        if let Some(key) = key {
            path.push('/');
            path.push_str(&url_encode(key));
        }
        path
    }

    /// One document by `_key`; `None` when there is none (HTTP 404).
    pub fn kv_get(&self, collection: &str, key: &str) -> Result<Option<Value>> {
        let path = format!("{}?output_mode=json", Self::kv_path(collection, Some(key)));
        self.get_json(&path, &format!("KV store {collection} GET {key}"))
    }

    /// Inserts a document (with its `_key`). `Ok(false)` when a document with that key exists:
    /// the KV store's answer is `conflict_status` (409 per the public accounts; unverified, so
    /// configurable: `[delivery] kvstore_conflict_status`). This insert is the only conditional
    /// write the KV store offers; leases are built on it.
    pub fn kv_insert(
        &self,
        collection: &str,
        document: &Value,
        conflict_status: u16,
    ) -> Result<bool> {
        let body =
            serde_json::to_vec(document).map_err(|error| Error::Internal(error.to_string()))?;
        let response = self.post(&Self::kv_path(collection, None), "application/json", &body);
        if matches!(&response, Ok(response) if response.status == conflict_status) {
            return Ok(false);
        }
        self.checked(response, &format!("KV store {collection} insert")).map(|_| true)
    }

    /// Replaces the document `key` (creating it when absent).
    pub fn kv_update(&self, collection: &str, key: &str, document: &Value) -> Result<()> {
        let body =
            serde_json::to_vec(document).map_err(|error| Error::Internal(error.to_string()))?;
        let response = self.post(&Self::kv_path(collection, Some(key)), "application/json", &body);
        self.checked(response, &format!("KV store {collection} update {key}")).map(|_| ())
    }

    /// Deletes the document `key` (absent is fine).
    pub fn kv_delete(&self, collection: &str, key: &str) -> Result<()> {
        let auth = self.auth_header();
        let url = format!("{}{}", self.base, Self::kv_path(collection, Some(key)));
        let response = self.http.delete(&url, &[("Authorization", auth.as_str())]);
        if matches!(&response, Ok(response) if response.status == 404) {
            return Ok(());
        }
        self.checked(response, &format!("KV store {collection} delete {key}")).map(|_| ())
    }

    /// Deletes the documents whose `_key` is one of `keys`, in one request: `DELETE` on the
    /// collection with a `query` deletes what matches it (splunk-sdk-python,
    /// `KVStoreCollectionData.delete(query)`); keys already gone are fine.
    pub fn kv_delete_keys(&self, collection: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.kv_delete_query(collection, &json!({"_key": {"$in": keys}}))
    }

    /// Deletes the documents matching `query` (see `kv_delete_keys`). Never call it with an
    /// empty query: that deletes the whole collection. A `$in` the KV store refuses is sent
    /// again as `$or` (see [`without_in`]).
    pub fn kv_delete_query(&self, collection: &str, query: &Value) -> Result<()> {
        let what = format!("KV store {collection} delete by query");
        let response = self.kv_with_fallback(query, &what, |query| {
            let auth = self.auth_header();
            let url = format!(
                "{}{}?query={}",
                self.base,
                Self::kv_path(collection, None),
                url_encode(&query.to_string())
            );
            self.http.delete(&url, &[("Authorization", auth.as_str())])
        });
        self.checked(response, &what).map(|_| ())
    }

    /// `kv_query_page` returning only `fields` when given (KV store REST parameter `fields`),
    /// so that a page of large documents stays small.
    pub fn kv_query_fields(
        &self,
        collection: &str,
        query: &Value,
        skip: usize,
        limit: usize,
        fields: Option<&str>,
    ) -> Result<Vec<Value>> {
        self.kv_query_sorted(collection, query, "_key", skip, limit, fields)
    }

    /// One page of a query ordered by `sort` (`<field>:1` ascending, `<field>:-1` descending,
    /// comma-separated), at most `limit` records (0: no page, splunkd's own cap) after `skip`.
    /// Splunk REST API Reference, "KV store endpoints", `storage/collections/data/{collection}`
    /// GET: parameters `query`, `sort`, `limit`, `skip`, `fields`.
    pub fn kv_query_sorted(
        &self,
        collection: &str,
        query: &Value,
        sort: &str,
        skip: usize,
        limit: usize,
        fields: Option<&str>,
    ) -> Result<Vec<Value>> {
        let what = format!("KV store {collection}");
        let response = self.kv_with_fallback(query, &what, |query| {
            let mut path = format!(
                "{}?output_mode=json&query={}",
                Self::kv_path(collection, None),
                url_encode(&query.to_string())
            );
            if limit != 0 {
                path.push_str(&format!("&sort={}&skip={skip}&limit={limit}", url_encode(sort)));
            }
            if let Some(fields) = fields {
                path.push_str("&fields=");
                path.push_str(&url_encode(fields));
            }
            self.get(&path)
        });
        let response = self.checked(response, &what)?;
        match response.json() {
            Some(Value::Array(records)) => Ok(records),
            _ => Err(Error::Rejected(format!(
                "KV store {collection}: the answer is not a JSON array"
            ))),
        }
    }

    /// Sends `query` through `send`; when it uses `$in` and the KV store answers 400 (it is not
    /// among the operators splunkd documents), sends it again as `$or` of equalities and
    /// remembers, for the rest of the process, to send `$or` directly.
    fn kv_with_fallback(
        &self,
        query: &Value,
        what: &str,
        send: impl Fn(&Value) -> std::result::Result<HttpResponse, TransportError>,
    ) -> std::result::Result<HttpResponse, TransportError> {
        if !uses_in(query) {
            return send(query);
        }
        if IN_REFUSED.load(Ordering::Relaxed) {
            return send(&without_in(query));
        }
        let response = send(query);
        if !matches!(&response, Ok(response) if response.status == 400) {
            return response;
        }
        IN_REFUSED.store(true, Ordering::Relaxed);
        log::info!(
            "{what}: the KV store refused the query operator $in (HTTP 400); sending $or of equalities from now on"
        );
        send(&without_in(query))
    }
}

/// Set once the KV store answered 400 to a `$in`: every later query of this process is sent
/// with `$or` instead.
static IN_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether a query uses `$in` anywhere.
fn uses_in(query: &Value) -> bool {
    match query {
        Value::Object(map) => map.iter().any(|(key, value)| key == "$in" || uses_in(value)),
        Value::Array(items) => items.iter().any(uses_in),
        _ => false,
    }
}

/// `query` with every `{"<field>": {"$in": [a, b]}}` written with the operators splunkd
/// documents for KV store queries (`$gt $gte $lt $lte $ne $and $or $not`, Splunk REST API
/// Reference, "KV store endpoints", query parameter): `{"$or": [{"<field>": a}, {"<field>":
/// b}]}`, the field's other conditions kept beside it under `$and`. An empty `$in` (nothing
/// matches) becomes a condition no value meets (`$gt` and `$lt` the empty string at once);
/// callers never send one.
pub fn without_in(query: &Value) -> Value {
    match query {
        Value::Array(items) => Value::Array(items.iter().map(without_in).collect()),
        Value::Object(map) => {
            let mut kept = Map::new();
            let mut clauses: Vec<Value> = Vec::new();
            for (key, value) in map {
                let in_list = value.as_object().and_then(|condition| condition.get("$in"));
                let Some(list) = in_list.filter(|_| !key.starts_with('$')) else {
                    kept.insert(key.clone(), without_in(value));
                    continue;
                };
                let mut rest = value.as_object().cloned().unwrap_or_default();
                rest.remove("$in");
                if !rest.is_empty() {
                    clauses.push(json!({ key.as_str(): without_in(&Value::Object(rest)) }));
                }
                let values = list.as_array().map(Vec::as_slice).unwrap_or_default();
                clauses.push(match values {
                    [] => json!({"$and": [{ key.as_str(): {"$gt": ""} }, { key.as_str(): {"$lt": ""} }]}),
                    [one] => json!({ key.as_str(): one }),
                    many => json!({"$or": many.iter().map(|v| json!({ key.as_str(): v })).collect::<Vec<_>>()}),
                });
            }
            if clauses.is_empty() {
                return Value::Object(kept);
            }
            if !kept.is_empty() {
                clauses.insert(0, Value::Object(kept));
            }
            if clauses.len() == 1 { clauses.remove(0) } else { json!({"$and": clauses}) }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_becomes_or_of_equalities() {
        let query = json!({"_key": {"$in": ["a", "b"]}});
        assert!(uses_in(&query));
        let plain = without_in(&query);
        assert_eq!(plain, json!({"$or": [{"_key": "a"}, {"_key": "b"}]}));
        assert!(!uses_in(&plain));
        let mixed = json!({"state": "new", "n": {"$in": [1], "$ne": 3}});
        assert_eq!(
            without_in(&mixed),
            json!({"$and": [{"state": "new"}, {"n": {"$ne": 3}}, {"n": 1}]})
        );
        let nested = json!({"$or": [{"x": {"$in": ["p", "q"]}}, {"y": 1}]});
        assert_eq!(
            without_in(&nested),
            json!({"$or": [{"$or": [{"x": "p"}, {"x": "q"}]}, {"y": 1}]})
        );
        let empty = without_in(&json!({"k": {"$in": []}}));
        assert!(!uses_in(&empty) && empty.get("$and").is_some(), "{empty}");
        assert_eq!(without_in(&json!({"a": {"$gte": 1}})), json!({"a": {"$gte": 1}}));
    }
}
