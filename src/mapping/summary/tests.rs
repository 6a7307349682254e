//! Unit tests of the template summary: every subset of fields reads as English.

use super::*;

fn context() -> AlertContext {
    AlertContext {
        search_name: "Brute Force Access Behavior Detected".into(),
        ..AlertContext::default()
    }
}

fn row(pairs: &[(&str, &str)]) -> Row {
    let pairs: Vec<(&str, FieldValue)> =
        pairs.iter().map(|(k, v)| (*k, FieldValue::Single(v.to_string()))).collect();
    Row::from_pairs("0", &pairs)
}

#[test]
fn a_full_row_says_who_what_where_risk_mitre_and_why() {
    let r = row(&[
        ("rule_name", "Brute Force Access Behavior Detected"),
        ("urgency", "high"),
        ("user", "jdoe"),
        ("action", "failure"),
        ("count", "42"),
        ("src", "10.0.0.5"),
        ("dest", "finance-db"),
        ("host", "dc01"),
        ("_time", "1763750000"),
        ("risk_score", "80"),
        ("risk_object", "jdoe"),
        ("risk_object_type", "user"),
        ("annotations.mitre_attack.mitre_tactic", "credential-access"),
        ("annotations.mitre_attack.mitre_technique_id", "T1110"),
        ("rule_description", "Many failed logins followed by a success"),
    ]);
    assert_eq!(
        summarize(&r, &context()).unwrap(),
        "Brute Force Access Behavior Detected (high severity). User jdoe had 42 failure events \
         from 10.0.0.5 to finance-db on dc01 at 2025-11-21 18:33:20 UTC. Risk score 80 on user \
         jdoe. MITRE ATT&CK: Credential Access (T1110). Why notable: Many failed logins followed \
         by a success."
    );
}

#[test]
fn any_subset_of_fields_reads_without_empty_clauses() {
    let fields = [
        ("user", "jdoe"),
        ("count", "1"),
        ("action", "success"),
        ("signature", "Logon"),
        ("src", "10.0.0.5"),
        ("dest", "web01"),
        ("host", "dc01"),
        ("_time", "0"),
        ("risk_score", "40"),
        ("risk_object", "web01"),
        ("mitre_tactic", "persistence"),
        ("mitre_technique", "T1098"),
        ("description", "Account changed."),
        ("severity", "low"),
    ];
    // Every subset of the 14 fields (16,384 rows).
    for mask in 0u32..(1 << fields.len()) {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, pair)| *pair)
            .collect();
        let r = row(&pairs);
        let Some(text) = summarize(&r, &context()) else {
            assert!(!has_context(&r), "{pairs:?}");
            continue;
        };
        let lower = text.to_ascii_lowercase();
        for bad in ["null", "  ", " .", "..", ": .", "()", " ,", "had  ", "none"] {
            assert!(!lower.contains(bad), "{bad:?} in {text:?} for {pairs:?}");
        }
        assert!(text.ends_with('.'), "{text}");
        assert!(text.starts_with("Brute Force"), "{text}");
        for sentence in text.split(". ") {
            let first = sentence.chars().next().unwrap();
            assert!(first.is_uppercase() || first.is_ascii_digit(), "{sentence:?} in {text:?}");
        }
    }
}

#[test]
fn null_like_values_and_only_a_name_give_no_summary() {
    assert_eq!(summarize(&row(&[("user", "null"), ("src", " ")]), &context()), None);
    assert_eq!(summarize(&row(&[("rule_name", "X")]), &context()), None);
}

#[test]
fn lists_name_three_values_then_count_the_rest() {
    let many = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    assert_eq!(list(&many(&["a"])), "a");
    assert_eq!(list(&many(&["a", "b"])), "a and b");
    assert_eq!(list(&many(&["a", "b", "c"])), "a, b and c");
    assert_eq!(list(&many(&["a", "b", "c", "d", "e"])), "a, b, c and 2 more");
    let r = Row::from_pairs(
        "0",
        &[("src", FieldValue::Multi(vec!["1.1.1.1".into(), "".into(), "2.2.2.2".into()]))],
    );
    assert_eq!(
        summarize(&r, &context()).unwrap(),
        "Brute Force Access Behavior Detected. Activity from 1.1.1.1 and 2.2.2.2."
    );
}

#[test]
fn long_values_are_cut() {
    let long = "x".repeat(500);
    let text = summarize(&row(&[("user", &long)]), &context()).unwrap();
    assert!(text.chars().count() < 250, "{text}");
    assert!(text.contains('…'));
}
