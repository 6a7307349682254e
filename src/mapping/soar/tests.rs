//! Unit tests of `soar`.

use super::*;
use crate::error::ExitCode;
use FieldValue::{Multi, Single};

mod types;
mod writer;

fn one(value: &str) -> FieldValue {
    Single(value.to_string())
}

fn many(values: &[&str]) -> FieldValue {
    Multi(values.iter().map(|value| value.to_string()).collect())
}

fn context(params: &[(&str, &str)]) -> AlertContext {
    AlertContext {
        action: "stackflow_soar".into(),
        sid: "scheduler__admin__search__RMD5_at_1763750000_7".into(),
        search_name: "Brute Force".into(),
        app: "search".into(),
        owner: "admin".into(),
        results_link: "http://sh:8000/app/search/@go?sid=x".into(),
        rows_total: 3,
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..AlertContext::default()
    }
}

/// The item's request, checked to be byte for byte what serde_json writes for it (the mapper
/// writes the JSON text itself).
fn request(item: &DeliveryItem) -> SoarRequest {
    let request: SoarRequest = serde_json::from_str(item.request.get()).unwrap();
    assert_eq!(DeliveryItem::encode_request(&request).unwrap().get(), item.request.get());
    assert_index_matches(item, &request);
    request
}

/// The item's list index against a full parse of its text: the list's bounds, each artifact's
/// bytes, SDI and automation flag.
fn assert_index_matches(item: &DeliveryItem, request: &SoarRequest) {
    #[derive(serde::Deserialize)]
    struct View<'a> {
        #[serde(borrow)]
        artifacts: Vec<&'a serde_json::value::RawValue>,
    }
    let text = item.request.get();
    let index = item.list_index.as_deref().expect("a SOAR item carries its list index");
    let view: View<'_> = serde_json::from_str(text).unwrap();
    assert_eq!(
        &text[..index.list.start],
        text.split_once("\"artifacts\":[").unwrap().0.to_string() + "\"artifacts\":["
    );
    let joined: Vec<&str> = view.artifacts.iter().map(|raw| raw.get()).collect();
    assert_eq!(&text[index.list.clone()], joined.join(","));
    assert_eq!(&text[index.list.end..index.list.end + 1], "]");
    assert_eq!(index.elements.len(), request.artifacts.len());
    for ((element, raw), artifact) in
        index.elements.iter().zip(&view.artifacts).zip(&request.artifacts)
    {
        assert_eq!(&text[element.text.clone()], raw.get());
        assert_eq!(index.id(element), Some(artifact.source_data_identifier.as_str()));
        assert_eq!(element.flagged, artifact.run_automation);
    }
}

fn run(mapper: &mut SoarMapper, rows: &[Row]) -> Vec<DeliveryItem> {
    let mut items = Vec::new();
    for row in rows {
        items.extend(mapper.push(row).unwrap());
    }
    items.extend(mapper.finish().unwrap());
    for item in &items {
        request(item);
    }
    items
}

/// The digest the SDIs use; the vectors below also check `hex`.
fn sha256(message: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(message).into()
}

#[test]
fn hex_is_lower_case_two_digits_per_byte() {
    assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    assert_eq!(hex(&[]), "");
}

