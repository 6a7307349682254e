//! The spool in the replicated KV store, for search head cluster members (PRODUCT §11): pending
//! items, dead letters and quarantined items are documents of the collection `stackflow_spool`,
//! so an item spooled on one member is flushed by whichever member runs next.
//!
//! Documents: an item `{_key: <item id>, kind: "item", state: pending|dead|quarantine, target,
//! account, action, search_name, dedupe_key, first_attempt_unix, last_attempt_unix,
//! next_attempt_unix, attempts, reject_class, last_error, record (the `SpoolRecord` as JSON
//! text), lease_gen, lease_owner, lease_expires_unix}`, and a lease `{_key: "lease.<id>.<gen>",
//! kind: "lease", item, owner, expires_unix}`.
//!
//! Leases. The KV store offers one conditional write: inserting a document whose `_key` exists
//! fails (HTTP 409 per public accounts, unverified: `[delivery] kvstore_conflict_status`). Its
//! updates are unconditional, and in a cluster reads are local while writes go to the KV store
//! captain, so a read may be stale (Splunk docs, "KV store captain"). A member therefore claims
//! an item it read at generation `g` by *inserting* `lease.<id>.<g+1>`: exactly one member wins
//! each generation, whatever it read. The winner re-reads the item (gone or moved on: it lets
//! go), writes `lease_gen = g+1` and an expiry (`[delivery] lease_s`, default 120) into the item,
//! sends, then deletes the item (delivered) or rewrites it (retry, dead letter). Lease documents
//! are never deleted while they matter: a member with a stale read of generation `g` can never
//! win `g+1` again; they are removed an hour after they expired. A member killed mid-send
//! leaves `lease_expires_unix` in the past once `lease_s` has passed, and the next flusher takes
//! generation `g+2`: nothing is lost, and the dedupe key makes that re-send harmless. A new
//! item starts at a generation from the clock (milliseconds), above any earlier one of its id.
//! A flush claims `CLAIM_AHEAD` items at once (`claim_many`): a lease insert each, then one `$in`
//! query reads the items won and one `batch_save` writes their leases; `flush.rs` renews a claim
//! that waited a quarter of the lease before sending it, and gives back the ones it does not send.
//!
//! Alert runs on a member put what they cannot deliver straight into the collection (`put`);
//! only their write-ahead claim of the item being sent is a local file (it needs a local
//! fsync), and an item the KV store would not take falls back to the local file spool. Every
//! flush on a member first moves local pending items, dead letters, claims of killed runs and
//! file ledger entries into the KV store (`migrate`), which also adopts a file spool left by an
//! earlier version. No secret is ever written: items carry none.
//!
//! (About 640 lines: one job, the KV store's `Store`; the bounded scan is in `kv/scan.rs`.)

use super::file::FileStore;
use super::ledger::Ledger;
use super::ledger::kv::KvLedger;
use super::record::{
    Candidate, Claim, Claimed, ItemState, Listed, Outlook, Page, Quarantined, Scan, SpoolRecord,
    Summary, parse_record,
};
use super::store::Store;
use crate::civil_time::now_unix;
use crate::error::{Error, Result};
use crate::remotes::splunkd::Splunkd;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The collection of items and leases (collections.conf).
pub const COLLECTION: &str = "stackflow_spool";
/// Documents per KV store query page (each item carries its request: keep answers small).
const PAGE: usize = 500;
mod scan;

/// What a flush's plan reads of each pending item (not the request).
const SCAN_FIELDS: &str = "_key,state,target,account,first_attempt_unix,next_attempt_unix,lease_gen,lease_owner,lease_expires_unix,remote_hold_unix";
/// Lease documents are removed this long after they expired.
const LEASE_KEEP_S: f64 = 3600.0;

/// Delivered items whose deletion waits for one batched request, at most this many …
const DELETE_BATCH: usize = 200;

/// Pending items a flush leases at once (`Store::claim_ahead`): a member that dies holds at
/// most this many until their leases expire.
const CLAIM_AHEAD: usize = 50;

/// What became of an item whose lease generation was won.
enum Taken {
    Gone,
    Quarantined(Quarantined),
    Leased(Box<Claim>, Value),
}

