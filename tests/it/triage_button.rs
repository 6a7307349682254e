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
         [triage:modeled]\nsearch = index=main\nsummary = llm\nllm_account = nowhere\n\n\
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
    let modeled = line("[triage:modeled]");
    assert!(modeled.starts_with("WARN") && modeled.contains("no [llm:nowhere]"), "{modeled}");
    assert!(!run.stdout.contains("unknown stanza"), "{}", run.stdout);
}

use crate::slack_socket::{
    Listener, Setup, acked, assert_clean, click, interactions, post_message, seed, setup, wait_for,
};
use serde_json::{Value, json};
use std::time::Duration;

/// The templates of these tests: one over the notable's user and source, one for the slash
/// command's `$value$`, one over a field no notable records.
const TEMPLATES: &str = "[triage:user_activity]\nsearch = index=main user=$user$ src=$src$ | stats count by action\nlabel = User activity\n\n\
     [triage:by_user]\nsearch = index=main user=$value$\nfields = user, action\n\n\
     [triage:by_dest]\nsearch = index=main dest=$dest$\n";

/// A listener setup with the templates, `alice` (mapped, holds stackflow_triage), `bob`
/// (mapped, without it), and the notable `dk-1` whose user holds every hostile character.
fn triage_setup(extra: &str) -> Setup {
    let setup = setup();
    setup.home.append_local_conf(&format!("\n{TEMPLATES}\n{extra}\n"));
    let emu = &setup.emu;
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
            "user": "al\"ice\\ | delete", "src": "10.0.0.1",
            "slack_channel": "C1", "slack_ts": "1.1", "updated": 1})],
    );
    seed(
        emu,
        "stackflow_slack_users",
        &[
            json!({"_key": "UALICE", "splunk_user": "alice"}),
            json!({"_key": "UBOB", "splunk_user": "bob"}),
        ],
    );
    emu.add_splunk_user(
        "alice",
        "alice@example.com",
        &["stackflow_responder"],
        &["stackflow_respond", "stackflow_triage"],
    );
    emu.add_splunk_user("bob", "bob@example.com", &["stackflow_responder"], &["stackflow_respond"]);
    emu.set_search_row_count(25);
    setup
}

fn triage_click(
    envelope: &str,
    user: &str,
    template: &str,
    message: &(String, String, Value),
    ts: &str,
) -> Value {
    click(envelope, user, "stackflow_triage", &format!("dk-1|{template}"), message, ts)
}

/// Thread replies to `ts` that are not the original message.
fn thread_replies(setup: &Setup, ts: &str) -> Vec<Value> {
    setup.emu.slack_messages().into_iter().filter(|m| m["thread_ts"] == ts).collect()
}

#[test]
fn an_allowed_click_runs_one_search_with_escaped_values_and_replies_in_the_thread() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-t1", "UALICE", "user_activity", &message, "10.1"));
    wait_for("the triage receipt", || interactions(&setup.home).len() == 1);
    let searches = emu.splunk_searches();
    assert_eq!(searches.len(), 1, "{searches:?}");
    let search = &searches[0];
    assert_eq!(
        search["search"],
        r#"search index=main user="al\"ice\\ | delete" src="10.0.0.1" | stats count by action"#
    );
    for (key, value) in [
        ("endpoint", "export"),
        ("app", "stackflow"),
        ("earliest_time", "-24h"),
        ("latest_time", "now"),
        ("output_mode", "json"),
        ("count", "1000"),
    ] {
        assert_eq!(search[key], value, "{key} in {search}");
    }
    let replies = thread_replies(&setup, &message.1);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = replies[0].to_string();
    assert!(reply.contains("Triage: User activity") && reply.contains("25 rows"), "{reply}");
    assert!(reply.contains("host-0"), "the first rows as a table: {reply}");
    let receipt = &interactions(&setup.home)[0];
    for (name, value) in [
        ("action", "triage"),
        ("template", "user_activity"),
        ("outcome", "done"),
        ("search_name", "Brute force"),
        ("splunk_user", "alice"),
        ("dedupe_key", "dk-1"),
    ] {
        assert_eq!(receipt[name], value, "{name} in {receipt}");
    }
    assert_eq!(receipt["rows"], 25, "{receipt}");
    assert!(receipt["duration_ms"].as_u64().is_some(), "{receipt}");
    assert_eq!(acked(emu, "env-t1"), 1);
    assert_clean(&listener.stop());
}

