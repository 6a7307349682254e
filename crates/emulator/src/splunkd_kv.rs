//! The emulated KV store's collection data API (`storage/collections/data/<collection>`):
//! insert, update, batch_save, query (`$or`/`$and`/`$not`/`$gt`…/`$ne`/equality and the `$in`
//! extension, refused with 400 when `kv_refuse_in` is set), skip/limit/sort (`<field>:1|-1`, partial selection)/fields, delete
//! by key or by query.

use super::{Splunkd, messages};
use crate::http::{Request, Response, decode};
use serde_json::{Map, Value, json};

pub(super) fn kv(s: &mut Splunkd, req: &Request, coll: &str, rest: &[&str]) -> Response {
    let body = || {
        serde_json::from_slice::<Value>(&req.body)
            .map_err(|e| messages(400, "ERROR", &format!("Invalid JSON: {e}")))
    };
    let result = match (req.method.as_str(), rest) {
        ("POST", ["batch_save"]) => body().and_then(|v| match v {
            Value::Array(items) => {
                let keys: Result<Vec<String>, Response> =
                    items.into_iter().map(|r| s.upsert(coll, r, None)).collect();
                keys.map(|k| Response::json(200, &json!(k)))
            }
            _ => Err(messages(400, "ERROR", "batch_save expects a JSON array")),
        }),
        ("POST", []) => body().and_then(|v| {
            let exists = v
                .get("_key")
                .and_then(Value::as_str)
                .is_some_and(|k| s.kv.get(coll).is_some_and(|c| c.index.contains_key(k)));
            if exists {
                return Err(messages(
                    s.kv_conflict_status,
                    "ERROR",
                    "A document with the same key and user already exists.",
                ));
            }
            s.upsert(coll, v, None).map(|k| Response::json(201, &json!({"_key": k})))
        }),
        ("POST", [key]) => {
            let key = decode(key, false);
            body()
                .and_then(|v| s.upsert(coll, v, Some(&key)))
                .map(|k| Response::json(200, &json!({"_key": k})))
        }
        ("GET", []) => {
            let query = match req.query_param("query").filter(|q| !q.is_empty()) {
                Some(q) => match serde_json::from_str::<Value>(&q) {
                    Ok(v) => v,
                    Err(e) => return messages(400, "ERROR", &format!("Invalid query: {e}")),
                },
                None => json!({}),
            };
            if s.kv_refuse_in && uses_in(&query) {
                return refused_in();
            }
            let skip: usize = req.query_param("skip").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = req
                .query_param("limit")
                .and_then(|v| v.parse().ok())
                .filter(|&l| l > 0)
                .unwrap_or(usize::MAX);
            let mut found: Vec<&Value> =
                s.kv.get(coll).map(|c| c.matching(&query)).unwrap_or_default();
            if let Some(sort) = req.query_param("sort").filter(|sort| !sort.is_empty()) {
                sorted(&mut found, &sort, skip.saturating_add(limit));
            }
            let fields = req.query_param("fields").filter(|f| !f.is_empty());
            let out: Vec<Value> = found
                .into_iter()
                .skip(skip)
                .take(limit)
                .map(|r| match &fields {
                    Some(fields) => project(r, fields),
                    None => r.clone(),
                })
                .collect();
            Ok(Response::json(200, &json!(out)))
        }
        ("GET", [key]) => {
            let key = decode(key, false);
            match s.kv.get(coll).and_then(|c| c.get(&key)) {
                Some(r) => Ok(Response::json(200, r)),
                None => Err(messages(404, "ERROR", &format!("Could not find object id={key}"))),
            }
        }
        // With `query`, only what matches it (splunk-sdk-python `KVStoreCollectionData.delete`).
        ("DELETE", []) => match req.query_param("query").filter(|q| !q.is_empty()) {
            None => {
                s.kv.remove(coll);
                Ok(Response::raw(200, Vec::new()))
            }
            Some(q) => match serde_json::from_str::<Value>(&q) {
                Err(e) => Err(messages(400, "ERROR", &format!("Invalid query: {e}"))),
                Ok(query) if s.kv_refuse_in && uses_in(&query) => Err(refused_in()),
                Ok(query) => {
                    if let Some(c) = s.kv.get_mut(coll) {
                        let doomed: Vec<String> = c
                            .matching(&query)
                            .into_iter()
                            .filter_map(|r| r.get("_key").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect();
                        for key in doomed {
                            c.remove(&key);
                        }
                    }
                    Ok(Response::raw(200, Vec::new()))
                }
            },
        },
        ("DELETE", [key]) => {
            let key = decode(key, false);
            if let Some(c) = s.kv.get_mut(coll) {
                c.remove(&key);
            }
            Ok(Response::raw(200, Vec::new()))
        }
        _ => Err(messages(404, "ERROR", "Not Found")),
    };
    result.unwrap_or_else(|e| e)
}

/// Orders `found` by `sort` (Splunk REST API Reference, "KV store endpoints",
/// `storage/collections/data/{collection}` GET, parameter `sort`: `<field>[:1|:-1]`, several
/// comma-separated; ties keep insertion order), keeping only the first `wanted` (skip + limit):
/// a partial selection, O(n + wanted·log wanted), so that a page of the oldest items does not
/// sort a whole large collection.
fn sorted(found: &mut Vec<&Value>, sort: &str, wanted: usize) {
    let keys: Vec<(&str, bool)> = sort
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| match key.rsplit_once(':') {
            Some((field, "-1")) => (field, true),
            Some((field, _)) => (field, false),
            None => (key, false),
        })
        .collect();
    let order = |a: &(usize, &Value), b: &(usize, &Value)| {
        keys.iter()
            .map(|(field, descending)| {
                let order = compare(a.1.get(*field), b.1.get(*field));
                if *descending { order.reverse() } else { order }
            })
            .find(|order| order.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    };
    let mut ranked: Vec<(usize, &Value)> = found.drain(..).enumerate().collect();
    if wanted < ranked.len() {
        if wanted == 0 {
            ranked.clear();
        } else {
            ranked.select_nth_unstable_by(wanted - 1, order);
            ranked.truncate(wanted);
        }
    }
    ranked.sort_unstable_by(order);
    found.extend(ranked.into_iter().map(|(_, record)| record));
}

/// The KV store's (MongoDB's) order of values: missing and null first, then numbers, then
/// strings, then anything else as its JSON text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    let rank = |value: Option<&Value>| match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(_) => 3,
    };
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) if rank(a) == 3 && rank(b) == 3 => x.to_string().cmp(&y.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Whether a query uses the `$in` operator anywhere.
fn uses_in(query: &Value) -> bool {
    match query {
        Value::Object(map) => map.iter().any(|(key, value)| key == "$in" || uses_in(value)),
        Value::Array(items) => items.iter().any(uses_in),
        _ => false,
    }
}

fn refused_in() -> Response {
    messages(400, "ERROR", "Invalid query: unsupported operator $in")
}

/// The `fields` of a query answer (comma-separated; `_key` always), as the KV store returns.
fn project(rec: &Value, fields: &str) -> Value {
    let mut out = Map::new();
    for field in fields.split(',').map(str::trim).chain(["_key"]) {
        if let Some(value) = rec.get(field) {
            out.insert(field.to_string(), value.clone());
        }
    }
    Value::Object(out)
}

/// KV store query subset: `$or`, `$and`, per-field `$in`/`$eq`/`$ne`/`$not`/`$gt`…, plain equality
/// (array-valued fields match when any element matches).
pub(super) fn matches(rec: &Value, q: &Value) -> bool {
    let Some(q) = q.as_object() else { return true };
    q.iter().all(|(k, cond)| match k.as_str() {
        "$or" => cond.as_array().is_some_and(|a| a.iter().any(|c| matches(rec, c))),
        "$and" => cond.as_array().is_some_and(|a| a.iter().all(|c| matches(rec, c))),
        field => field_matches(rec.get(field).unwrap_or(&Value::Null), cond),
    })
}

fn field_matches(v: &Value, cond: &Value) -> bool {
    let eq = |want: &Value| match v {
        Value::Array(items) => items.contains(want),
        _ => v == want,
    };
    match cond.as_object() {
        Some(ops) if ops.keys().all(|k| k.starts_with('$')) => {
            ops.iter().all(|(op, arg): (&String, &Value)| match op.as_str() {
                "$in" => arg.as_array().is_some_and(|a| a.iter().any(eq)),
                "$nin" => !arg.as_array().is_some_and(|a| a.iter().any(eq)),
                "$eq" => eq(arg),
                "$ne" => !eq(arg),
                "$not" => !field_matches(v, arg),
                "$gt" | "$gte" | "$lt" | "$lte" => {
                    let order = match (v, arg) {
                        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
                        _ => v.as_f64().zip(arg.as_f64()).and_then(|(x, y)| x.partial_cmp(&y)),
                    };
                    order.is_some_and(|order| match op.as_str() {
                        "$gt" => order.is_gt(),
                        "$gte" => order.is_ge(),
                        "$lt" => order.is_lt(),
                        _ => order.is_le(),
                    })
                }
                _ => false,
            })
        }
        _ => eq(cond),
    }
}
