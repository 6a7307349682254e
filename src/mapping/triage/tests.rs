//! Triage templates: parsing, validation naming stanza and key, token filling, and property
//! tests that no value changes a filled search's shape; the reply within Slack's limits.

use super::render::{Digest, RunEnd, reply, template_summary};
use super::*;
use crate::splunk::conf::ConfFile;
use proptest::prelude::*;
use serde_json::json;

fn template(text: &str) -> Result<Vec<Template>> {
    Template::all(&ConfFile::parse_str(text))
}

fn one(search: &str) -> Template {
    let section: BTreeMap<String, String> = [("search".to_string(), search.to_string())].into();
    Template::parse("t", &section).unwrap()
}

#[test]
fn defaults_and_tokens() {
    let parsed = template(
        "[triage:user_activity]\nsearch = index=main user=$user$ OR src=$src$ user=$user$ | stats count by action\n",
    )
    .unwrap();
    let t = &parsed[0];
    assert_eq!(t.name, "user_activity");
    assert_eq!(t.tokens, ["user", "src"]);
    assert_eq!((t.earliest.as_str(), t.latest.as_str()), ("-24h", "now"));
    assert_eq!(t.max_rows, 1000);
    assert_eq!(t.timeout, Duration::from_secs(30));
    assert_eq!(t.label, "user_activity");
    assert_eq!(t.fields, ["user", "src"]);
    assert_eq!(t.summary, SummaryKind::Template);
}

