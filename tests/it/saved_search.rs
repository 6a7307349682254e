//! The shipped saved search *StackFlow - Sync notables*: disabled, every 5 minutes, over the
//! notables linked in the last 7 days; its `stackflowsync` invocation is valid for the shipped
//! command (the searchbnf syntax, then the installed binary's own argument validation at
//! getinfo), and run as the scheduler runs it (splunk-system-user) it updates notables.

use crate::support::{SplunkHome, one};
use crate::sync::{csv, execute, getinfo, run, setup};
use serde_json::json;
use stackflow::splunk::conf::ConfFile;

const NAME: &str = "StackFlow - Sync notables";

/// Splits SPL arguments on spaces outside double quotes (quotes kept out).
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(ch),
        }
    }
    if !current.is_empty() {
        args.push(current);
    }
    args
}

/// Checks `key=value` arguments against a searchbnf `syntax` line: each key is an option of
/// the syntax, each value matches its `(a|b|c)` list, `<bool>` or `<string>`.
fn check_against_searchbnf(syntax: &str, args: &[String]) -> Result<(), String> {
    let option = regex::Regex::new(r"\((\w+)=(\([^)]*\)|<\w+>)\)\?").unwrap();
    let options: Vec<(String, String)> =
        option.captures_iter(syntax).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    if options.is_empty() {
        return Err(format!("no options in syntax {syntax:?}"));
    }
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or(format!("{arg}: not key=value"))?;
        let (_, kind) = options
            .iter()
            .find(|(name, _)| name == key)
            .ok_or(format!("{key}: not an option of the searchbnf syntax"))?;
        let valid = match kind.as_str() {
            "<bool>" => ["true", "false", "t", "f", "1", "0", "yes", "no"].contains(&value),
            "<string>" | "<int>" => !value.is_empty(),
            list => list.trim_matches(['(', ')']).split('|').any(|choice| choice == value),
        };
        if !valid {
            return Err(format!("{key}={value} does not match {kind}"));
        }
    }
    Ok(())
}

#[test]
fn the_shipped_saved_search_is_disabled_scheduled_and_valid_for_the_command() {
    let home = SplunkHome::new();
    let app = home.app_dir();
    let saved = ConfFile::load_app_conf(&app, "savedsearches.conf").unwrap();
    assert_eq!(saved.get(NAME, "disabled"), Some("1"));
    assert_eq!(saved.get(NAME, "enableSched"), Some("1"));
    assert_eq!(saved.get(NAME, "cron_schedule"), Some("*/5 * * * *"));
    assert_eq!(saved.get(NAME, "dispatch.earliest_time"), Some("-7d"));
    let search = saved.get(NAME, "search").unwrap();
    assert!(search.starts_with("`notable`"), "{search}");
    assert!(search.contains("inputlookup stackflow_links"), "{search}");
    assert!(search.contains("relative_time(now(), \"-7d\")"), "{search}");
    // The subsearch reads only fields the lookup definition declares.
    let transforms = ConfFile::load_app_conf(&app, "transforms.conf").unwrap();
    let declared = transforms.get("stackflow_links", "fields_list").unwrap();
    for used in ["updated", "event_id"] {
        assert!(declared.split(',').any(|field| field.trim() == used), "{used}");
    }
    // The command is the last one of the pipeline.
    let (_, last) = search.rsplit_once('|').unwrap();
    let args = split_args(last.trim());
    assert_eq!(args[0], "stackflowsync");
    let args = &args[1..];
    assert_eq!(args, ["update_notables=true"]);

    let searchbnf = ConfFile::load_app_conf(&app, "searchbnf.conf").unwrap();
    let syntax = searchbnf.get("stackflowsync-command", "syntax").unwrap();
    check_against_searchbnf(syntax, args).unwrap();
    // The checker does fail on what the command would refuse.
    for bad in ["update_notables=maybe", "target=jira", "bogus=1"] {
        assert!(check_against_searchbnf(syntax, &[bad.to_string()]).is_err(), "{bad}");
    }

    // The installed binary accepts the arguments at getinfo, as splunkd would start it.
    let setup = setup();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, replies, stderr) = run(&setup, &[getinfo(&setup.emu, &refs)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(replies[0].metadata, json!({"type": "stateful"}));
    let (code, replies, _) = run(&setup, &[getinfo(&setup.emu, &["update_notables=maybe"])]);
    assert_eq!(code, 2);
    assert!(replies[0].metadata["error"].as_str().unwrap().contains("update_notables"));
}

#[test]
fn run_by_the_scheduler_it_resolves_notables_of_closed_containers() {
    let setup = setup();
    let emu = &setup.emu;
    // A search owned by nobody runs as splunk-system-user, which splunkd does not describe
    // with capabilities.
    emu.set_username("splunk-system-user");
    emu.set_capabilities(&[]);
    let container = emu.add_soar_container(
        json!({"name": "n1", "label": "events", "status": "closed", "source_data_identifier": "e1"}),
    );
    let rows = csv(&[vec![
        ("event_id", one("e1")),
        ("status", one("1")),
        ("soar_container_id", one(&container.to_string())),
    ]]);
    let (code, _, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(emu.notable_status("e1").as_deref(), Some("4"));
}
