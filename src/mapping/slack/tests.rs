//! Unit tests of the Slack mapping (params, text, views, blocks, limits, the mapper).

use super::*;

fn context(params: &[(&str, &str)]) -> AlertContext {
    AlertContext {
        action: STANZA.into(),
        sid: "sid1".into(),
        search_name: "Brute Force Access Behavior Detected".into(),
        app: "search".into(),
        owner: "admin".into(),
        results_link: "https://sh:8000/app/search/@go?sid=sid1".into(),
        rows_total: 1,
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..AlertContext::default()
    }
}

fn row(rid: &str, pairs: &[(&str, &str)]) -> Row {
    let pairs: Vec<(&str, FieldValue)> =
        pairs.iter().map(|(k, v)| (*k, FieldValue::Single(v.to_string()))).collect();
    Row::from_pairs(rid, &pairs)
}

fn run(mapper: &mut SlackMapper, rows: &[Row]) -> Vec<DeliveryItem> {
    let mut items = Vec::new();
    for row in rows {
        items.extend(mapper.push(row).unwrap());
    }
    items.extend(mapper.finish().unwrap());
    items
}

fn all_text(value: &Value) -> String {
    value.to_string()
}

#[test]
fn severities_order_and_parse() {
    assert!(Severity::Informational < Severity::Low);
    assert!(Severity::High < Severity::Critical);
    assert_eq!(Severity::parse(" HIGH "), Some(Severity::High));
    assert_eq!(Severity::parse("info"), Some(Severity::Informational));
    assert_eq!(Severity::parse("urgent"), None);
    assert_eq!(Severity::of_row(&row("0", &[("urgency", "critical")])), Severity::Critical);
    assert_eq!(
        Severity::of_row(&row("0", &[("severity", "low"), ("urgency", "critical")])),
        Severity::Low
    );
    assert_eq!(Severity::of_row(&row("0", &[])), Severity::Medium);
}

#[test]
fn params_are_validated() {
    let bad = SlackMapper::new(context(&[("min_severity", "urgent")])).err().unwrap();
    assert!(bad.to_string().contains("param.min_severity"), "{bad}");
    assert!(SlackMapper::new(context(&[("mode", "batch")])).is_err());
    assert!(SlackMapper::new(context(&[("max_rows", "0")])).is_err());
    let routes = parse_severity_channels("critical=#soc-critical, high = #soc-high").unwrap();
    assert_eq!(routes.get(&Severity::Critical).map(String::as_str), Some("#soc-critical"));
    assert_eq!(routes.get(&Severity::High).map(String::as_str), Some("#soc-high"));
    assert!(parse_severity_channels("severe=#x").is_err());
    assert!(parse_severity_channels("high").is_err());
}

#[test]
fn default_summary_says_who_what_where_when() {
    let r = row(
        "0",
        &[
            ("user", "jdoe"),
            ("action", "failure"),
            ("count", "42"),
            ("src", "10.0.0.5"),
            ("dest", "finance-db"),
            ("host", "dc01"),
            ("_time", "1763750000"),
        ],
    );
    assert_eq!(
        default_summary(&r, &context(&[])),
        "Brute Force Access Behavior Detected. User jdoe had 42 failure events from 10.0.0.5 to \
         finance-db on dc01 at 2025-11-21 18:33:20 UTC."
    );
    assert_eq!(
        default_summary(&row("0", &[("dest", "web01")]), &context(&[])),
        "Brute Force Access Behavior Detected. Activity to web01."
    );
    assert_eq!(
        default_summary(&row("0", &[]), &context(&[])),
        "Brute Force Access Behavior Detected returned a result"
    );
}

#[test]
fn template_fills_fields_and_alert_values() {
    let r = row("3", &[("user", "jdoe"), ("dest", "finance-db"), ("_time", "0")]);
    let text = render_template(
        "{user} on {dest} ({severity}, {search_name}) {missing} { not a field } at {_time}",
        &r,
        &context(&[]),
        Severity::High,
    );
    assert_eq!(
        text,
        "jdoe on finance-db (high, Brute Force Access Behavior Detected) { not a field } at 1970-01-01 00:00:00 UTC"
    );
}

