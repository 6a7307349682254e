//! Unit tests of what the SOAR mapper writes itself (`wire`): the bytes against serde's, JSON
//! strings, reused buffers, and names and values of every kind.

use super::*;

/// `ArtifactWriter` against the reference, `serde_json` on `row_artifacts`.
pub(super) fn assert_wire_matches(row: &Row, mapping: &cef::FieldMapping) {
    let mut writer = ArtifactWriter::new(mapping.clone());
    for (name, severity) in [("Splunk result 7", "high"), ("na\"me\n\u{1}é", "low")] {
        let mut ours = b"[".to_vec();
        let count = writer.write(row, name, severity, &mut ours, false, b"{");
        let written: Vec<(String, String)> = writer
            .written()
            .map(|(text, sdi)| (String::from_utf8(ours[text].to_vec()).unwrap(), sdi.to_string()))
            .collect();
        ours.push(b']');
        let reference = row_artifacts(row, mapping, name, severity);
        assert_eq!(count, reference.len());
        let expected: Vec<(String, String)> = reference
            .iter()
            .map(|a| (serde_json::to_string(a).unwrap(), a.source_data_identifier.clone()))
            .collect();
        assert_eq!(written, expected, "what `written` says the call wrote");
        assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&reference).unwrap());
    }
}

#[test]
fn written_artifacts_are_the_bytes_of_the_reference_mapping() {
    let default = cef::FieldMapping::default();
    let overrides = cef::FieldMapping::parse("dest_ip=sourceAddress,user=,sig=cs1").unwrap();
    let rows = [
        Row::from_pairs("0", &[("src", one("10.0.0.1")), ("user", one("bob"))]),
        Row::from_pairs(
            "1",
            &[
                ("_time", one("1763750000.000")),
                ("src", many(&["10.0.0.1", "", "10.0.0.2", "10.0.0.1"])),
                ("dest", many(&["192.168.0.1", "192.168.0.2"])),
                ("src_ip", one("10.9.9.9")),
                ("dest_ip", one("172.16.0.1")),
                ("zeta", many(&["a", "", "b"])),
                ("alpha", one("quote \" backslash \\ tab \t nl \n ctl \u{7f}\u{1f} ü")),
                ("date_hour", one("3")),
                ("sig", one("x")),
                ("_raw", one("raw")),
            ],
        ),
        Row::from_pairs(
            "2",
            &[
                (
                    "src",
                    many(
                        &(0..12)
                            .map(|i| format!("10.0.0.{i}"))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>(),
                    ),
                ),
                (
                    "dest",
                    many(
                        &(0..12)
                            .map(|i| format!("10.1.0.{i}"))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>(),
                    ),
                ),
                ("user", many(&["", ""])),
                ("event_id", one("E-1")),
                ("file_hash", one("abc")),
            ],
        ),
        Row::from_pairs("3", &[("src", many(&["", ""])), ("src_ip", one("10.0.0.3"))]),
        Row::from_pairs("4", &[("punct", one("..")), ("linecount", one("1"))]),
        Row::from_pairs("5", &[]),
        Row::from_pairs(
            "7",
            &[("event_id", one("E\"7\\\n")), ("src", many(&["10.0.0.1", "10.0.0.2"]))],
        ),
        // A field named twice (rows built by hand only): written through the reference.
        Row::from_pairs("6", &[("x", one("1")), ("src", one("10.0.0.1")), ("x", one("2"))]),
    ];
    for row in &rows {
        assert_wire_matches(row, &default);
        assert_wire_matches(row, &overrides);
    }
}

#[test]
fn json_strings_are_serde_jsons_for_every_special_byte_anywhere() {
    // Each escaped byte at every position of strings around the 16-byte chunk boundary, and
    // the plain strings around it, come out as serde_json writes them.
    for special in (0u8..0x20).chain([b'"', b'\\']) {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 40] {
            let plain = "a".repeat(len);
            let mut out = Vec::new();
            wire::json_str(&mut out, &plain);
            assert_eq!(out, serde_json::to_vec(&plain).unwrap());
            for at in 0..len {
                let mut bytes = plain.clone().into_bytes();
                bytes[at] = special;
                let text = String::from_utf8(bytes).unwrap();
                let mut out = Vec::new();
                wire::json_str(&mut out, &text);
                assert_eq!(
                    out,
                    serde_json::to_vec(&text).unwrap(),
                    "{special:#x} at {at} of {len}"
                );
            }
        }
    }
}