#[test]
fn a_user_without_stackflow_triage_is_refused_and_nothing_runs() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-b1", "UBOB", "user_activity", &message, "11.1"));
    wait_for("the refusal receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(
        (receipt["action"].as_str(), receipt["outcome"].as_str()),
        (Some("triage"), Some("denied")),
        "{receipt}"
    );
    assert!(receipt["message"].as_str().unwrap().contains("stackflow_triage"), "{receipt}");
    assert!(emu.splunk_searches().is_empty(), "no search for a refused user");
    let ephemeral = emu.slack_ephemeral();
    assert_eq!(ephemeral.len(), 1, "{ephemeral:?}");
    assert_eq!(ephemeral[0]["user"], "UBOB");
    assert!(thread_replies(&setup, &message.1).is_empty());
    assert_clean(&listener.stop());
}

#[test]
fn a_template_whose_tokens_are_missing_runs_nothing() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-m1", "UALICE", "by_dest", &message, "12.1"));
    wait_for("the receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "failed", "{receipt}");
    assert!(receipt["message"].as_str().unwrap().contains("$dest$"), "{receipt}");
    assert!(emu.splunk_searches().is_empty(), "nothing ran");
    let ephemeral = emu.slack_ephemeral();
    assert!(
        ephemeral.iter().any(|e| e["user"] == "UALICE" && e.to_string().contains("$dest$")),
        "{ephemeral:?}"
    );
    assert_clean(&listener.stop());
}

#[test]
fn a_slow_search_is_cancelled_at_timeout_s() {
    let setup = triage_setup("[triage:slow]\nsearch = index=main src=$src$\ntimeout_s = 1\n");
    let emu = &setup.emu;
    emu.set_search_delay(Duration::from_secs(8));
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-s1", "UALICE", "slow", &message, "13.1"));
    wait_for("the receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "timeout", "{receipt}");
    let took = receipt["duration_ms"].as_u64().unwrap();
    assert!((900..4000).contains(&took), "cancelled at about 1 s, not 8: {took} ms");
    wait_for("splunkd sees the search end", || emu.splunk_searches_running() == 0);
    let search = &emu.splunk_searches()[0];
    assert_eq!(search["aborted"], true, "the connection was closed: {search}");
    let reply = thread_replies(&setup, &message.1);
    assert!(reply.len() == 1 && reply[0].to_string().contains("cancelled"), "{reply:?}");
    assert_clean(&listener.stop());
}

#[test]
fn the_slash_command_answers_the_caller_only() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    let listener = Listener::start(&setup);
    let help = emu.socket_send_slash_command("help", "UALICE");
    wait_for("the help answer", || emu.slack_response_url_posts().len() == 1);
    let posts = emu.slack_response_url_posts();
    let answer = posts[0].to_string();
    assert!(answer.contains("by_user") && answer.contains("User activity"), "{answer}");
    assert_eq!(acked(emu, help["envelope_id"].as_str().unwrap()), 1);

    emu.socket_send_slash_command("by_user o'brien\" OR 1=1", "UALICE");
    wait_for("the search answer", || emu.slack_response_url_posts().len() == 2);
    let searches = emu.splunk_searches();
    assert_eq!(searches.len(), 1, "{searches:?}");
    assert_eq!(searches[0]["search"], r#"search index=main user="o'brien\" OR 1=1""#);
    let posts = emu.slack_response_url_posts();
    let body = posts[1]["body"].clone();
    let body = if body.is_null() { posts[1].clone() } else { body };
    assert_eq!(body["response_type"], "ephemeral", "{posts:?}");
    assert!(body.to_string().contains("25 rows"), "{body}");
    assert!(emu.slack_messages().is_empty(), "nothing posted in the channel");

    emu.socket_send_slash_command("by_user bob in_channel", "UALICE");
    wait_for("the in_channel answer", || emu.slack_response_url_posts().len() == 3);
    let posts = emu.slack_response_url_posts();
    let body = posts[2]["body"].clone();
    let body = if body.is_null() { posts[2].clone() } else { body };
    assert_eq!(body["response_type"], "in_channel", "{body}");
    assert_eq!(emu.splunk_searches()[1]["search"], r#"search index=main user="bob""#);

    // Bob lacks the capability: told so, nothing runs.
    emu.socket_send_slash_command("by_user carol", "UBOB");
    wait_for("the refusal", || emu.slack_response_url_posts().len() == 4);
    assert_eq!(emu.splunk_searches().len(), 2);
    assert!(emu.slack_response_url_posts()[3].to_string().contains("stackflow_triage"));
    // The refusal is told first, then receipted.
    wait_for("two runs and a refusal receipted", || interactions(&setup.home).len() == 3);
    let receipts = interactions(&setup.home);
    let outcomes: Vec<&str> = receipts.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["done", "done", "denied"], "{receipts:?}");
    assert!(receipts.iter().all(|r| r["action"] == "triage"), "{receipts:?}");
    assert_clean(&listener.stop());
}

#[test]
fn every_envelope_is_acknowledged_while_searches_run() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    emu.set_search_delay(Duration::from_secs(2));
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    for n in 0..4 {
        emu.socket_send(triage_click(
            &format!("env-c{n}"),
            "UALICE",
            "user_activity",
            &message,
            &format!("20.{n}"),
        ));
    }
    emu.socket_send(click("env-ack", "UALICE", "stackflow_ack", "dk-1", &message, "21.1"));
    wait_for("every envelope acknowledged", || emu.socket_acks().len() >= 5);
    for ack in emu.socket_acks() {
        assert!(
            ack.latency < Duration::from_secs(3),
            "{} acknowledged after {:?}",
            ack.envelope_id,
            ack.latency
        );
    }
    wait_for("four triage receipts", || {
        interactions(&setup.home).iter().filter(|r| r["action"] == "triage").count() == 4
    });
    assert_eq!(emu.splunk_search_peak(), 2, "max_concurrent_searches = 2");
    let queued = emu.slack_ephemeral();
    assert!(queued.iter().filter(|e| e.to_string().contains("queued")).count() >= 2, "{queued:?}");
    assert_eq!(
        thread_replies(&setup, &message.1)
            .iter()
            .filter(|m| m.to_string().contains("Triage"))
            .count(),
        4
    );
    assert_clean(&listener.stop());
}

