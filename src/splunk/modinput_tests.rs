//! Unit tests of the modular input protocol: the SDK's fixture shapes, hostile input, the
//! event stream.

use super::*;

const INPUT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<input>
  <server_host>tiny</server_host>
  <server_uri>https://127.0.0.1:8089</server_uri>
  <session_key>123102983109283019283</session_key>
  <checkpoint_dir>/opt/splunk/var/lib/splunk/modinputs/stackflow_state</checkpoint_dir>
  <configuration>
    <stanza name="stackflow_state://default" app="stackflow">
      <param name="interval">300</param>
      <param name="disabled">0</param>
      <param name="note">a &amp; b &lt;c&gt; &#x41;</param>
      <param_list name="multiValue"><value>a</value><value>b</value></param_list>
    </stanza>
    <stanza name="stackflow_state://lab" app="stackflow"/>
  </configuration>
</input>"#;

#[test]
fn the_sdk_input_shape_is_read() {
    let definition = parse_definition(INPUT.as_bytes()).unwrap();
    assert_eq!(definition.server_host, "tiny");
    assert_eq!(definition.server_uri, "https://127.0.0.1:8089");
    assert_eq!(definition.session_key.expose(), "123102983109283019283");
    assert!(definition.checkpoint_dir.ends_with("modinputs/stackflow_state"));
    assert_eq!(definition.stanzas.len(), 2);
    let first = &definition.stanzas[0];
    assert_eq!(first.input_name(), "default");
    assert_eq!(first.app, "stackflow");
    assert_eq!(first.param("interval"), Some("300"));
    assert_eq!(first.param("note"), Some("a & b <c> A"));
    assert_eq!(first.params["multiValue"], "a\nb");
    assert_eq!(definition.stanzas[1].input_name(), "lab");
}

#[test]
fn utf16_with_a_bom_is_read() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in INPUT.replace("UTF-8", "UTF-16").encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let definition = parse_definition(&bytes).unwrap();
    assert_eq!(definition.stanzas.len(), 2);
}

#[test]
fn validation_items_are_one_stanza() {
    let items = r#"<items><server_host>h</server_host><server_uri>https://127.0.0.1:8089</server_uri>
        <session_key>k</session_key><checkpoint_dir>/tmp</checkpoint_dir>
        <item name="default"><param name="max_events">10</param></item></items>"#;
    let definition = parse_definition(items.as_bytes()).unwrap();
    assert_eq!(definition.stanzas[0].name, "default");
    assert_eq!(definition.stanzas[0].param("max_events"), Some("10"));
}

#[test]
fn hostile_configurations_are_errors_not_panics() {
    let nested = "<a>".repeat(100) + &"</a>".repeat(100);
    for text in [
        "",
        "not xml",
        "<input><configuration>",
        "<input></wrong>",
        "<other/>",
        "<input/><input/>",
        "<input><x>&bogus;</x></input>",
        "<input><x>&#xD800;</x></input>",
        "<input><configuration><stanza><param name=\"a\">1</param></stanza></configuration></input>",
        nested.as_str(),
    ] {
        let error = parse_definition(text.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("modular input configuration"), "{text}: {error}");
    }
    // An odd UTF-16 tail: an error or an empty document, never a panic.
    assert!(parse_definition(&[0xFF, 0xFE, 0x00]).is_err());
    assert!(parse_definition(&[0xC3, 0x28]).is_err());
    let big = vec![b' '; (MAX_CONFIG_BYTES + 10) as usize];
    assert!(read_definition(big.as_slice()).unwrap_err().to_string().contains("larger"));
}

#[test]
fn modes_come_from_argv() {
    assert_eq!(Mode::from_flags(false, false), Some(Mode::Run));
    assert_eq!(Mode::from_flags(true, false), Some(Mode::Scheme));
    assert_eq!(Mode::from_flags(false, true), Some(Mode::Validate));
    assert_eq!(Mode::from_flags(true, true), None);
}

#[test]
fn events_are_escaped_and_framed() {
    let mut writer = EventWriter::new(Vec::new());
    writer
        .write(&StreamEvent {
            stanza: "stackflow_state://a\"b",
            time: Some(1_700_000_000.123_456),
            sourcetype: Some("stackflow:incident"),
            data: "{\"x\":\"<&>\u{1}\"}",
            ..StreamEvent::default()
        })
        .unwrap();
    writer.write(&StreamEvent { stanza: "s", data: "2", ..StreamEvent::default() }).unwrap();
    let out = String::from_utf8(writer.finish().unwrap()).unwrap();
    assert_eq!(
        out,
        "<stream>\n<event stanza=\"stackflow_state://a&quot;b\" unbroken=\"1\"><time>1700000000.123</time><sourcetype>stackflow:incident</sourcetype><data>{&quot;x&quot;:&quot;&lt;&amp;&gt;\u{FFFD}&quot;}</data><done/></event>\n<event stanza=\"s\" unbroken=\"1\"><data>2</data><done/></event>\n</stream>\n"
    );
    assert!(EventWriter::new(Vec::new()).finish().unwrap().is_empty());
}

#[test]
fn the_scheme_is_well_formed() {
    let scheme = Scheme {
        title: "T & U",
        description: "d",
        use_external_validation: true,
        use_single_instance: false,
        args: vec![Arg {
            name: "account",
            title: "Account",
            description: "x",
            data_type: "string",
            required_on_create: false,
        }],
    };
    let xml = scheme.to_xml();
    assert!(xml.contains("<title>T &amp; U</title>"));
    assert!(xml.contains("<streaming_mode>xml</streaming_mode>"));
    assert!(xml.contains("<arg name=\"account\">"));
    assert!(parse_tree(&xml).is_ok());
}