#[test]
fn time_formats_as_utc() {
    assert_eq!(format_time("0"), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_time("951782400.5"), "2000-02-29 00:00:00 UTC");
    assert_eq!(format_time("yesterday"), "yesterday");
}

#[test]
fn mrkdwn_is_escaped_and_cut_cleanly() {
    assert_eq!(escape_mrkdwn("<!channel> & co"), "&lt;!channel&gt; &amp; co");
    let cut = truncate_escaped("abc&amp;def", 6);
    assert_eq!(cut, "abc…");
    assert_eq!(truncate("abcdef", 4), "abc…");
    assert_eq!(truncate("abc", 4), "abc");
}

#[test]
fn alert_mode_builds_one_message_with_context_and_button() {
    let mut mapper = SlackMapper::new(context(&[("channel", "#soc")])).unwrap();
    let items = run(
        &mut mapper,
        &[row(
            "0",
            &[
                ("severity", "high"),
                ("rule_name", "Brute Force"),
                ("user", "jdoe"),
                ("annotations.mitre_attack.mitre_tactic", "credential-access"),
                ("annotations.mitre_attack", "T1110"),
                ("risk_score", "80"),
                ("event_id", "E1"),
            ],
        )],
    );
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.dedupe_key, "slack:default:#soc:sid1");
    let request = item.request_value();
    let blocks = request["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], "🔴 HIGH · Brute Force");
    let text = all_text(&item.request_value());
    assert!(text.contains("credential-access") && text.contains("T1110") && text.contains("80"));
    assert!(text.contains("Open in Splunk"));
    assert_eq!(item.request_value()["channel"], "#soc");
    assert_eq!(item.request_value()["links"][0]["event_id"], "E1");
    assert!(item.request_value()["text"].as_str().unwrap().starts_with(
        "🔴 HIGH · Brute Force: Brute Force (high severity). Activity involving user jdoe"
    ));
}

