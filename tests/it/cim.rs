//! StackFlow's forwarded events (HEC, sourcetype `_json`) through the app's search-time rules:
//! a small evaluator of the subset of props.conf / eventtypes.conf / tags.conf the app uses
//! (`[source::…]` stanzas, `FIELDALIAS-` with `AS`/`ASNEW`, `EVAL-` with `coalesce`, `case`,
//! `match`, `lower`, string literals; eventtype searches of `field=value*` terms; tags per
//! eventtype), following props.conf.spec: aliases run before evaluations, evaluations see the
//! fields as they were before any of them ran. The assertions are the CIM fields and tags of
//! Ticket Management and Authentication (Splunk_SA_CIM 5.0.1 data models).

use serde_json::{Value, json};
use stackflow::splunk::conf::ConfFile;
use std::collections::{BTreeMap, BTreeSet};

type Fields = BTreeMap<String, String>;

/// Whether a source matches a props.conf `[source::…]` pattern: `...` any text, `*` within
/// one path segment, a leading `(?i)` case-insensitive (ASCII).
fn source_matches(pattern: &str, source: &str) -> bool {
    match pattern.strip_prefix("(?i)") {
        Some(rest) => {
            source_regex(&rest.to_ascii_lowercase()).is_match(&source.to_ascii_lowercase())
        }
        None => source_regex(pattern).is_match(source),
    }
}

fn source_regex(pattern: &str) -> regex::Regex {
    let mut out = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("...") {
            out.push_str(".*");
            rest = after;
        } else if let Some(after) = rest.strip_prefix('*') {
            out.push_str(r"[^/\\]*");
            rest = after;
        } else {
            let ch = rest.chars().next().unwrap();
            out.push_str(&regex::escape(&ch.to_string()));
            rest = &rest[ch.len_utf8()..];
        }
    }
    out.push('$');
    regex::Regex::new(&out).unwrap()
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Literal(String),
    Field(String),
    Call(String, Vec<Expr>),
}

fn parse_expr(text: &str) -> Expr {
    let tokens: Vec<String> = regex::Regex::new(r#""(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*|[(),]"#)
        .unwrap()
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect();
    let mut position = 0;
    let expr = parse_at(&tokens, &mut position);
    assert_eq!(position, tokens.len(), "unparsed rest of {text:?}");
    expr
}

fn parse_at(tokens: &[String], position: &mut usize) -> Expr {
    let token = tokens[*position].clone();
    *position += 1;
    if let Some(literal) = token.strip_prefix('"') {
        return Expr::Literal(literal.trim_end_matches('"').replace("\\\"", "\""));
    }
    if tokens.get(*position).map(String::as_str) != Some("(") {
        return Expr::Field(token);
    }
    *position += 1;
    let mut args = Vec::new();
    while tokens[*position] != ")" {
        args.push(parse_at(tokens, position));
        if tokens[*position] == "," {
            *position += 1;
        }
    }
    *position += 1;
    Expr::Call(token, args)
}

fn eval(expr: &Expr, fields: &Fields) -> Option<String> {
    match expr {
        Expr::Literal(text) => Some(text.clone()),
        Expr::Field(name) => fields.get(name).cloned(),
        Expr::Call(name, args) => match name.as_str() {
            "coalesce" => args.iter().find_map(|arg| eval(arg, fields)),
            "lower" => eval(&args[0], fields).map(|text| text.to_lowercase()),
            "match" => {
                let text = eval(&args[0], fields)?;
                let pattern = eval(&args[1], fields)?;
                Some(regex::Regex::new(&pattern).unwrap().is_match(&text).to_string())
            }
            "case" => args.chunks(2).find_map(|pair| {
                (eval(&pair[0], fields).as_deref() == Some("true"))
                    .then(|| eval(&pair[1], fields))?
            }),
            other => panic!("the evaluator does not know {other}()"),
        },
    }
}

/// Applies the props.conf stanzas whose source pattern matches the event's source.
fn apply_props(props: &ConfFile, event: &mut Fields) {
    let source = event.get("source").cloned().unwrap_or_default();
    for name in props.stanza_names() {
        let Some(pattern) = name.strip_prefix("source::") else { continue };
        if !source_matches(pattern, &source) {
            continue;
        }
        let stanza = props.stanza(name).unwrap();
        for (key, value) in stanza.iter().filter(|(k, _)| k.starts_with("FIELDALIAS-")) {
            let words: Vec<&str> = value.split_whitespace().collect();
            for triple in words.chunks(3) {
                let [from, mode, to] = triple else { panic!("{key}: {value}") };
                let found = event.get(*from).cloned();
                match (mode.to_ascii_uppercase().as_str(), found) {
                    ("ASNEW", Some(v)) if !event.contains_key(*to) => {
                        event.insert(to.to_string(), v);
                    }
                    ("ASNEW", _) => {}
                    ("AS", Some(v)) => {
                        event.insert(to.to_string(), v);
                    }
                    ("AS", None) => {
                        event.remove(*to);
                    }
                    (other, _) => panic!("{key}: unknown alias mode {other}"),
                }
            }
        }
        let before = event.clone();
        for (key, value) in stanza.iter().filter(|(k, _)| k.starts_with("EVAL-")) {
            let field = key.trim_start_matches("EVAL-");
            match eval(&parse_expr(value), &before) {
                Some(v) => event.insert(field.to_string(), v),
                None => event.remove(field),
            };
        }
    }
}

/// Eventtypes whose `field=value` terms (with `*`, case-insensitive) all match; their tags.
fn tags(eventtypes: &ConfFile, tag_conf: &ConfFile, event: &Fields) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    for name in eventtypes.stanza_names() {
        let search = eventtypes.get(name, "search").unwrap();
        let matches = search.split_whitespace().all(|term| {
            let (field, value) = term.split_once('=').unwrap();
            let pattern =
                format!("^{}$", regex::escape(&value.to_ascii_lowercase()).replace(r"\*", ".*"));
            event.get(field).is_some_and(|v| {
                regex::Regex::new(&pattern).unwrap().is_match(&v.to_ascii_lowercase())
            })
        });
        if let (true, Some(stanza)) = (matches, tag_conf.stanza(&format!("eventtype={name}"))) {
            tags.extend(stanza.iter().filter(|(_, v)| *v == "enabled").map(|(k, _)| k.clone()));
        }
    }
    tags
}