pub struct KvStore {
    /// Delivered items not deleted yet, and since when the oldest waits (`settle`).
    delivered: std::sync::Mutex<(Vec<String>, Option<std::time::Instant>)>,
    splunkd: Splunkd,
    /// The member's local file spool: migration source and ledger folder.
    local: FileStore,
    lease_s: f64,
    conflict_status: u16,
    owner: String,
}

fn lease_key(id: &str, generation: u64) -> String {
    format!("lease.{id}.{generation}")
}

fn number(document: &Value, field: &str) -> f64 {
    document.get(field).and_then(Value::as_f64).filter(|n| n.is_finite()).unwrap_or(0.0)
}

fn generation(document: &Value) -> u64 {
    document.get("lease_gen").and_then(Value::as_u64).unwrap_or(0)
}

/// An item document as `spool list` shows it (an item under a live lease is in flight).
fn listed(document: &Value, now: f64) -> Listed {
    let id = document.get("_key").and_then(Value::as_str).unwrap_or_default().to_string();
    let state = match document.get("state").and_then(Value::as_str) {
        Some("dead") => ItemState::Dead,
        Some("quarantine") => ItemState::Quarantine,
        _ if number(document, "lease_expires_unix") > now => ItemState::Inflight,
        _ => ItemState::Pending,
    };
    let text = document.get("record").and_then(Value::as_str).unwrap_or_default();
    Listed {
        state,
        path: pseudo_path(&id),
        record: parse_record(text.as_bytes(), &id),
        modified_unix: number(document, "last_attempt_unix"),
    }
}

fn pseudo_path(id: &str) -> PathBuf {
    PathBuf::from(format!("kvstore:{COLLECTION}/{id}"))
}

/// A generation for a new item: the clock in milliseconds, above any earlier lease of its id.
fn fresh_generation() -> u64 {
    let millis = now_unix() * 1000.0;
    if millis.is_finite() && millis > 0.0 { millis as u64 } else { 1 }
}

impl KvStore {
    /// The ledger that goes with this store: `stackflow_ledger`, and the member's file ledger.
    fn kv_ledger(&self) -> KvLedger {
        KvLedger::new(self.splunkd.clone(), self.local.root())
    }

    pub fn new(splunkd: Splunkd, local: FileStore, lease_s: f64, conflict_status: u16) -> KvStore {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let owner = format!("{host}:{}:{}", std::process::id(), fresh_generation());
        KvStore { delivered: Default::default(), splunkd, local, lease_s, conflict_status, owner }
    }

    /// The item document for a record in `state`, holding `generation` with `expires`.
    fn document(
        record: &SpoolRecord,
        state: ItemState,
        generation: u64,
        expires: f64,
    ) -> Result<Value> {
        let text =
            serde_json::to_string(record).map_err(|error| Error::Internal(error.to_string()))?;
        Ok(json!({
            "_key": record.id,
            "kind": "item",
            "state": state.as_str(),
            "target": record.item.target.as_str(),
            "account": record.item.account,
            "action": record.item.context.action,
            "search_name": record.item.context.search_name,
            "dedupe_key": record.item.dedupe_key,
            "first_attempt_unix": record.first_attempt_unix,
            "last_attempt_unix": record.last_attempt_unix,
            "next_attempt_unix": record.next_attempt_unix,
            "attempts": record.attempts,
            "reject_class": record.reject_class.map(|class| format!("{class:?}").to_lowercase()),
            "last_error": record.last_error,
            "remote_hold_unix": record.remote_hold_unix,
            "record": text,
            "lease_gen": generation,
            "lease_owner": "",
            "lease_expires_unix": expires,
        }))
    }

    /// Adds an item in `state`; an item with the same id already there wins (same dedupe key).
    fn insert(&self, record: &SpoolRecord, state: ItemState) -> Result<bool> {
        let document = Self::document(record, state, fresh_generation(), 0.0)?;
        self.splunkd.kv_insert(COLLECTION, &document, self.conflict_status)
    }

