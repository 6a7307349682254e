//! Investigate from Slack (PRODUCT §16) end to end: `[triage:<name>]` templates checked by
//! `stackflow check`; the Triage button and `/stackflow` run by the installed listener against
//! the emulated Slack (Socket Mode) and splunkd (search/jobs/export), asserting the searches
//! splunkd received, the thread replies, the refusals and the receipts.

use crate::support::*;
use stackflow_emulator::Emulator;

/// `stackflow check` FAILs a bad template naming its stanza and key, accepts a good one (with
/// its tokens), and reports a bad `max_concurrent_searches`.
#[test]
fn check_validates_triage_templates_and_the_search_bound() {
    let emulator = Emulator::start();
    let home = SplunkHome::new();
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {}\n\n\
         [triage:user_activity]\nsearch = index=main user=$user$ | stats count by action\nmax_rows = 500\n\n\
         [triage:broken]\nsearch = index=main user=\"$user$\"\n\n\
         [triage:slow]\nsearch = index=main src=$src\n\n\
         [triage:big]\nsearch = index=main\nmax_rows = 100000\n\n\
         [slack_response]\nmax_concurrent_searches = 0\n",
        emulator.url()
    ));
    let run = home.run_stackflow(&["check"], b"test-session-key\n");
    println!("stdout:\n{}stderr:\n{}", run.stdout, run.stderr);
    run.assert_code(4);
    let line = |what: &str| -> String {
        run.stdout
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(what))
            .unwrap_or_else(|| panic!("no line for {what}:\n{}", run.stdout))
            .to_string()
    };
    let good = line("[triage:user_activity]");
    assert!(
        good.starts_with("OK") && good.contains("$user$") && good.contains("500 rows"),
        "{good}"
    );
    let quoted = line("[triage:broken]");
    assert!(
        quoted.starts_with("FAIL")
            && quoted.contains("[triage:broken] search")
            && quoted.contains("inside a quoted string"),
        "{quoted}"
    );
    let unclosed = line("[triage:slow]");
    assert!(unclosed.starts_with("FAIL") && unclosed.contains("never closed"), "{unclosed}");
    let big = line("[triage:big]");
    assert!(big.starts_with("FAIL") && big.contains("[triage:big] max_rows"), "{big}");
    let bound = line("[slack_response]");
    assert!(bound.starts_with("FAIL") && bound.contains("max_concurrent_searches"), "{bound}");
    assert!(!run.stdout.contains("unknown stanza"), "{}", run.stdout);
}
