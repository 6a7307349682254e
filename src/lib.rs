//! StackFlow for Splunk: one program for the alert actions, the `stackflowsync` search
//! command and the delivery spool. See ARCHITECTURE.md for the map of modules.
//!
//! - `splunk`: what Splunk hands us and how we talk back (payload, results, chunked protocol,
//!   conf files, splunkd REST, ES audit artefacts).
//! - `mapping`: rows → SOAR / StackFlow / Slack requests. Pure: no I/O.
//! - `targets`: the SOAR, StackFlow and Slack clients: requests → outcomes.
//! - `delivery`: HTTP, classification, retries, the spool, the ledger of delivered keys.
//! - `audit`: receipts, modular-action log lines and links, written for every item.
//! - `cmd`: the subcommands, glue only.

pub mod audit;
pub mod cli;
pub mod cmd;
pub mod delivery;
pub mod error;
pub mod logging;
pub mod mapping;
pub mod secret;
pub mod settings;
pub mod splunk;
pub mod targets;