    /// Moves the member's local pending items and dead letters (alert runs' spooling, or a file
    /// spool of an earlier version) into the collection, and its file ledger into
    /// `stackflow_ledger`. Each file is claimed first, so a
    /// concurrent file flusher never sends it too; it is removed only once the KV store has it.
    fn migrate_local(&self) -> Result<usize> {
        if !self.local.root().exists() {
            return Ok(0);
        }
        self.kv_ledger().migrate_files()?;
        let mut moved = 0;
        let scan = Store::scan(&self.local)?;
        // Write-ahead claims of alert runs killed mid-send are adopted, then moved like the rest.
        let adopted = scan.adopted.iter().map(|path| self.local.open_adopted(path).map(Some));
        let pending = scan.pending.iter().map(|candidate| self.local.claim(&candidate.id));
        for claimed in adopted.chain(pending) {
            let claim = match claimed? {
                None => continue,
                Some(Err(quarantined)) => {
                    log::error!(
                        "spool: {} is not a readable item ({}); moved to {}",
                        quarantined.original.display(),
                        quarantined.problem,
                        quarantined.moved_to.display()
                    );
                    continue;
                }
                Some(Ok(claim)) => claim,
            };
            match self.insert(&claim.record, ItemState::Pending) {
                Ok(_) => {
                    self.local.finish_delivered(claim)?;
                    moved += 1;
                }
                Err(error) => {
                    let record = claim.record.clone();
                    self.local.finish_retry(claim, &record)?;
                    return Err(error);
                }
            }
        }
        for entry in self.local.list()? {
            if entry.state != ItemState::Dead {
                continue;
            }
            if let Ok(record) = &entry.record {
                self.insert(record, ItemState::Dead)?;
                match std::fs::remove_file(&entry.path) {
                    Ok(()) => moved += 1,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(Error::Spool {
                            path: entry.path.clone(),
                            detail: error.to_string(),
                        });
                    }
                }
            }
        }
        if moved > 0 {
            log::info!(
                "spool: moved {moved} item(s) from {} into the KV store collection {COLLECTION}",
                self.local.root().display()
            );
        }
        Ok(moved)
    }

    fn items(&self, state: Option<ItemState>) -> Result<Vec<Value>> {
        self.items_with(state, None)
    }

    /// Item documents, page by page (`PAGE` per request), optionally only some `fields`.
    fn items_with(&self, state: Option<ItemState>, fields: Option<&str>) -> Result<Vec<Value>> {
        let query = match state {
            Some(state) => json!({"kind": "item", "state": state.as_str()}),
            None => json!({"kind": "item"}),
        };
        let mut all = Vec::new();
        loop {
            let page = self.splunkd.kv_query_fields(COLLECTION, &query, all.len(), PAGE, fields)?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Removes lease documents that expired more than an hour ago, in one request (a listing
    /// of every lease would grow with the backlog).
    fn collect_leases(&self) -> Result<()> {
        let cutoff = now_unix() - LEASE_KEEP_S.max(self.lease_s * 10.0);
        let query = json!({"kind": "lease", "expires_unix": {"$lt": cutoff}});
        self.splunkd.kv_delete_query(COLLECTION, &query)
    }

    /// Every item, as `spool list` shows it (an item under a live lease is in flight).
    fn list_items(&self) -> Result<Vec<Listed>> {
        let now = now_unix();
        Ok(self.items(None)?.iter().map(|document| listed(document, now)).collect())
    }

    /// A pending item document as a flush's candidate; `None` while another member's lease on
    /// it holds.
    fn candidate(&self, document: &Value, now: f64) -> Option<Candidate> {
        let id = document.get("_key").and_then(Value::as_str)?;
        let expires = number(document, "lease_expires_unix");
        if expires > now {
            return None; // another member is sending it
        }
        if expires > 0.0 {
            log::info!(
                "spool: KV store item {id} was being sent by {} whose lease expired; taking it over",
                document.get("lease_owner").and_then(Value::as_str).unwrap_or("?")
            );
        }
        let target = document.get("target").cloned().map(serde_json::from_value);
        let record = match (target, document.get("account").and_then(Value::as_str)) {
            (Some(Ok(target)), Some(account)) => Ok(Summary {
                target,
                account: account.to_string(),
                first_attempt_unix: number(document, "first_attempt_unix"),
                next_attempt_unix: number(document, "next_attempt_unix"),
                remote_hold_unix: number(document, "remote_hold_unix"),
            }),
            // Claimed anyway, so that it is quarantined with a line naming it.
            _ => Err(format!("KV store item {id} has no readable target and account")),
        };
        Some(Candidate { id: id.to_string(), token: generation(document), record })
    }

    /// At most `limit` items of `state` in one query (one more asked, to tell whether there
    /// are more).
    fn page_items(&self, state: ItemState, limit: usize) -> Result<Page> {
        let now = now_unix();
        let query = match state {
            ItemState::Pending => {
                json!({"kind": "item", "state": "pending", "lease_expires_unix": {"$lte": now}})
            }
            ItemState::Inflight => {
                json!({"kind": "item", "state": "pending", "lease_expires_unix": {"$gt": now}})
            }
            other => json!({"kind": "item", "state": other.as_str()}),
        };
        let documents =
            self.splunkd.kv_query_page(COLLECTION, &query, 0, limit.saturating_add(1))?;
        let more = documents.len() > limit;
        let items = documents.iter().take(limit).map(|document| listed(document, now)).collect();
        Ok(Page { items, more })
    }

    /// Whether a pending item of an account not in `outlook` is there (one query for one key).
    fn others_pending(&self, outlook: &Outlook) -> Result<bool> {
        let not_down: Vec<Value> = outlook
            .accounts
            .iter()
            .map(|down| {
                json!({"$or": [
                    {"target": {"$ne": down.target.as_str()}},
                    {"account": {"$ne": down.account}},
                ]})
            })
            .collect();
        let mut query = json!({"kind": "item", "state": "pending"});
        if !not_down.is_empty() {
            query["$and"] = Value::Array(not_down);
        }
        Ok(!self.splunkd.kv_query_fields(COLLECTION, &query, 0, 1, Some("_key"))?.is_empty())
    }

    /// Dead letters back to pending, due now (`ids` empty: all). Returns requeued and missing ids.
    fn requeue_items(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        let dead = self.items(Some(ItemState::Dead))?;
        let wanted: Vec<String> = if ids.is_empty() {
            dead.iter()
                .filter_map(|d| d.get("_key").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        } else {
            ids.to_vec()
        };
        let (mut done, mut missing) = (Vec::new(), Vec::new());
        for id in wanted {
            let Some(document) =
                dead.iter().find(|d| d.get("_key").and_then(Value::as_str) == Some(id.as_str()))
            else {
                missing.push(id);
                continue;
            };
            let text = document.get("record").and_then(Value::as_str).unwrap_or_default();
            let Ok(mut record) = parse_record(text.as_bytes(), &id) else {
                missing.push(id);
                continue;
            };
            record.reject_class = None;
            record.flushes = 0;
            record.next_attempt_unix = now_unix();
            record.last_error = format!("requeued after: {}", record.last_error);
            let document = Self::document(&record, ItemState::Pending, generation(document), 0.0)?;
            self.splunkd.kv_update(COLLECTION, &id, &document)?;
            done.push(id);
        }
        Ok((done, missing))
    }

    /// Deletes dead letters and quarantined items whose last attempt is older than `older_than`.
    fn purge_items(&self, older_than: std::time::Duration) -> Result<Vec<PathBuf>> {
        let cutoff = now_unix() - older_than.as_secs_f64();
        let mut removed = Vec::new();
        for document in self.items(None)? {
            let state = document.get("state").and_then(Value::as_str).unwrap_or_default();
            if matches!(state, "dead" | "quarantine")
                && number(&document, "last_attempt_unix") < cutoff
                && let Some(id) = document.get("_key").and_then(Value::as_str)
            {
                self.splunkd.kv_delete(COLLECTION, id)?;
                removed.push(pseudo_path(id));
            }
        }
        Ok(removed)
    }

    fn lock_delivered(
        &self,
    ) -> std::sync::MutexGuard<'_, (Vec<String>, Option<std::time::Instant>)> {
        self.delivered.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Inserts the lease document of generation `next`: `false` when another member has it.
    fn insert_lease(&self, id: &str, next: u64, expires: f64) -> Result<bool> {
        let lease = json!({
            "_key": lease_key(id, next),
            "kind": "lease",
            "item": id,
            "owner": self.owner,
            "expires_unix": expires,
        });
        self.splunkd.kv_insert(COLLECTION, &lease, self.conflict_status)
    }

    /// After winning generation `next` of an item read at `token`: the item as read now
    /// (`None`: gone) is let go when it moved on, quarantined when unreadable, else returned
    /// with our lease written into it, to be saved before anything is sent.
    fn take(
        &self,
        id: &str,
        token: u64,
        next: u64,
        expires: f64,
        document: Option<Value>,
    ) -> Result<Taken> {
        let Some(mut document) = document else {
            return Ok(Taken::Gone); // delivered meanwhile
        };
        if generation(&document) != token
            || document.get("state").and_then(Value::as_str) != Some("pending")
        {
            return Ok(Taken::Gone);
        }
        let text = document.get("record").and_then(Value::as_str).unwrap_or_default().to_string();
        let record = match parse_record(text.as_bytes(), id) {
            Ok(record) => record,
            Err(problem) => {
                document["state"] = json!("quarantine");
                self.splunkd.kv_update(COLLECTION, id, &document)?;
                return Ok(Taken::Quarantined(Quarantined {
                    original: pseudo_path(id),
                    moved_to: pseudo_path(id),
                    problem,
                }));
            }
        };
        document["lease_gen"] = json!(next);
        document["lease_owner"] = json!(self.owner);
        document["lease_expires_unix"] = json!(expires);
        let claim = Claim { id: id.to_string(), path: pseudo_path(id), record, token: next };
        Ok(Taken::Leased(Box::new(claim), document))
    }

    fn rewrite(&self, claim: &Claim, record: &SpoolRecord, state: ItemState) -> Result<()> {
        let document = Self::document(record, state, claim.token, 0.0)?;
        self.splunkd.kv_update(COLLECTION, &claim.id, &document)
    }
}

impl Drop for KvStore {
    fn drop(&mut self) {
        if let Err(error) = Store::settle(self) {
            log::warn!(
                "{error}; the delivered items stay in the KV store until their lease expires, then a flush finds them delivered"
            );
        }
    }
}

impl Store for KvStore {
    fn location(&self) -> String {
        format!("KV store collection {COLLECTION} (splunkd at {})", self.splunkd.base_url())
    }

    fn ledger(&self) -> Box<dyn Ledger> {
        Box::new(self.kv_ledger())
    }

    /// Into the collection; when the KV store does not take it, into the member's file spool
    /// (the next `spool flush` moves it).
    fn put(&self, record: &SpoolRecord, state: ItemState) -> Result<String> {
        match self.insert(record, state) {
            Ok(_) => return Ok(format!("{} in the KV store collection {COLLECTION}", record.id)),
            Err(error) => log::warn!(
                "the KV store did not take item {} ({error}); keeping it on this member, the next `spool flush` moves it",
                record.id
            ),
        }
        self.local.put(record, state)
    }

    fn migrate(&self) -> Result<usize> {
        self.migrate_local()
    }

    fn list(&self) -> Result<Vec<Listed>> {
        self.migrate_local()?;
        self.list_items()
    }

    fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        self.migrate_local()?;
        self.requeue_items(ids)
    }

    fn purge(&self, older_than: Duration) -> Result<Vec<PathBuf>> {
        self.migrate_local()?;
        self.purge_items(older_than)
    }

    fn page(&self, state: ItemState, limit: usize) -> Result<Page> {
        self.migrate_local()?;
        self.page_items(state, limit)
    }

    /// The member's last outlook (kept with its local files), while the member has nothing
    /// local to move and the collection holds no pending item of another account.
    fn outlook(&self) -> Result<Option<Outlook>> {
        let Some(outlook) = self.local.outlook()? else { return Ok(None) };
        if self.others_pending(&outlook)? {
            return Ok(None);
        }
        Ok(Some(outlook))
    }

    fn save_outlook(&self, outlook: Option<&Outlook>) -> Result<()> {
        self.local.save_outlook(outlook)
    }

    /// Every pending item (see `scan_bounded`).
    fn scan(&self) -> Result<Scan> {
        self.scan_bounded(usize::MAX)
    }

    /// Per account, its oldest `limit` pending items, due ones first (`scan.rs`).
    fn scan_bounded(&self, limit: usize) -> Result<Scan> {
        self.migrate_local()?;
        self.collect_leases()?;
        self.oldest_pending(limit)
    }

    fn claim(&self, id: &str, token: u64) -> Result<Claimed> {
        let next = token.saturating_add(1);
        let expires = now_unix() + self.lease_s;
        if !self.insert_lease(id, next, expires)? {
            return Ok(None); // another member took this generation
        }
        let document = self.splunkd.kv_get(COLLECTION, id)?;
        match self.take(id, token, next, expires, document)? {
            Taken::Gone => Ok(None),
            Taken::Quarantined(quarantined) => Ok(Some(Err(quarantined))),
            Taken::Leased(claim, document) => {
                self.splunkd.kv_update(COLLECTION, id, &document)?;
                Ok(Some(Ok(*claim)))
            }
        }
    }

    /// One lease insert per item (the only conditional write), then one `$in` query for the
    /// items won and one `batch_save` writing their leases: about one round trip per item
    /// instead of three.
    fn claim_many(&self, wanted: &[(String, u64)]) -> Result<Vec<Claimed>> {
        let expires = now_unix() + self.lease_s;
        let mut won = Vec::new();
        for (index, (id, token)) in wanted.iter().enumerate() {
            if self.insert_lease(id, token.saturating_add(1), expires)? {
                won.push(index);
            }
        }
        let mut answers: Vec<Claimed> =
            std::iter::repeat_with(|| None).take(wanted.len()).collect();
        if won.is_empty() {
            return Ok(answers);
        }
        let keys: Vec<&str> = won.iter().map(|&index| wanted[index].0.as_str()).collect();
        let mut documents: HashMap<String, Value> = HashMap::new();
        for document in self.splunkd.kv_query(COLLECTION, &json!({"_key": {"$in": keys}}))? {
            if let Some(key) = document.get("_key").and_then(Value::as_str) {
                documents.insert(key.to_string(), document);
            }
        }
        let mut leased = Vec::with_capacity(won.len());
        for index in won {
            let (id, token) = &wanted[index];
            let document = documents.remove(id);
            answers[index] =
                match self.take(id, *token, token.saturating_add(1), expires, document)? {
                    Taken::Gone => None,
                    Taken::Quarantined(quarantined) => Some(Err(quarantined)),
                    Taken::Leased(claim, document) => {
                        leased.push(document);
                        Some(Ok(*claim))
                    }
                };
        }
        // An upsert, like `kv_update`: only the holder of a generation writes its item.
        self.splunkd.kv_batch_save(COLLECTION, &leased)?;
        Ok(answers)
    }

    fn claim_ahead(&self) -> usize {
        CLAIM_AHEAD
    }

    /// A quarter of the lease: an item is sent with at least three quarters of it left.
    fn claim_hold(&self) -> Duration {
        Duration::from_secs_f64(self.lease_s / 4.0)
    }

    fn open_adopted(&self, path: &Path) -> Result<std::result::Result<Claim, Quarantined>> {
        Err(Error::Internal(format!("no adopted claims in the KV store ({})", path.display())))
    }

    /// Deletes in batches (one request per `DELETE_BATCH` items, or sooner once the oldest
    /// has waited a quarter of the lease): the item stays leased to us meanwhile, and should
    /// this process die first, the item's re-send after the lease expired finds it delivered
    /// (SOAR's dedupe, or the ledger written before this call).
    fn finish_delivered(&self, claim: Claim) -> Result<()> {
        let due = {
            let mut delivered = self.lock_delivered();
            delivered.0.push(claim.id);
            let since = *delivered.1.get_or_insert_with(std::time::Instant::now);
            delivered.0.len() >= DELETE_BATCH || since.elapsed().as_secs_f64() >= self.lease_s / 4.0
        };
        if due { self.settle() } else { Ok(()) }
    }

    fn settle(&self) -> Result<()> {
        let keys = std::mem::take(&mut self.lock_delivered().0);
        self.lock_delivered().1 = None;
        self.splunkd.kv_delete_keys(COLLECTION, &keys)
    }

    fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<()> {
        self.rewrite(&claim, record, ItemState::Pending)
    }

    fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<String> {
        self.rewrite(&claim, record, ItemState::Dead)?;
        Ok(format!("{} (KV store {COLLECTION})", claim.id))
    }
}