#[test]
fn filling_quotes_and_escapes_each_value() {
    let t = one("index=main user=$user$ src=$src$ cost=$$5 | head 10");
    let filled = t
        .fill(|name| match name {
            "user" => Some(r#"al"ice\ | delete"#),
            "src" => Some("10.0.0.1"),
            _ => None,
        })
        .unwrap();
    assert_eq!(filled, r#"index=main user="al\"ice\\ | delete" src="10.0.0.1" cost=$5 | head 10"#);
}

#[test]
fn a_missing_token_names_every_missing_token_and_fills_nothing() {
    let t = one("index=main user=$user$ src=$src$ dest=$dest$");
    let missing = t.fill(|name| (name == "src").then_some("1.2.3.4")).unwrap_err();
    assert_eq!(missing.tokens, ["user", "dest"]);
    let message = missing.to_string();
    assert!(message.contains("$user$, $dest$") && message.contains("not run"), "{message}");
    assert!(t.fill(|_| Some("   ")).is_err(), "a blank value is no value");
}

#[test]
fn bad_templates_name_the_stanza_and_key() {
    for (text, key) in [
        ("[triage:a]\nlabel = x\n", "search"),
        ("[triage:a]\nsearch = user=$user\n", "search"),
        ("[triage:a]\nsearch = user=$us er$\n", "search"),
        ("[triage:a]\nsearch = user=\"$user$\"\n", "search"),
        ("[triage:a]\nsearch = x\nmax_rows = 0\n", "max_rows"),
        ("[triage:a]\nsearch = x\nmax_rows = 20000\n", "max_rows"),
        ("[triage:a]\nsearch = x\nmax_rows = many\n", "max_rows"),
        ("[triage:a]\nsearch = x\ntimeout_s = 0\n", "timeout_s"),
        ("[triage:a]\nsearch = x\ntimeout_s = NaN\n", "timeout_s"),
        ("[triage:a]\nsearch = x\nearliest = -24h | delete\n", "earliest"),
        ("[triage:a]\nsearch = x\nlatest = \"now\"\n", "latest"),
        ("[triage:a]\nsearch = x\nsummary = gpt\n", "summary"),
        ("[triage:a]\nsearch = x\nserch = y\n", "serch"),
        (&format!("[triage:a]\nsearch = x\nlabel = {}\n", "x".repeat(80)), "label"),
    ] {
        let error = template(text).unwrap_err().to_string();
        assert!(error.contains(&format!("[triage:a] {key}")), "{text}: {error}");
    }
    let error = template("[triage:help]\nsearch = x\n").unwrap_err().to_string();
    assert!(error.contains("[triage:help]") && error.contains("not a template name"), "{error}");
}

#[test]
fn shape_sees_pipes_brackets_and_quoted_strings() {
    assert_eq!(
        spl_shape(r#"index=a user="x | y" | stats count [search b]"#),
        ["index", "=", "a", "user", "=", "\"…\"", "|", "stats", "count", "[", "search", "b", "]"]
    );
    assert_eq!(spl_shape(r#"u="a\"b" c"#), ["u", "=", "\"…\"", "c"]);
}

/// Hostile values: quotes, backslashes, pipes, brackets, subsearches, macros, unicode,
/// newlines and everything else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"",
            "\\",
            "\\\"",
            "\" | delete | \"",
            "x\\\" | outputlookup evil.csv",
            "[search index=_internal]",
            "`macro(\"a\")`",
            "a\nb | rest /services",
            "$user$",
            "漢字 é 😀",
            "\\\\\"\"",
        ])
        .prop_map(str::to_string),
        "[\"\\\\|\\[\\]()=` $a-z\n\r\t\\PC]{1,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the values, the filled search has the shape of the same search filled with a
    /// harmless word: the same commands, pipes and brackets outside quotes.
    #[test]
    fn no_value_changes_the_shape(user in value(), src in value()) {
        let t = one("search index=main (user=$user$ OR src_user=$user$) src=$src$ | stats count by action, src | sort - count");
        let filled = t.fill(|name| match name { "user" => Some(&user), "src" => Some(&src), _ => None });
        if user.trim().is_empty() || src.trim().is_empty() {
            prop_assert!(filled.is_err());
        } else {
            let filled = filled.unwrap();
            let reference = t.fill(|_| Some("x")).unwrap();
            prop_assert_eq!(spl_shape(&filled), spl_shape(&reference), "{}", filled);
        }
    }

    /// Quoting is reversible: the quoted string's content, unescaped, is the value.
    #[test]
    fn a_quoted_value_reads_back_as_itself(v in value()) {
        let quoted = spl_quote(&v);
        let inner = &quoted[1..quoted.len() - 1];
        let mut back = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                back.push(chars.next().expect("an escape is never last"));
            } else {
                prop_assert!(c != '"', "an unescaped quote inside: {}", quoted);
                back.push(c);
            }
        }
        prop_assert_eq!(back, v);
    }

    /// The reply stays within Block Kit's limits and escapes outside text, whatever the rows.
    #[test]
    fn the_reply_is_inert_and_within_limits(values in prop::collection::vec(value(), 1..30)) {
        let t = one("index=main user=$user$");
        let mut digest = Digest::new(&t.fields);
        for (i, v) in values.iter().enumerate() {
            digest.push(&json!({"_time": "2024-01-01", "user": v, "src": format!("<!channel>{i}"), "note": v}));
        }
        let summary = template_summary(&t, &digest, &RunEnd::Complete);
        let body = reply(&t, &digest, &summary, &RunEnd::Complete);
        let blocks = body["blocks"].as_array().unwrap();
        prop_assert!(blocks.len() <= crate::mapping::slack::limits::MAX_BLOCKS);
        let mut texts = Vec::new();
        for block in blocks {
            if let Some(text) = block.get("text") { texts.push(text.clone()); }
            for key in ["fields", "elements"] {
                for item in block.get(key).and_then(|v| v.as_array()).into_iter().flatten() {
                    texts.push(item.clone());
                }
            }
        }
        for text in texts {
            prop_assert_eq!(&text["verbatim"], &json!(true));
            let text = text["text"].as_str().unwrap();
            prop_assert!(text.chars().count() <= crate::mapping::slack::limits::SECTION_TEXT);
            prop_assert!(!text.contains('<') && !text.contains('>'), "{}", text);
        }
    }
}

#[test]
fn digest_counts_top_values_and_keeps_only_the_first_rows() {
    let t = one("index=main user=$user$ src=$src$");
    let mut digest = Digest::new(&t.fields);
    for i in 0..1000 {
        digest.push(&json!({"_time": "t", "user": format!("u{}", i % 3), "src": ["a", "b"], "row": i.to_string()}));
    }
    assert_eq!(digest.rows(), 1000);
    assert_eq!(digest.top("user")[0], ("u0".to_string(), 334));
    assert_eq!(digest.top("src"), [("a".to_string(), 1000), ("b".to_string(), 1000)]);
    assert_eq!(digest.columns(), ["_time", "user", "src", "row"]);
    let summary = template_summary(&t, &digest, &RunEnd::Truncated);
    assert!(summary.starts_with("At least 1000 events matched t"), "{summary}");
    assert!(summary.contains("user u0 (334 of 1000)"), "{summary}");
    let body = reply(&t, &digest, &summary, &RunEnd::Truncated);
    let table = body["blocks"][2]["text"]["text"].as_str().unwrap();
    assert_eq!(table.lines().count(), 11, "a header and ten rows: {table}");
    let none = Digest::new(&t.fields);
    assert_eq!(
        template_summary(&t, &none, &RunEnd::Complete),
        "No events matched t between -24h and now."
    );
}
