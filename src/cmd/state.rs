//! `stackflow state [--scheme | --validate-arguments]`: the `stackflow_state` modular input as
//! splunkd runs it (through `bin/stackflow_state.sh` / `.cmd`). Glue only: the protocol is
//! `splunk::modinput`, the polling `state`.
//!
//! Exit codes: 0 polled (or scheme printed, arguments valid), 2 bad configuration XML or
//! arguments rejected (`<error><message>` on stdout), 4 configuration (nothing to poll,
//! checkpoint unusable), 5 credentials, 7 a remote or the KV store was unavailable (that part
//! of the poll is skipped; its changes are read next time).

use crate::error::ExitCode;
use crate::logging;
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use crate::splunk::modinput::{self, Arg, EventWriter, Mode, Scheme};
use crate::state::InputOptions;
use std::io::Write;

/// The scheme name (inputs.conf `[stackflow_state://<account>]`).
pub const SCHEME: &str = "stackflow_state";

fn scheme() -> Scheme {
    let arg = |name, title, description, data_type| Arg {
        name,
        title,
        description,
        data_type,
        required_on_create: false,
    };
    Scheme {
        title: "StackFlow case state",
        description: "Polls the SOAR containers and playbook runs and the StackFlow incidents this app created and indexes one event per change.",
        use_external_validation: true,
        use_single_instance: false,
        args: vec![
            arg(
                "account",
                "Account",
                "The [soar:<account>] / [stackflow:<account>] stanza to poll (default: the input's name).",
                "string",
            ),
            arg(
                "lookback_days",
                "Look-back (days)",
                "Objects linked in the last N days are polled, older ones until they close (default 30).",
                "number",
            ),
            arg(
                "max_events",
                "Events per run",
                "At most this many events per run; the rest follow next run (default 10000).",
                "number",
            ),
            arg(
                "run_time_field",
                "Playbook run change field",
                "SOAR playbook_run field holding its change time (default update_time).",
                "string",
            ),
            arg(
                "overlap_s",
                "Overlap (seconds)",
                "Changes this much older than the cursor are read again (default 300).",
                "number",
            ),
        ],
    }
}

pub fn run(scheme_flag: bool, validate_flag: bool) -> ExitCode {
    logging::init(false);
    let mode = match super::modinput_mode(scheme_flag, validate_flag, scheme) {
        Ok(mode) => mode,
        Err(code) => return code,
    };
    let definition = match super::modinput_definition(mode) {
        Ok(definition) => definition,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    if mode == Mode::Validate {
        for stanza in &definition.stanzas {
            if let Err(problem) = InputOptions::from_stanza(stanza) {
                let _ = stdout.write_all(modinput::validation_error(&problem).as_bytes());
                log::error!("{SCHEME}://{}: {problem}", stanza.name);
                return ExitCode::BadInvocation;
            }
        }
        return ExitCode::Success;
    }
    drop(stdout);
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => return error.report(),
    };
    let splunkd =
        match Splunkd::new(&settings, &definition.server_uri, definition.session_key.clone()) {
            Ok(splunkd) => splunkd,
            Err(error) => return error.report(),
        };
    if definition.checkpoint_dir.trim().is_empty() {
        log::error!("{SCHEME}: splunkd handed over no checkpoint_dir; nothing polled");
        return ExitCode::BadInvocation;
    }
    let checkpoint_dir = std::path::PathBuf::from(definition.checkpoint_dir.trim());
    let mut writer = EventWriter::new(std::io::stdout().lock());
    let mut code = ExitCode::Success;
    for stanza in &definition.stanzas {
        let disabled = stanza.param("disabled").is_some_and(|v| matches!(v, "1" | "true" | "True"));
        if disabled {
            continue;
        }
        code = code.worst(crate::state::run_stanza(
            &settings,
            &splunkd,
            &checkpoint_dir,
            stanza,
            &mut writer,
        ));
    }
    let _ = writer.finish();
    code
}
