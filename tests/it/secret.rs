//! `stackflow secret set|list` end to end: the installed binary writes secrets to the
//! emulated splunkd's storage/passwords (session key and secret on stdin, never argv) and lists
//! which are set without printing a value.

use crate::support::*;
use stackflow_emulator::Emulator;

const TOKEN: &str = "soar-token-Zq9";

fn setup() -> (SplunkHome, Emulator) {
    let emulator = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emulator);
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {}\nverify_ssl = true\nca_file = {}\n\n[soar:prod]\nurl = https://soar.example.com\n",
        emulator.url(),
        ca.display()
    ));
    (home, emulator)
}

fn secret(home: &SplunkHome, args: &[&str], stdin: &str) -> Run {
    let mut all = vec!["secret"];
    all.extend_from_slice(args);
    let run = home.run_stackflow(&all, stdin.as_bytes());
    println!("stdout:\n{}stderr:\n{}", run.stdout, run.stderr);
    run.assert_levelled_stderr().assert_no_secret(&[TOKEN, "second-token", SESSION_KEY]);
    run
}

#[test]
fn set_creates_then_updates_the_secret_from_stdin_and_list_shows_names_only() {
    let (home, emulator) = setup();
    let run = secret(&home, &["set", "soar.prod"], &format!("{SESSION_KEY}\n{TOKEN}\n"));
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "created stackflow:soar.prod");
    assert_eq!(emulator.secret("stackflow", "soar.prod").as_deref(), Some(TOKEN));
    // The secret went in the form body of a POST, never in a URL.
    let posts = emulator.requests_to("/servicesNS/nobody/stackflow/storage/passwords");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].method, "POST");
    assert!(posts[0].form().contains(&("password".into(), TOKEN.into())));
    assert!(posts[0].form().contains(&("realm".into(), "stackflow".into())));
    assert!(
        emulator.requests().iter().all(|r| !r.path.contains(TOKEN) && !r.query.contains(TOKEN))
    );

    // Again: splunkd says 409, so the existing secret is updated (CRLF line ends accepted).
    let run = secret(&home, &["set", "soar.prod"], &format!("{SESSION_KEY}\r\nsecond-token\r\n"));
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "updated stackflow:soar.prod");
    assert_eq!(emulator.secret("stackflow", "soar.prod").as_deref(), Some("second-token"));
    assert_eq!(
        emulator.secret_writes(),
        ["stackflow:soar.prod:", "stackflow:soar.prod:"],
        "one create, one update"
    );

    emulator.set_secret("stackflow", "slack.other", "xoxb-unlisted");
    emulator.set_secret("elsewhere", "soar.prod", "not-ours");
    let run = secret(&home, &["list"], &format!("{SESSION_KEY}\n"));
    run.assert_code(0).assert_no_secret(&["xoxb-unlisted", "not-ours"]);
    let state = |user: &str| {
        run.stdout
            .lines()
            .find(|line| line.split_whitespace().any(|word| word == user))
            .unwrap_or_else(|| panic!("no line for {user}:\n{}", run.stdout))
            .to_string()
    };
    assert!(state("soar.prod").starts_with("stored "), "{}", state("soar.prod"));
    assert!(state("soar.default").starts_with("not set"), "{}", state("soar.default"));
    assert!(state("stackflow_api.default").starts_with("not set"));
    assert!(state("slack.other").contains("no such account"), "{}", state("slack.other"));
}

#[test]
fn set_refuses_bad_names_missing_secrets_and_refused_keys() {
    let (home, emulator) = setup();
    // Not a StackFlow secret name: nothing sent.
    let run = secret(&home, &["set", "jira.default"], &format!("{SESSION_KEY}\n{TOKEN}\n"));
    run.assert_code(2).assert_line("ERROR", "not a StackFlow secret name");
    // No second line: nothing stored.
    let run = secret(&home, &["set", "soar.prod"], &format!("{SESSION_KEY}\n"));
    run.assert_code(2).assert_line("ERROR", "no secret on the second line");
    // No session key.
    let run = secret(&home, &["set", "soar.prod"], "");
    run.assert_code(5).assert_line("ERROR", "no splunkd session key");
    assert!(emulator.requests().is_empty(), "nothing may reach splunkd");
    // A key splunkd refuses: credentials.
    let run = secret(&home, &["set", "soar.prod"], &format!("wrong-key\n{TOKEN}\n"));
    run.assert_code(5).assert_line("ERROR", "refused");
    // A user who may not write storage/passwords: splunkd's 403 is a credentials error.
    emulator.set_capabilities(&["list_storage_passwords"]);
    let run = secret(&home, &["set", "soar.prod"], &format!("{SESSION_KEY}\n{TOKEN}\n"));
    run.assert_code(5).assert_line("ERROR", "edit_storage_passwords");
    assert_eq!(emulator.secret("stackflow", "soar.prod"), None);
    // splunkd down: deferred, exit 7.
    emulator.stop();
    let run = secret(&home, &["list"], &format!("{SESSION_KEY}\n"));
    run.assert_code(7);
}
