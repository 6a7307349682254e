//! The KV store spool's scan for a flush's plan: per account, only the oldest items the run can
//! send, read with the KV store's `sort`, `limit` and `skip` (Splunk REST API Reference, "KV
//! store endpoints", `storage/collections/data/{collection}` GET: `query`, `sort`, `limit`,
//! `skip`, `fields`), so that a run's cost and memory follow `flush_max_items`, not the backlog.

use super::{COLLECTION, KvStore, PAGE, SCAN_FIELDS};
use crate::civil_time::now_unix;
use crate::error::Result;
use crate::outbox::record::{Candidate, Scan};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Accounts a bounded scan looks for (one query each).
const MAX_ACCOUNTS: usize = 1000;

impl KvStore {
    /// One page of pending-item fields, oldest first (`first_attempt_unix`, then `_key`).
    fn sorted_page(&self, query: &Value, skip: usize, limit: usize) -> Result<Vec<Value>> {
        let sort = "first_attempt_unix:1,_key:1";
        self.splunkd.kv_query_sorted(COLLECTION, query, sort, skip, limit, Some(SCAN_FIELDS))
    }

    /// Per account, its oldest `limit` pending items (due ones first) with the KV store's
    /// `sort` and `limit` (Splunk REST API Reference, "KV store endpoints",
    /// `storage/collections/data/{collection}`), not the whole backlog: the accounts are found
    /// one query each (the oldest item of none of those found yet), and each account's item
    /// with the latest Retry-After hold is read too, so that a held account stays held.
    pub(super) fn oldest_pending(&self, limit: usize) -> Result<Scan> {
        let now = now_unix();
        let mut pending = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut keep = |documents: Vec<Value>, pending: &mut Vec<Candidate>| {
            for document in documents {
                let Some(id) = document.get("_key").and_then(Value::as_str) else { continue };
                if seen.insert(id.to_string())
                    && let Some(candidate) = self.candidate(&document, now)
                {
                    pending.push(candidate);
                }
            }
        };
        let mut others: Vec<Value> = Vec::new();
        let mut more = false;
        for found in 0..=MAX_ACCOUNTS {
            if found == MAX_ACCOUNTS {
                more = true;
                break;
            }
            let mut query = json!({"kind": "item", "state": "pending"});
            if !others.is_empty() {
                query["$and"] = Value::Array(others.clone());
            }
            let oldest = self.sorted_page(&query, 0, 1)?;
            let Some(first) = oldest.first() else { break };
            let target = first.get("target").and_then(Value::as_str).map(str::to_string);
            let account = first.get("account").and_then(Value::as_str).map(str::to_string);
            let (Some(target), Some(account)) = (target, account) else {
                // Unreadable: a candidate of its own (quarantined when claimed).
                let key = first.get("_key").cloned().unwrap_or(Value::Null);
                others.push(json!({"_key": {"$ne": key}}));
                keep(oldest, &mut pending);
                continue;
            };
            others.push(json!({"$or": [
                {"target": {"$ne": target}},
                {"account": {"$ne": account}},
            ]}));
            // The latest Retry-After hold of the account, if any (it holds the whole account).
            let held = json!({"kind": "item", "state": "pending", "target": target,
                "account": account, "remote_hold_unix": {"$gt": now}});
            let sort = "remote_hold_unix:-1";
            keep(
                self.splunkd.kv_query_sorted(COLLECTION, &held, sort, 0, 1, Some(SCAN_FIELDS))?,
                &mut pending,
            );
            let mut left = limit;
            for due in [json!({"$lte": now}), json!({"$gt": now})] {
                let query = json!({"kind": "item", "state": "pending", "target": target,
                    "account": account, "next_attempt_unix": due});
                let mut skip = 0;
                while left > 0 {
                    let page = self.sorted_page(&query, skip, left.min(PAGE))?;
                    let read = page.len();
                    skip += read;
                    left -= read;
                    keep(page, &mut pending);
                    if read < PAGE.min(left + read) {
                        break;
                    }
                }
            }
            more |= left == 0;
        }
        Ok(Scan { adopted: Vec::new(), pending, more })
    }
}