#[test]
fn batches_written_into_handed_back_buffers_are_the_same_items() {
    let rows: Vec<Row> = (0..1201)
        .map(|n| {
            let src = if n % 10 == 0 { many(&["10.0.0.1", "10.0.0.2"]) } else { one("10.1.1.1") };
            Row::from_pairs(&n.to_string(), &[("src", src), ("user", one("alice"))])
        })
        .collect();
    let fresh = run(&mut SoarMapper::new(context(&[])).unwrap(), &rows);
    let mut mapper = SoarMapper::new(context(&[])).unwrap();
    let mut reused = Vec::new();
    for row in &rows {
        for item in mapper.push(row).unwrap() {
            assert_index_matches(&item, &request(&item));
            reused.push(item.clone());
            // Handed back with stale text in it, as the delivery thread gives it.
            mapper.reuse(item.request.into_bytes());
        }
    }
    reused.extend(mapper.finish().unwrap());
    assert_eq!(fresh.len(), 3);
    assert_eq!(reused, fresh);
    let last = reused.last().unwrap();
    assert_index_matches(last, &request(last));
}

#[test]
fn any_names_and_values_make_valid_json_written_as_serde_writes_it() {
    // The SOAR request is written by the mapper itself and taken as JSON without a second
    // check in release builds (`RequestJson`), so names and values of every awkward kind, in
    // headers that change, must still come out as serde_json's exact bytes.
    const NAMES: &[&str] = &[
        "src",
        "dest",
        "user",
        "src_ip",
        "dest_port",
        "file_hash",
        "url",
        "signature",
        "_time",
        "_raw",
        "event_id",
        "rule_name",
        "severity",
        "urgency",
        "orig_sid",
        "a\"b",
        "c\\d",
        "e\u{1}f",
        "名前",
        "spaced name",
        "x,y",
        "__mv_src",
        "tab\tname",
        "",
    ];
    const VALUES: &[&str] = &[
        "10.0.0.1",
        "",
        " ",
        "alice",
        "quote\"inside",
        "back\\slash",
        "line\nbreak",
        "cr\rlf",
        "\u{0}nul",
        "\u{1f}unit",
        "é and 名前 and 😀",
        "$a$;$b$",
        "</script>",
        "\u{7f}del",
        "\u{2028}sep",
        "high",
        "critical",
        "9999999999999999999999",
        "-0",
        "1e400",
    ];
    // A fixed linear congruential sequence: the same awkward mixes on every run.
    let mut state: u64 = 0x5EED;
    let mut roll = |below: usize| {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % below
    };
    for grouping in ["alert", "row"] {
        for round in 0..40 {
            let width = 1 + roll(8);
            let names: Vec<&str> = (0..width).map(|_| NAMES[roll(NAMES.len())]).collect();
            let rows: Vec<Row> = (0..1 + roll(30))
                .map(|n| {
                    let pairs: Vec<(&str, FieldValue)> = names
                        .iter()
                        .map(|name| {
                            let value = match roll(4) {
                                0 => many(&[
                                    VALUES[roll(VALUES.len())],
                                    VALUES[roll(VALUES.len())],
                                    VALUES[roll(VALUES.len())],
                                ]),
                                _ => one(VALUES[roll(VALUES.len())]),
                            };
                            (*name, value)
                        })
                        .collect();
                    Row::from_pairs(&format!("{round}.{n}"), &pairs)
                })
                .collect();
            let mut mapper = SoarMapper::new(context(&[("grouping", grouping)])).unwrap();
            // `run` checks every item: it parses, re-encodes to the same bytes, and its list
            // index matches (and debug builds check each text in `RequestJson::encoded`).
            let items = run(&mut mapper, &rows);
            assert!(!items.is_empty(), "{grouping} round {round}");
        }
    }
}