/// `buttons = ack,triage` on *Post to Slack*: the message offers one *Triage* button per
/// template the notable can fill (value `<dedupe key>|<template>`, a reference only), and the
/// link record keeps the fields the templates name, so the click runs no search for them.
#[test]
fn the_posted_message_offers_triage_and_records_the_fields_templates_name() {
    let (home, emulator) = crate::slack::setup();
    home.append_local_conf(
        "\n[triage:process_tree]\nsearch = index=edr process=$process_name$ host=$host$\nlabel = Process tree\n\n\
         [triage:by_dest]\nsearch = index=main dest=$dest$\n\n\
         [triage:broken]\nsearch = index=main x=$x\n",
    );
    let row = vec![
        ("event_id", one("EVT-7")),
        ("rule_name", one("Suspicious process")),
        ("host", one("ws-17")),
        ("process_name", one("powershell.exe -enc \"AAA\"")),
        ("urgency", one("high")),
    ];
    let run = crate::slack::run_slack(
        &home,
        &emulator,
        &scheduler_sid(3),
        &[row],
        json!({"account": "default", "buttons": "ack,triage"}),
    );
    run.assert_code(0).assert_line("WARN", "[triage:broken]");
    let posted = crate::slack::posted(&emulator);
    assert_eq!(posted.len(), 1);
    let buttons: Vec<&Value> = posted[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|block| block["elements"].as_array())
        .flatten()
        .filter(|element| element["action_id"] == "stackflow_triage")
        .collect();
    assert_eq!(buttons.len(), 1, "only the template the notable can fill: {buttons:?}");
    assert_eq!(buttons[0]["text"]["text"], "Triage: Process tree");
    let value = buttons[0]["value"].as_str().unwrap();
    let (reference, template) = value.split_once('|').unwrap();
    assert_eq!(template, "process_tree");
    let links = emulator.kv_records("stackflow_links");
    let link = links.iter().find(|l| l["_key"] == reference).expect("the message's link record");
    assert_eq!(link["process_name"], "powershell.exe -enc \"AAA\"", "{link}");
    assert_eq!(link["host"], "ws-17", "{link}");
}

