//! StackFlow for Splunk: one program for the alert actions, the `stackflowsync` search
//! command, the state and Slack inputs and the delivery spool. See ARCHITECTURE.md for the map
//! of modules; the rooms, from the top (a room uses only the rooms below it, `tests/tidy.rs`):
//!
//! - `cmd`: the subcommands, glue only.
//! - `respond`: Slack as a response surface (Socket Mode listener, clicks → effects).
//! - `triage`: a triage template run through splunkd, bounded, and rendered (PRODUCT §16).
//! - `state`: the `stackflow_state` modular input. `check`: the checks of `stackflow check`.
//! - `sync`: `| stackflowsync`.
//! - `audit`: the stderr line, modular-action log lines, receipts and links of every item.
//! - `links`: the one owner of `stackflow_links`: the writer, the reads, the one rule.
//! - `delivery`: attempts → a final result; the flush of the outbox.
//! - `outbox`: the spool and the ledger, in files or the KV store.
//! - `remotes`: one module per remote (SOAR, StackFlow, Slack, LLM, splunkd): account
//!   settings, the one URL policy, authentication, writes, reads and `check` probes.
//! - `mapping`: rows → SOAR / StackFlow / Slack requests. Pure: no I/O.
//! - `item`: the delivery item and the `Target` trait every remote implements; `item::link`
//!   the `stackflow_links` record and the rule for which container a notable has.
//! - `net`: HTTP, TLS trust and proxy, `Outcome`, classification, backoff.
//! - `settings`: typed `stackflow.conf`.
//! - `splunk`: Splunk's formats and protocols (payload, results, conf, modular input, chunked
//!   protocol, stash files).
//! - `error`; `secret`, `civil_time` (dates and the clock), `logging`, `fsync`, `cli`.

pub mod audit;
pub mod check;
pub mod civil_time;
pub mod cli;
pub mod cmd;
pub mod delivery;
pub mod error;
pub mod fsync;
pub mod item;
pub mod links;
pub mod logging;
pub mod mapping;
pub mod net;
pub mod outbox;
pub mod remotes;
pub mod respond;
pub mod secret;
pub mod settings;
pub mod splunk;
pub mod state;
pub mod sync;
pub mod triage;
