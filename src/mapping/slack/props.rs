//! Property tests of PRODUCT §15 "Outside text is inert in Slack": whatever the alert's
//! fields, search name, app, results link, event ids, link ids and model answer hold, every
//! mrkdwn text we produce (and the notification `text`) has no `<` or `>` but those of the
//! links we make ourselves and no `&` that is not an entity we wrote; every mrkdwn text
//! object is `verbatim`; plain text carries outside `<`, `>`, `&` escaped too.

use super::*;
use proptest::prelude::*;

/// Outside text: injections, entities, delimiters, unicode and anything else.
fn outside() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "<!channel>",
            "<!here|here>",
            "<@U123>",
            "<#C123|general>",
            "<http://evil.example|click>",
            "&lt;!channel&gt;",
            "a & b",
            "&amp;",
            "&",
            "<",
            ">",
            "*bold* _it_ ~s~ `code`",
            "x|y",
            "漢字 é 😀",
            "",
        ])
        .prop_map(str::to_string),
        "[<>&|!@#a-z \\PC]{0,40}",
    ]
}

/// The links we make ourselves in mrkdwn (`<link|label>`), as they appear escaped.
fn produced_links(results_link: &str) -> Vec<String> {
    let link = escape_mrkdwn(results_link.trim());
    vec![format!("<{link}|open all results in Splunk>")]
}

/// Checks one mrkdwn text: produced links aside, no `<`/`>`, and every `&` an entity.
fn assert_inert(text: &str, allowed: &[String], whole: &Value) -> Result<(), TestCaseError> {
    let mut rest = text.to_string();
    for link in allowed {
        rest = rest.replace(link.as_str(), "");
    }
    prop_assert!(!rest.contains(['<', '>']), "unescaped < or > in {text:?} of {whole}");
    let mut at = 0;
    while let Some(found) = rest[at..].find('&') {
        let tail = &rest[at + found..];
        prop_assert!(
            ["&amp;", "&lt;", "&gt;"].iter().any(|entity| tail.starts_with(entity)),
            "a bare & in {text:?} of {whole}"
        );
        at += found + 1;
    }
    Ok(())
}

/// Walks a message: every mrkdwn text object (verbatim, inert), every plain text (no raw
/// `<`, `>`), and the notification `text`.
fn assert_message_inert(message: &Value, allowed: &[String]) -> Result<(), TestCaseError> {
    fn walk(
        value: &Value,
        allowed: &[String],
        whole: &Value,
        found: &mut usize,
    ) -> Result<(), TestCaseError> {
        match value {
            Value::Object(map) => {
                let kind = map.get("type").and_then(Value::as_str);
                if let (Some("mrkdwn"), Some(Value::String(text))) = (kind, map.get("text")) {
                    *found += 1;
                    prop_assert_eq!(map.get("verbatim"), Some(&Value::Bool(true)), "{}", whole);
                    assert_inert(text, allowed, whole)?;
                }
                if let (Some("plain_text"), Some(Value::String(text))) = (kind, map.get("text")) {
                    prop_assert!(
                        !text.contains(['<', '>']),
                        "raw < or > in {:?} of {}",
                        text,
                        whole
                    );
                }
                for child in map.values() {
                    walk(child, allowed, whole, found)?;
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, allowed, whole, found)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut found = 0;
    walk(message.get("blocks").unwrap_or(&Value::Null), allowed, message, &mut found)?;
    prop_assert!(found > 0, "no mrkdwn text in {message}");
    if let Some(text) = message.get("text").and_then(Value::as_str) {
        assert_inert(text, allowed, message)?;
    }
    Ok(())
}

/// Row fields the message shows (context fields, title, summary sources, ids).
const SHOWN: &[&str] = &[
    "rule_name",
    "event_id",
    "user",
    "src",
    "dest",
    "host",
    "signature",
    "action",
    "app",
    "risk_object",
    "risk_object_type",
    "annotations.mitre_attack.mitre_tactic",
    "mitre_technique",
    "count",
    "_time",
    "comment",
    "soar_container_id",
    "stackflow_incident_id",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn outside_strings_are_inert_in_every_message(
        values in prop::collection::vec(outside(), SHOWN.len()),
        search_name in outside(),
        app in outside(),
        results_link in prop_oneof![
            Just("https://sh:8000/app/search/@go?sid=s&x=<1>".to_string()),
            Just("https://sh:8000/app/search/@go?sid=s1".to_string()),
            outside(),
        ],
        severity in prop::sample::select(vec!["high", "low", "critical"]),
        mode in prop::sample::select(vec!["alert", "row"]),
        template in prop::sample::select(vec!["", "{user} on {dest}: {comment} ({search_name})"]),
        answer in outside(),
        note in outside(),
        link_id in outside(),
        rows in 1usize..4,
    ) {
        let mut params = vec![("mode", mode), ("max_rows", "2"), ("playbooks", "repo/<b>&c")];
        if !template.is_empty() {
            params.push(("summary_template", template));
        }
        let context = AlertContext {
            search_name: search_name.clone(),
            app: app.clone(),
            results_link: results_link.clone(),
            sid: "sid1".into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..AlertContext::default()
        };
        let mut mapper = SlackMapper::new(context).unwrap();
        let mut pairs: Vec<(&str, FieldValue)> = SHOWN
            .iter()
            .zip(&values)
            .map(|(name, value)| (*name, FieldValue::Single(value.clone())))
            .collect();
        pairs.push(("severity", FieldValue::Single(severity.to_string())));
        let row = Row::from_pairs("0", &pairs);
        let mut items = Vec::new();
        for _ in 0..rows {
            items.extend(mapper.push(&row).unwrap());
        }
        items.extend(mapper.finish().unwrap());
        prop_assert!(!items.is_empty());
        let allowed = produced_links(&results_link);
        let bases = LinkBases {
            soar: Some("https://soar.example.com".into()),
            stackflow: Some("https://sf.example.com/api".into()),
        };
        let records = [LinkRecord {
            event_id: values[1].trim().to_string(),
            soar_container_id: link_id.clone(),
            stackflow_incident_id: format!("{link_id}2"),
        }];
        for item in &items {
            let mut request = item.request_value();
            assert_message_inert(&request, &allowed)?;
            // What is sent: the body with link and response buttons, a storm note, and the
            // model's answer in place of the summary.
            let mut body = slack_body(&request, "#soc", &records, &bases);
            add_response_buttons(
                body["blocks"].as_array_mut().unwrap(),
                &request,
                &format!("slack:default:#soc:{link_id}"),
            );
            assert_message_inert(&body, &allowed)?;
            assert_message_inert(&with_storm_note(&body, &note), &allowed)?;
            let summary = row_view(&row, &AlertContext::default(), None).summary;
            replace_summary(&mut request, &summary, &answer);
            assert_message_inert(&request, &allowed)?;
            // Only the buttons' `value`s (references the click hands back, never shown) and
            // URLs (percent-encoded) may hold outside text as it was.
            let mut shown = body.clone();
            for element in shown["blocks"].as_array_mut().into_iter().flatten()
                .filter_map(|block| block.get_mut("elements")).filter_map(Value::as_array_mut).flatten()
            {
                if let Some(button) = element.as_object_mut() {
                    button.remove("value");
                    button.remove("url");
                }
            }
            let text = shown.to_string();
            for injection in ["<!channel>", "<@U123>", "<http://evil.example|click>", "<!here|here>"] {
                prop_assert!(!text.contains(injection), "{injection} in {text}");
            }
        }
    }
}
