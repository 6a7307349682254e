//! The outbox: where an item waits when its remote could not take it now, and what was
//! already delivered. `spool` (files: pending, in flight, dead letters, quarantine; `spool/record`
//! the record format and the write-ahead writer, `spool/files` atomic writes and claim names),
//! `kvspool` (the same in the KV store on a search head cluster), `ledger` + `kvledger`
//! (delivered keys and sending markers for remotes that don't deduplicate), and `store` (the
//! `Store` trait `delivery::flush` drains through, and `Outbox` for the commands).
//! Stores only: delivering what they hold is `delivery/`'s job.

pub mod kvledger;
pub mod kvspool;
pub mod ledger;
pub mod spool;
pub mod store;