/// A forwarded event as Splunk sees it at search time: the JSON's keys plus index/source.
fn event(index: &str, source: &str, data: Value) -> Fields {
    let mut fields: Fields = data
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    fields.insert("index".into(), index.into());
    fields.insert("source".into(), source.into());
    fields.insert("sourcetype".into(), "_json".into());
    fields
}

#[test]
fn forwarded_events_get_cim_fields_and_tags() {
    let home = crate::support::SplunkHome::new();
    let app = home.app_dir();
    let props = ConfFile::load_app_conf(&app, "props.conf").unwrap();
    let eventtypes = ConfFile::load_app_conf(&app, "eventtypes.conf").unwrap();
    let tag_conf = ConfFile::load_app_conf(&app, "tags.conf").unwrap();
    let run = |mut fields: Fields| {
        apply_props(&props, &mut fields);
        let tags = tags(&eventtypes, &tag_conf, &fields);
        (fields, tags)
    };
    let set = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>();

    let (incident, incident_tags) = run(event(
        "itsm_incidents",
        "StackFlow:incidents",
        json!({"id": "7f3a", "number": "INC0001234", "short_description": "Database timeout in prod",
               "priority": "P2", "state": "in_progress", "severity": "high", "assigned_to": "jane.doe@example.com",
               "assignment_group": "Platform Engineering", "opened_by": "john.smith@example.com",
               "ci_id": "CI0000789", "created_at": "2026-11-30T10:00:00Z"}),
    ));
    assert_eq!(incident_tags, set(&["incident", "ticketing"]));
    for (field, value) in [
        ("ticket_id", "INC0001234"),
        ("status", "in_progress"),
        ("priority", "P2"),
        ("severity", "high"),
        ("user", "jane.doe@example.com"),
        ("src_user", "john.smith@example.com"),
        ("description", "Database timeout in prod"),
        ("dest", "CI0000789"),
        ("time_submitted", "2026-11-30T10:00:00Z"),
        ("vendor_product", "StackFlow"),
    ] {
        assert_eq!(incident.get(field).map(String::as_str), Some(value), "incident {field}");
    }

    let (change, change_tags) = run(event(
        "itsm_changes",
        "stackflow",
        json!({"id": "c-1", "number": "CHG0000042", "state": "scheduled", "priority": "P3",
               "description": "Patch the Aurora cluster", "short_description": "Patch",
               "assigned_to": "ops@example.com", "requested_by": "alice@example.com"}),
    ));
    assert_eq!(change_tags, set(&["change", "ticketing"]));
    assert_eq!(change["ticket_id"], "CHG0000042");
    assert_eq!(change["status"], "scheduled");
    assert_eq!(change["src_user"], "alice@example.com");
    assert_eq!(change["description"], "Patch the Aurora cluster", "the description wins");

    let (failed, auth_tags) = run(event(
        "itsm_auth",
        "stackflow:auth",
        json!({"user": "bob@example.com", "event_type": "login_failed", "source_ip": "203.0.113.9"}),
    ));
    assert_eq!(auth_tags, set(&["authentication"]));
    assert_eq!(failed["action"], "failure");
    assert_eq!(failed["src"], "203.0.113.9");
    assert_eq!(failed["user"], "bob@example.com", "an existing user is kept (ASNEW)");
    assert_eq!(failed["app"], "stackflow");
    let (ok, _) = run(event(
        "itsm_auth",
        "stackflow:auth",
        json!({"user": "jane", "result": "success", "source_ip": "198.51.100.1", "action": "ignored"}),
    ));
    assert_eq!(ok["action"], "success");

    let (api, api_tags) = run(event(
        "itsm_api",
        "stackflow:api",
        json!({"method": "GET", "path": "/incidents", "status": 200}),
    ));
    assert!(api_tags.is_empty(), "{api_tags:?}");
    assert_eq!(api["status"], "200", "StackFlow's own status is kept");
    assert!(!api.contains_key("ticket_id"));

    // Not StackFlow's: untouched, untagged.
    let (other, other_tags) =
        run(event("itsm_incidents", "jira", json!({"number": "J-1", "state": "open"})));
    assert!(other_tags.is_empty());
    assert!(!other.contains_key("ticket_id") && !other.contains_key("status"));
}

#[test]
fn the_index_definitions_ship_disabled() {
    let home = crate::support::SplunkHome::new();
    let indexes = ConfFile::load_app_conf(&home.app_dir(), "indexes.conf").unwrap();
    for index in ["itsm_incidents", "itsm_changes", "itsm_auth", "itsm_ai", "itsm_api"] {
        assert_eq!(indexes.get(index, "disabled"), Some("true"), "{index}");
        assert!(indexes.get(index, "homePath").unwrap().starts_with("$SPLUNK_DB/"));
    }
    assert_eq!(indexes.get("stackflow", "disabled"), None, "the app's own index stays enabled");
}
