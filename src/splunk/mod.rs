//! Splunk-facing protocol code: what splunkd hands us and how we answer.

pub mod chunked;
pub mod conf;
pub mod modinput;
pub mod payload;
pub mod results;
pub mod search_command;
pub mod splunk_csv;
pub mod stash;