/// `summary = llm` on a template: the model sees the digest redacted as an alert's context
/// (user names and addresses as placeholders), the thread gets its answer with the values
/// restored, and the call is a `stackflow:llm` receipt of action `triage`.
#[test]
fn a_model_summary_of_a_triage_sees_no_pii_and_the_thread_has_it_restored() {
    let setup = triage_setup(
        "[triage:llm_activity]\nsearch = index=main src=$src$\nfields = user, src\nsummary = llm\n",
    );
    let emu = &setup.emu;
    let ca = setup.home.root.join("emulator-ca.pem");
    setup.home.append_local_conf(&format!(
        "\n[llm:default]\nurl = {}/v1/chat/completions\nmodel = soc-summarizer\nca_file = {}\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "llm.default", "sk-test");
    emu.set_search_rows(vec![
        json!({"user": "svc_backup", "src": "203.0.113.7", "action": "failure"}),
        json!({"user": "svc_backup", "src": "203.0.113.7", "action": "success"}),
    ]);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-l1", "UALICE", "llm_activity", &message, "30.1"));
    wait_for("the triage receipt", || interactions(&setup.home).len() == 1);
    let calls = emu.requests_to("/v1/chat/completions");
    assert_eq!(calls.len(), 1);
    let sent = String::from_utf8(calls[0].body.clone()).unwrap();
    for raw in ["svc_backup", "203.0.113.7", "10.0.0.1"] {
        assert!(!sent.contains(raw), "{raw:?} reached the model: {sent}");
    }
    assert!(sent.contains("<USER_1>") && sent.contains("<IP_1>"), "{sent}");
    let replies = thread_replies(&setup, &message.1);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let first = replies[0]["blocks"][0]["text"]["text"].as_str().unwrap().to_string();
    assert!(first.contains("Model summary") && first.contains("svc_backup"), "{first}");
    assert!(!first.contains("<USER_") && !first.contains("&lt;USER_"), "{first}");
    let llm = setup.home.stash_lines(".stash_stackflow_llm");
    assert_eq!(llm.len(), 1, "{llm:?}");
    assert_eq!(
        (llm[0].1["action"].as_str(), llm[0].1["outcome"].as_str()),
        (Some("triage"), Some("ok"))
    );
    assert_eq!(interactions(&setup.home)[0]["outcome"], "done");
    assert_clean(&listener.stop());
}

/// Slack delivers the same slash command envelope again: acknowledged, not run again.
#[test]
fn a_redelivered_slash_command_runs_once() {
    let setup = triage_setup("");
    let emu = &setup.emu;
    let listener = Listener::start(&setup);
    let envelope = emu.socket_send_slash_command("by_user bob", "UALICE");
    wait_for("the answer", || emu.slack_response_url_posts().len() == 1);
    emu.socket_send(envelope.clone());
    wait_for("the duplicate receipt", || interactions(&setup.home).len() == 2);
    assert_eq!(emu.splunk_searches().len(), 1, "run once");
    assert_eq!(interactions(&setup.home)[1]["outcome"], "duplicate");
    assert_eq!(acked(emu, envelope["envelope_id"].as_str().unwrap()), 2);
    assert_clean(&listener.stop());
}

/// SIGTERM while one search runs and another waits for its permit: the running one answers
/// and is receipted before the process exits; the waiting one is not started, and its asker is
/// told so.
#[test]
fn at_sigterm_the_running_search_finishes_and_a_queued_one_is_not_started() {
    let setup = triage_setup("[slack_response]\nmax_concurrent_searches = 1\n");
    let emu = &setup.emu;
    emu.set_search_delay(Duration::from_secs(2));
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(triage_click("env-q1", "UALICE", "user_activity", &message, "40.1"));
    emu.socket_send(triage_click("env-q2", "UALICE", "user_activity", &message, "40.2"));
    wait_for("the second is queued", || {
        emu.slack_ephemeral().iter().any(|e| e.to_string().contains("queued"))
    });
    let run = listener.stop();
    assert_clean(&run);
    let receipts = interactions(&setup.home);
    let outcomes: Vec<&str> = receipts.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.len(), 2, "{receipts:?}");
    assert!(outcomes.contains(&"done") && outcomes.contains(&"failed"), "{receipts:?}");
    assert_eq!(emu.splunk_searches().len(), 1, "the queued search never reached splunkd");
    assert!(
        emu.slack_ephemeral().iter().any(|e| e.to_string().contains("listener stopped")),
        "{:?}",
        emu.slack_ephemeral()
    );
    assert_eq!(thread_replies(&setup, &message.1).len(), 1);
}