#[test]
fn sha256_matches_the_standard_vectors() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(
        hex(&sha256(long)),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

/// SOAR finds what a re-run or a re-send already created by these identifiers: they must
/// never change from one version to the next (values computed by the hand-written SHA-256
/// that every container so far was created with).
#[test]
fn source_data_identifiers_are_stable_across_versions() {
    let sid = "scheduler__admin__search__RMD5_at_1763750000_7";
    let rows = [
        Row::from_pairs(
            "0",
            &[("src", one("10.0.0.1")), ("dest", one("10.9.9.9")), ("user", one("alice"))],
        ),
        Row::from_pairs(
            "17",
            &[("src", many(&["10.0.0.1", "10.0.0.2"])), ("signature", one("Brute Force Access"))],
        ),
        Row::from_pairs("3", &[("message", one(&"é\n€ ".repeat(40))), ("empty", one(""))]),
    ];
    let pinned = [
        ("14f1fb1820bc8414a358cde01aa1d9f2", "08426ce258bd40c11d0d6c9b74048312"),
        ("44056016ee5cd0a337834185ffb97bf9", "b9ce9b62f18d0eddbf420bfd1088693f"),
        ("cf6f32a70cedfe362fc5399e5cade0e4", "3029ef9de010ac3728ab13797de18e0d"),
    ];
    for (row, (identity, container)) in rows.iter().zip(pinned) {
        assert_eq!(row_identity(row), identity, "rid {}", row.rid);
        assert_eq!(row_container_sdi(row, sid), container, "rid {}", row.rid);
    }
}

#[test]
fn sha256_is_right_around_the_block_boundaries() {
    let pinned = [
        (55, "8af594de0e003fdee5c8bb088216c824349b4137070f559574f4a4bddd27b714"),
        (56, "db81bc2bfd43620591df192139062da77d4c376f1888ea3d2190bd07c8d901f9"),
        (63, "bd535b38bf0d0d1a09d370b7e34b2696cea3767801a45d5611a4aaa6954e8527"),
        (64, "292be91abe8c0909fe3d26575af5755eee74d23816dc68c3ba41765136967654"),
        (65, "ba65aedf7884642499a59ae124894611d986cf429e69f569488048af3a99e25a"),
        (119, "d367ab298e74477421127b0b448667c37c006c636f5738f081c39388756e5fad"),
        (120, "be7beb9c82089eb08da8fe6eb30c13b9d56869014e228a8c3eb0fdfe832efab2"),
        (1000, "59425e4412e296fc74736673ce067027f384203f59c0d2c3e6be7b13347b3ffc"),
    ];
    for (len, digest) in pinned {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(hex(&sha256(&data)), digest, "{len} bytes");
    }
}

#[test]
fn bad_parameters_are_configuration_errors_naming_the_param() {
    for (name, value) in [
        ("grouping", "per_host"),
        ("sensitivity", "purple"),
        ("field_mapping", "src=source address"),
        ("field_mapping", "src"),
    ] {
        let error = SoarMapper::new(context(&[(name, value)])).err().unwrap();
        assert_eq!(error.exit_code(), ExitCode::Configuration, "{name}={value}");
        let text = error.to_string();
        assert!(
            text.contains("alert_actions.conf [stackflow_soar] param.") && text.contains(name),
            "{text}"
        );
    }
    assert!(SoarMapper::new(context(&[("grouping", "ROW"), ("sensitivity", "Red")])).is_ok());
}

#[test]
fn severity_comes_from_the_param_or_the_row() {
    let high = Row::from_pairs("0", &[("severity", one("critical"))]);
    let urgent = Row::from_pairs("0", &[("urgency", one("informational"))]);
    let both = Row::from_pairs("0", &[("severity", one("??")), ("urgency", one("High"))]);
    let multi = Row::from_pairs("0", &[("severity", many(&["low", "high", "medium"]))]);
    let none = Row::from_pairs("0", &[("src", one("1.2.3.4"))]);
    assert_eq!(row_severity(&high), "high");
    assert_eq!(row_severity(&urgent), "low");
    assert_eq!(row_severity(&both), "high");
    assert_eq!(row_severity(&multi), "high");
    assert_eq!(row_severity(&none), "medium");
    let fixed = SoarMapper::new(context(&[("severity", "low")])).unwrap();
    assert_eq!(fixed.severity(&high), "low");
    let auto = SoarMapper::new(context(&[("severity", "auto")])).unwrap();
    assert_eq!(auto.severity(&high), "high");
}

#[test]
fn a_digest_alert_becomes_one_container_of_cef_artifacts() {
    let rows: Vec<Row> = (0..3)
        .map(|n| {
            Row::from_pairs(
                &n.to_string(),
                &[
                    ("_time", one("1763750000.5")),
                    ("_raw", one("login failed")),
                    ("_bkt", one("main~1~x")),
                    ("date_hour", one("12")),
                    ("src", one(&format!("10.0.0.{n}"))),
                    ("user", one("alice")),
                    ("file_hash", one("d41d8cd98f00b204e9800998ecf8427e")),
                    ("url", one("https://example.com/a")),
                    ("signature", one("Brute force")),
                    ("severity", one("high")),
                ],
            )
        })
        .collect();
    let mut mapper = SoarMapper::new(context(&[("tags", "splunk, brute ,splunk")])).unwrap();
    let items = run(&mut mapper, &rows);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.target, TargetKind::Soar);
    assert_eq!(item.account, "default");
    assert_eq!(item.dedupe_key, "scheduler__admin__search__RMD5_at_1763750000_7:0");
    assert_eq!(item.context.rows.len(), 3);
    let request = request(item);
    assert_eq!(
        request.container.source_data_identifier,
        "scheduler__admin__search__RMD5_at_1763750000_7"
    );
    assert_eq!(request.container.name, "Brute Force");
    assert_eq!(request.container.label, None);
    assert_eq!(request.container.severity, "high");
    assert_eq!(request.container.sensitivity, "amber");
    assert_eq!(request.container.tags, vec!["splunk", "brute"]);
    assert_eq!(request.container.data["sid"], "scheduler__admin__search__RMD5_at_1763750000_7");
    assert!(request.last_batch);
    assert_eq!(request.artifacts.len(), 3);
    let automation: Vec<bool> = request.artifacts.iter().map(|a| a.run_automation).collect();
    assert_eq!(automation, vec![false, false, true]);
    let first = &request.artifacts[0];
    assert_eq!(first.label, "event");
    assert_eq!(first.name, "Splunk result 0");
    assert_eq!(first.severity, "high");
    assert_eq!(first.cef["sourceAddress"], "10.0.0.0");
    assert_eq!(first.cef["destinationUserName"], "alice");
    assert_eq!(first.cef["fileHash"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(first.cef["requestURL"], "https://example.com/a");
    assert_eq!(first.cef_types["sourceAddress"], vec!["ip"]);
    assert_eq!(first.cef_types["destinationUserName"], vec!["user name"]);
    assert_eq!(first.cef_types["fileHash"], vec!["hash"]);
    assert_eq!(first.cef_types["requestURL"], vec!["url"]);
    assert_eq!(first.data["_raw"], "login failed");
    assert_eq!(first.data["_time"], "1763750000.5");
    assert_eq!(first.data["signature"], "Brute force");
    assert!(!first.data.contains_key("_bkt") && !first.data.contains_key("date_hour"));
    assert!(!first.data.contains_key("src"), "mapped fields are not repeated in data");
    let sdis: HashSetOf =
        request.artifacts.iter().map(|a| a.source_data_identifier.clone()).collect();
    assert_eq!(sdis.len(), 3);
}

type HashSetOf = std::collections::HashSet<String>;

#[test]
fn per_result_alerts_name_the_result_in_the_container_sdi() {
    let mut params = context(&[]);
    params.result_id = Some("4".into());
    let mut mapper = SoarMapper::new(params).unwrap();
    let items = run(&mut mapper, &[Row::from_pairs("4", &[("src", one("1.1.1.1"))])]);
    let request = request(&items[0]);
    assert_eq!(
        request.container.source_data_identifier,
        "scheduler__admin__search__RMD5_at_1763750000_7:4"
    );
    assert_eq!(items[0].context.rid, "4");
    assert_eq!(request.artifacts[0].name, "Splunk result 4");
}

#[test]
fn multivalue_cef_fields_split_into_artifacts() {
    let row = Row::from_pairs(
        "0",
        &[
            ("src", many(&["1.1.1.1", "2.2.2.2", "1.1.1.1"])),
            ("user", one("bob")),
            ("tags", many(&["a", "b"])),
        ],
    );
    let artifacts = row_artifacts(&row, &FieldMapping::default(), "n", "low");
    assert_eq!(artifacts.len(), 2);
    let base = row_identity(&row);
    assert_eq!(artifacts[0].source_data_identifier, format!("{base}:0"));
    assert_eq!(artifacts[1].source_data_identifier, format!("{base}:1"));
    assert_eq!(artifacts[0].cef["sourceAddress"], "1.1.1.1");
    assert_eq!(artifacts[1].cef["sourceAddress"], "2.2.2.2");
    for artifact in &artifacts {
        assert_eq!(artifact.cef["destinationUserName"], "bob");
        assert_eq!(artifact.data["tags"], serde_json::json!(["a", "b"]));
    }
    let two = Row::from_pairs(
        "0",
        &[
            ("src", many(&["10.0.0.1", "10.0.0.2"])),
            ("dest", many(&["10.1.0.1", "10.1.0.2", "10.1.0.3"])),
        ],
    );
    let artifacts = row_artifacts(&two, &FieldMapping::default(), "n", "low");
    let pairs: Vec<(String, String)> = artifacts
        .iter()
        .map(|a| {
            (
                a.cef["sourceAddress"].as_str().unwrap().into(),
                a.cef["destinationAddress"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 6);
    assert_eq!(pairs[0], ("10.0.0.1".into(), "10.1.0.1".into()));
    assert_eq!(pairs[5], ("10.0.0.2".into(), "10.1.0.3".into()));
}

#[test]
fn the_cartesian_product_is_capped_and_keeps_the_values_in_data() {
    let many_src: Vec<String> = (0..20).map(|n| format!("10.0.0.{n}")).collect();
    let many_dest: Vec<String> = (0..20).map(|n| format!("10.1.0.{n}")).collect();
    let row = Row::from_pairs("0", &[("src", Multi(many_src.clone())), ("dest", Multi(many_dest))]);
    let artifacts = row_artifacts(&row, &FieldMapping::default(), "n", "low");
    assert_eq!(artifacts.len(), MAX_ARTIFACTS_PER_ROW);
    assert_eq!(artifacts[0].data["src"].as_array().unwrap().len(), 20);
    assert_eq!(artifacts[0].data["dest"].as_array().unwrap().len(), 20);
}

#[test]
fn field_mapping_overrides_win() {
    let mut mapper =
        SoarMapper::new(context(&[("field_mapping", "src=deviceAddress,user=,sig=cs1")])).unwrap();
    let row =
        Row::from_pairs("0", &[("src", one("1.2.3.4")), ("user", one("eve")), ("sig", one("x"))]);
    let request = request(&run(&mut mapper, &[row])[0]);
    let artifact = &request.artifacts[0];
    assert_eq!(artifact.cef["deviceAddress"], "1.2.3.4");
    assert_eq!(artifact.cef["cs1"], "x");
    assert_eq!(artifact.cef_types["deviceAddress"], vec!["ip"]);
    assert!(!artifact.cef_types.contains_key("cs1"));
    assert!(!artifact.cef.contains_key("destinationUserName"));
    assert_eq!(artifact.data["user"], "eve");
}

#[test]
fn the_first_field_for_a_cef_key_wins_and_the_other_stays_in_data() {
    let row = Row::from_pairs("0", &[("src", one("1.1.1.1")), ("src_ip", one("2.2.2.2"))]);
    let artifacts = row_artifacts(&row, &FieldMapping::default(), "n", "low");
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].cef["sourceAddress"], "1.1.1.1");
    assert_eq!(artifacts[0].data["src_ip"], "2.2.2.2");
}

#[test]
fn grouping_row_makes_one_container_per_row() {
    let mut mapper =
        SoarMapper::new(context(&[("grouping", "row"), ("playbook", "local/triage")])).unwrap();
    let rows = vec![
        Row::from_pairs(
            "0",
            &[
                ("event_id", one("E1@@notable@@abc")),
                ("rule_name", one("Rule A")),
                ("src", many(&["1.1.1.1", "2.2.2.2"])),
                ("urgency", one("low")),
            ],
        ),
        Row::from_pairs("1", &[("src", one("3.3.3.3"))]),
    ];
    let items = run(&mut mapper, &rows);
    assert_eq!(items.len(), 2);
    let first = request(&items[0]);
    assert_eq!(items[0].dedupe_key, "E1@@notable@@abc");
    assert_eq!(first.container.source_data_identifier, "E1@@notable@@abc");
    assert_eq!(first.container.name, "Rule A");
    assert_eq!(first.container.severity, "low");
    assert_eq!(first.artifacts[0].name, "Rule A");
    assert_eq!(first.artifacts[0].source_data_identifier, "E1@@notable@@abc:0");
    assert_eq!(
        first.artifacts.iter().map(|a| a.run_automation).collect::<Vec<_>>(),
        vec![false, true]
    );
    assert_eq!(first.playbook.as_deref(), Some("local/triage"));
    assert_eq!(items[0].context.event_id, "E1@@notable@@abc");
    let second = request(&items[1]);
    assert_eq!(second.container.source_data_identifier.len(), 32);
    assert_eq!(
        second.container.source_data_identifier,
        row_container_sdi(&rows[1], &mapper.context.sid)
    );
    assert_ne!(second.container.source_data_identifier, row_identity(&rows[1]));
    assert_eq!(second.container.name, "Brute Force");
    assert_eq!(items[1].context.rid, "1");
}

#[test]
fn row_hashes_do_not_depend_on_field_order_or_internal_fields() {
    let a = Row::from_pairs("0", &[("src", one("1")), ("dest", one("2")), ("_serial", one("0"))]);
    let b = Row::from_pairs("5", &[("dest", one("2")), ("src", one("1")), ("_serial", one("5"))]);
    let c = Row::from_pairs("0", &[("src", one("1")), ("dest", one("3"))]);
    assert_eq!(row_identity(&a), row_identity(&b));
    assert_ne!(row_identity(&a), row_identity(&c));
    assert_ne!(row_container_sdi(&a, "sid"), row_container_sdi(&b, "sid"), "rid is part of it");
}

#[test]
fn big_alerts_are_cut_into_batches_of_one_container() {
    let mut ctx = context(&[("playbook", "7")]);
    ctx.rows_total = 1201;
    let mut mapper = SoarMapper::new(ctx).unwrap();
    let rows: Vec<Row> = (0..1201)
        .map(|n| {
            Row::from_pairs(
                &n.to_string(),
                &[("src", one(&format!("10.0.{}.{}", n / 256, n % 256)))],
            )
        })
        .collect();
    let items = run(&mut mapper, &rows);
    assert_eq!(items.len(), 3);
    let requests: Vec<SoarRequest> = items.iter().map(request).collect();
    assert_eq!(requests.iter().map(|r| r.artifacts.len()).collect::<Vec<_>>(), vec![500, 500, 201]);
    assert_eq!(requests.iter().map(|r| r.batch).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(requests.iter().map(|r| r.last_batch).collect::<Vec<_>>(), vec![false, false, true]);
    assert_eq!(
        requests.iter().map(|r| r.playbook.is_some()).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    let automated: usize =
        requests.iter().flat_map(|r| &r.artifacts).filter(|a| a.run_automation).count();
    assert_eq!(automated, 1);
    assert!(requests[2].artifacts.last().unwrap().run_automation);
    assert!(requests.iter().all(|r| r.container == requests[0].container));
    assert_eq!(
        items
            .iter()
            .map(|i| i.dedupe_key.rsplit(':').next().unwrap().to_string())
            .collect::<Vec<_>>(),
        vec!["0", "1", "2"]
    );
    assert_eq!(items[1].context.rid, "500");
    assert_eq!(items.iter().map(|i| i.context.rows.len()).sum::<usize>(), 1201);
}

#[test]
fn container_names_render_the_template() {
    let ctx = context(&[]);
    let row = Row::from_pairs("3", &[("src", one("1.2.3.4")), ("user", many(&["a", "b"]))]);
    assert_eq!(
        render_template(
            "{search_name}: {src} by {user} ({rid}) {missing}{ {not a field}",
            &row,
            &ctx
        ),
        "Brute Force: 1.2.3.4 by a, b (3) { {not a field}"
    );
    let mut mapper = SoarMapper::new(context(&[("container_name", "Login from {src}")])).unwrap();
    let request = request(&run(&mut mapper, std::slice::from_ref(&row))[0]);
    assert_eq!(request.container.name, "Login from 1.2.3.4");
    let mut empty = SoarMapper::new(context(&[("container_name", "{missing}")])).unwrap();
    assert_eq!(request_name(&mut empty, &row), "Brute Force");
}

fn request_name(mapper: &mut SoarMapper, row: &Row) -> String {
    request(&run(mapper, std::slice::from_ref(row))[0]).container.name
}

#[test]
fn unicode_and_newlines_pass_through_unchanged() {
    let text = "é 日本 🚀 \"quoted\"\nnext line";
    let row = Row::from_pairs("0", &[("user", one(text)), ("note", one(text))]);
    let artifacts = row_artifacts(&row, &FieldMapping::default(), "n", "low");
    assert_eq!(artifacts[0].cef["destinationUserName"], text);
    assert_eq!(artifacts[0].data["note"], text);
}