#[test]
fn alert_mode_lists_max_rows_then_more() {
    let mut mapper = SlackMapper::new(context(&[("max_rows", "3")])).unwrap();
    let rows: Vec<Row> =
        (0..7).map(|i| row(&i.to_string(), &[("user", &format!("u{i}"))])).collect();
    let items = run(&mut mapper, &rows);
    assert_eq!(items.len(), 1);
    let text = all_text(&items[0].request_value());
    assert!(text.contains("+4 more results not shown"), "{text}");
    assert!(text.contains("u2") && !text.contains("u3"));
    // Every row the message lists or counts in "+4 more" gets its status line with it.
    let rids: Vec<&str> = items[0].context.rows.iter().map(|r| r.rid.as_str()).collect();
    assert_eq!(rids, vec!["0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(items[0].dedupe_key, "slack:default:account-default:sid1");
}

#[test]
fn thresholds_and_routes() {
    let mut mapper = SlackMapper::new(context(&[
        ("mode", "row"),
        ("min_severity", "medium"),
        ("channel", "#soc"),
        ("severity_channels", "critical=#soc-critical"),
    ]))
    .unwrap();
    let items = run(
        &mut mapper,
        &[
            row("0", &[("severity", "low")]),
            row("1", &[("severity", "critical"), ("event_id", "E1")]),
            row("2", &[]),
            row("3", &[("urgency", "informational")]),
        ],
    );
    let channels: Vec<String> = items
        .iter()
        .map(|item| item.request_value()["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(channels, vec!["#soc-critical", "#soc"]);
    assert_eq!(items[0].dedupe_key, "slack:default:#soc-critical:sid1:E1");
    assert!(items[1].dedupe_key.starts_with("slack:default:#soc:sid1:"));
    assert_eq!(items[1].context.rid, "2");
}

#[test]
fn row_mode_digest_cap_adds_one_summary() {
    let mut mapper = SlackMapper::new(context(&[("mode", "row"), ("max_rows", "5")])).unwrap();
    let rows: Vec<Row> = (0..30).map(|i| row(&i.to_string(), &[("user", "x")])).collect();
    let items = run(&mut mapper, &rows);
    assert_eq!(items.len(), 6);
    let last = &items[5];
    assert!(all_text(&last.request_value()).contains("+25 more results not posted"));
    assert!(last.dedupe_key.ends_with(":more"));
    assert_eq!(last.context.rid, "5");
    let keys: std::collections::BTreeSet<_> = items.iter().map(|i| &i.dedupe_key).collect();
    assert_eq!(keys.len(), 6, "distinct dedupe keys");
}

#[test]
fn per_result_alerts_key_by_result_id() {
    let mut ctx = context(&[]);
    ctx.result_id = Some("7".into());
    let mut mapper = SlackMapper::new(ctx).unwrap();
    let items = run(&mut mapper, &[row("7", &[("user", "x")])]);
    assert_eq!(items[0].dedupe_key, "slack:default:account-default:sid1:7");
}

#[test]
fn row_hash_is_stable_and_sensitive() {
    let a = row("0", &[("user", "x")]);
    assert_eq!(row_hash(&a), row_hash(&row("0", &[("user", "x")])));
    assert_ne!(row_hash(&a), row_hash(&row("1", &[("user", "x")])));
    assert_ne!(row_hash(&a), row_hash(&row("0", &[("user", "y")])));
}

#[test]
fn huge_values_stay_within_limits_and_budget() {
    let huge = "x<".repeat(5000);
    let mut mapper = SlackMapper::new(context(&[("max_rows", "60")])).unwrap();
    let rows: Vec<Row> = (0..60)
        .map(|i| {
            row(
                &i.to_string(),
                &[("user", &huge), ("src", &huge), ("dest", &huge), ("rule_name", &huge)],
            )
        })
        .collect();
    let items = run(&mut mapper, &rows);
    let body = slack_body(&items[0].request_value(), "#soc", &[], &LinkBases::default());
    let blocks = body["blocks"].as_array().unwrap();
    assert!(blocks.len() <= limits::MAX_BLOCKS);
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
    let total: usize = blocks.iter().map(block_chars).sum();
    assert!(total <= MESSAGE_TEXT_BUDGET + 3000, "{total}");
    assert!(all_text(&body).contains("more results not shown"));
}

#[test]
fn link_buttons_merge_hints_and_records() {
    let bases = LinkBases {
        soar: Some("https://soar.example.com/".into()),
        stackflow: Some("https://acme.example.com/prod/api".into()),
    };
    let mut blocks = vec![
        json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [splunk_button("https://sh/x").unwrap()]}),
    ];
    let hints = vec![
        LinkRecord { event_id: "E1".into(), ..LinkRecord::default() },
        LinkRecord { event_id: "E2".into(), ..LinkRecord::default() },
    ];
    let records = vec![
        LinkRecord {
            event_id: "E1".into(),
            soar_container_id: "17".into(),
            ..LinkRecord::default()
        },
        LinkRecord {
            event_id: "E1".into(),
            stackflow_incident_id: "INC1".into(),
            ..LinkRecord::default()
        },
        LinkRecord {
            event_id: "E2".into(),
            soar_container_id: "17".into(),
            ..LinkRecord::default()
        },
    ];
    add_link_buttons(&mut blocks, &hints, &records, &bases);
    let elements = blocks[0]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 3);
    assert_eq!(elements[1]["text"]["text"], "Open SOAR container");
    assert_eq!(elements[1]["url"], "https://soar.example.com/mission/17");
    assert_eq!(elements[2]["text"]["text"], "Open StackFlow incident");
    assert_eq!(elements[2]["url"], "https://acme.example.com/prod/api/incidents/INC1");
}

#[test]
fn fit_limits_cuts_and_drops() {
    let long_url = format!("https://x/{}", "a".repeat(3000));
    let mut blocks: Vec<Value> = vec![json!({"type": "header", "text": plain(&"h".repeat(400))})];
    for _ in 0..60 {
        blocks.push(json!({"type": "section", "text": mrkdwn(&"s".repeat(5000)),
            "fields": (0..12).map(|_| mrkdwn(&"f".repeat(2500))).collect::<Vec<_>>()}));
    }
    blocks.push(json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [
        {"type": "button", "text": plain(&"b".repeat(100)), "url": long_url, "action_id": "a"},
        {"type": "button", "text": plain(&"b".repeat(100)), "url": "https://ok", "value": "v".repeat(3000), "action_id": "b"}
    ]}));
    fit_limits(&mut blocks);
    assert_eq!(blocks.len(), 50);
    assert_eq!(blocks[49]["block_id"], ACTIONS_BLOCK_ID);
    let elements = blocks[49]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 1);
    assert_eq!(elements[0]["text"]["text"].as_str().unwrap().chars().count(), 75);
    assert_eq!(elements[0]["value"].as_str().unwrap().chars().count(), 2000);
    assert_eq!(blocks[0]["text"]["text"].as_str().unwrap().chars().count(), 150);
    assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 10);
    assert_eq!(blocks[1]["text"]["text"].as_str().unwrap().chars().count(), 3000);
}

