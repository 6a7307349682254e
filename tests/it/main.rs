//! Integration tests: the built `stackflow` binary run exactly as splunkd runs it (installed in
//! a temporary `$SPLUNK_HOME`, found through the app's own conf files, payload on stdin),
//! against loopback emulators of SOAR, StackFlow, Slack and splunkd (`stackflow-emulator`).
//!
//! One test crate with modules, so the binary and the emulator are linked once.

mod action_runs;
mod asset_context;
mod audit;
mod check;
mod cim;
mod cluster;
mod cluster_ledger;
mod dashboards;
mod delivery;
mod duplicates;
mod incident;
mod input_limits;
mod kv_drain;
mod links;
mod listener_lifecycle;
mod mapping_rules;
mod notables;
mod outage;
mod recovery;
mod remotes;
mod robustness;
mod roles;
mod saved_search;
mod secret;
mod slack;
mod slack_remote;
mod slack_socket;
mod soar;
mod splunkd_rules;
mod stackflowcheck;
mod state;
mod state_rules;
mod support;
mod sync;
mod triage;
mod triage_button;
mod war_room;
