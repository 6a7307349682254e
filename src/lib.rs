//! StackFlow for Splunk: one program for the alert actions, the `stackflowsync` search
//! command and the delivery spool. See ARCHITECTURE.md for the map of modules.
//!
//! - `splunk`: what Splunk hands us and how we talk back (payload, results, chunked protocol,
//!   conf files, splunkd REST, ES audit artefacts).
//! - `mapping`: rows → SOAR / StackFlow / Slack requests. Pure: no I/O.
//! - `remotes`: one module per remote (SOAR, StackFlow, Slack): account settings, the one URL
//!   policy, authentication, writes (delivery targets), reads (read-back) and `check` probes.
//! - `check`: the checks of `stackflow check`, as a report.
//! - `delivery`: HTTP, classification, retries, the spool, the ledger of delivered keys.
//! - `audit`: receipts, modular-action log lines and links, written for every item.
//! - `cmd`: the subcommands, glue only.

pub mod audit;
pub mod check;
pub mod civil_time;
pub mod cli;
pub mod cmd;
pub mod delivery;
pub mod error;
pub mod fsync;
pub mod item;
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