#[test]
fn summary_llm_carries_the_model_context_and_the_summary_can_be_swapped() {
    assert!(SlackMapper::new(context(&[("summary", "magic")])).is_err());
    let mut mapper = SlackMapper::new(context(&[("summary", "llm"), ("mode", "row")])).unwrap();
    let items = run(
        &mut mapper,
        &[row(
            "0",
            &[
                ("user", "jdoe"),
                ("src", "10.0.0.5"),
                ("risk_object", "amy"),
                ("risk_object_type", "user"),
            ],
        )],
    );
    let mut request = items[0].request_value();
    let llm = request["llm"].clone();
    assert_eq!(llm["account"], "default");
    assert_eq!(llm["fields"]["src"], "10.0.0.5");
    assert_eq!(llm["users"], json!(["jdoe", "amy"]));
    let template = llm["summary"].as_str().unwrap().to_string();
    assert!(replace_summary(&mut request, &template, "A <b> & c"));
    assert!(request["blocks"][2]["text"]["text"].as_str().unwrap().contains("A &lt;b&gt; &amp; c"));
    assert!(request["text"].as_str().unwrap().ends_with("A &lt;b&gt; &amp; c"));
    assert!(!replace_summary(&mut request, "not there", "x"));
    let plain = run(&mut SlackMapper::new(context(&[])).unwrap(), &[row("0", &[("user", "x")])]);
    assert!(plain[0].request_value().get("llm").is_none());
}

#[test]
fn aggregate_window_s_marks_each_message_with_its_storm() {
    for bad in ["-1", "soon", "86401"] {
        let error = SlackMapper::new(context(&[("aggregate_window_s", bad)])).err().unwrap();
        assert!(error.to_string().contains("param.aggregate_window_s"), "{error}");
    }
    assert!(
        SlackMapper::new(context(&[("aggregate_window_s", "0")]))
            .unwrap()
            .params()
            .aggregate_window_s
            .is_none()
    );
    let params = [("aggregate_window_s", "600"), ("mode", "row")];
    let rows = [
        row("0", &[("rule_name", "Brute Force"), ("user", "jdoe"), ("src", "10.0.0.1")]),
        row("1", &[("rule_name", "Brute Force"), ("user", "jdoe"), ("src", "10.0.0.2")]),
        row("2", &[("rule_name", "Brute Force"), ("user", "amy")]),
        row("3", &[("rule_name", "Port Scan"), ("user", "jdoe")]),
    ];
    let items = run(&mut SlackMapper::new(context(&params)).unwrap(), &rows);
    let keys: Vec<String> = items
        .iter()
        .map(|item| item.request_value()["storm"]["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys[0], keys[1], "same rule and entity");
    assert_ne!(keys[0], keys[2], "another entity");
    assert_ne!(keys[0], keys[3], "another rule");
    assert_eq!(items[0].request_value()["storm"]["window_s"], 600);
    let note = storm_note(37, 600);
    assert!(note.contains("37 more in the last 10 min"), "{note}");
    let body = with_storm_note(
        &json!({"text": "t", "blocks": [{"type": "header"}, {"type": "section"}]}),
        &note,
    );
    assert_eq!(body["blocks"][1]["type"], "context");
    assert!(body["text"].as_str().unwrap().contains("37 more"));
}
