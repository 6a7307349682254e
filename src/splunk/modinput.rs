//! Splunk's modular input protocol, for any input this program implements (the
//! `stackflow_state` poller now, a Slack Socket Mode listener later): the three ways splunkd
//! starts an input (`--scheme`, `--validate-arguments`, no argument), the scheme document, the
//! XML configuration splunkd writes on stdin, and the `<stream><event>…` writer for stdout.
//!
//! Element names follow Splunk's "Create modular inputs" documentation and the Splunk SDK for
//! Python (`splunklib.modularinput`: `scheme.py`, `argument.py`, `input_definition.py`,
//! `validation_definition.py`, `event.py`, `event_writer.py`). The configuration is untrusted
//! input: it is read with a size bound, parsed by `quick-xml` (UTF-8, or UTF-16 with a byte
//! order mark as in the SDK's fixtures), and anything unexpected is a clear error, never a
//! panic.

use crate::error::{Error, Result};
use crate::secret::Secret;
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// splunkd's configuration is a few KB; anything past this is not a configuration.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// How splunkd started the input (argv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--scheme`: print the scheme document.
    Scheme,
    /// `--validate-arguments`: `<items>` on stdin; reject with `<error><message>` + exit 1.
    Validate,
    /// No argument: `<input>` on stdin, events on stdout.
    Run,
}

impl Mode {
    /// The mode of the two flags splunkd may pass (`--scheme`, `--validate-arguments`);
    /// `None` when both are set, which splunkd never does.
    pub fn from_flags(scheme: bool, validate_arguments: bool) -> Option<Mode> {
        match (scheme, validate_arguments) {
            (false, false) => Some(Mode::Run),
            (true, false) => Some(Mode::Scheme),
            (false, true) => Some(Mode::Validate),
            (true, true) => None,
        }
    }
}

/// One `<arg>` of a scheme.
#[derive(Clone, Debug)]
pub struct Arg {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// `string`, `number` or `boolean`.
    pub data_type: &'static str,
    pub required_on_create: bool,
}

/// The `--scheme` document.
#[derive(Clone, Debug)]
pub struct Scheme {
    pub title: &'static str,
    pub description: &'static str,
    pub use_external_validation: bool,
    pub use_single_instance: bool,
    pub args: Vec<Arg>,
}

impl Scheme {
    /// The XML splunkd reads at introspection (`streaming_mode` is always `xml`).
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<scheme>\n");
        out.push_str(&format!("  <title>{}</title>\n", escape(self.title)));
        out.push_str(&format!("  <description>{}</description>\n", escape(self.description)));
        out.push_str(&format!(
            "  <use_external_validation>{}</use_external_validation>\n",
            self.use_external_validation
        ));
        out.push_str(&format!(
            "  <use_single_instance>{}</use_single_instance>\n",
            self.use_single_instance
        ));
        out.push_str("  <streaming_mode>xml</streaming_mode>\n  <endpoint>\n    <args>\n");
        for arg in &self.args {
            out.push_str(&format!(
                "      <arg name=\"{}\">\n        <title>{}</title>\n        <description>{}</description>\n        <data_type>{}</data_type>\n        <required_on_edit>false</required_on_edit>\n        <required_on_create>{}</required_on_create>\n      </arg>\n",
                escape(arg.name),
                escape(arg.title),
                escape(arg.description),
                escape(arg.data_type),
                arg.required_on_create
            ));
        }
        out.push_str("    </args>\n  </endpoint>\n</scheme>\n");
        out
    }
}

/// One `<stanza>` (or the `<item>` of a validation request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stanza {
    /// The full name, e.g. `stackflow_state://default`.
    pub name: String,
    pub app: String,
    /// `<param>`s; a `<param_list>` is kept as its values joined with newlines.
    pub params: BTreeMap<String, String>,
}

impl Stanza {
    /// The part after `://` (the input's own name), or the whole name.
    pub fn input_name(&self) -> &str {
        self.name.split_once("://").map(|(_, name)| name).unwrap_or(&self.name)
    }

    /// A parameter, trimmed, `None` when absent or empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
    }
}

/// What splunkd writes on stdin: the metadata and the stanzas (`<input>`), or the one item to
/// validate (`<items>`, as a single stanza).
#[derive(Debug)]
pub struct Definition {
    pub server_host: String,
    pub server_uri: String,
    pub session_key: Secret,
    pub checkpoint_dir: String,
    pub stanzas: Vec<Stanza>,
}

/// A parsed element: name, attributes, text, children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
    fn child_text(&self, name: &str) -> String {
        self.children
            .iter()
            .find(|child| child.name == name)
            .map(|child| child.text.trim().to_string())
            .unwrap_or_default()
    }
}

fn bad(detail: impl std::fmt::Display) -> Error {
    Error::Invocation(format!("modular input configuration on stdin: {detail}"))
}

/// Reads stdin to its end (bounded) and parses it.
pub fn read_definition(input: impl Read) -> Result<Definition> {
    let mut bytes = Vec::new();
    input
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| bad(format!("cannot read: {error}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(bad(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    parse_definition(&bytes)
}

/// Parses `<input>` or `<items>`.
pub fn parse_definition(bytes: &[u8]) -> Result<Definition> {
    let text = decode(bytes)?;
    let root = parse_tree(&text)?;
    let (stanzas, kind) = match root.name.as_str() {
        "input" => {
            let configuration = root.children.iter().find(|c| c.name == "configuration");
            let stanzas = configuration
                .map(|c| c.children.iter().filter(|s| s.name == "stanza").map(stanza).collect())
                .unwrap_or_default();
            (stanzas, "input")
        }
        "items" => {
            (root.children.iter().filter(|c| c.name == "item").map(stanza).collect(), "items")
        }
        other => return Err(bad(format!("the root element is <{other}>, not <input> or <items>"))),
    };
    let stanzas: Vec<Stanza> = stanzas;
    if let Some(unnamed) = stanzas.iter().find(|s| s.name.is_empty()) {
        return Err(bad(format!("a <{kind}> entry has no name attribute: {unnamed:?}")));
    }
    Ok(Definition {
        server_host: root.child_text("server_host"),
        server_uri: root.child_text("server_uri"),
        session_key: Secret::new(root.child_text("session_key")),
        checkpoint_dir: root.child_text("checkpoint_dir"),
        stanzas,
    })
}

fn stanza(element: &Element) -> Stanza {
    let mut params = BTreeMap::new();
    for child in &element.children {
        let Some(name) = child.attribute("name") else { continue };
        match child.name.as_str() {
            "param" => {
                params.insert(name.to_string(), child.text.clone());
            }
            "param_list" => {
                let values: Vec<&str> = child
                    .children
                    .iter()
                    .filter(|value| value.name == "value")
                    .map(|value| value.text.as_str())
                    .collect();
                params.insert(name.to_string(), values.join("\n"));
            }
            _ => {}
        }
    }
    Stanza {
        name: element.attribute("name").unwrap_or_default().to_string(),
        app: element.attribute("app").unwrap_or_default().to_string(),
        params,
    }
}

/// UTF-8 (optional BOM) or UTF-16 LE/BE with a BOM.
fn decode(bytes: &[u8]) -> Result<String> {
    let utf16 = |big_endian: bool| -> Result<String> {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|pair| {
                if big_endian {
                    u16::from_be_bytes([pair[0], pair[1]])
                } else {
                    u16::from_le_bytes([pair[0], pair[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| bad("invalid UTF-16"))
    };
    let text = match bytes {
        [0xFF, 0xFE, ..] => utf16(false)?,
        [0xFE, 0xFF, ..] => utf16(true)?,
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| bad("invalid UTF-8"))?
        }
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| bad("invalid UTF-8"))?,
    };
    // A UTF-16 document declares encoding="UTF-16"; the text is decoded already.
    Ok(if text.trim_start().starts_with("<?xml") {
        match text.find("?>") {
            Some(end) => text[end + 2..].to_string(),
            None => text,
        }
    } else {
        text
    })
}

/// Nesting deeper than this is not a modular input configuration.
const MAX_DEPTH: usize = 32;

fn parse_tree(text: &str) -> Result<Element> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|error| bad(format!("malformed XML at byte {position}: {error}")))?;
        let open = |start: &quick_xml::events::BytesStart<'_>| -> Result<Element> {
            let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
            let mut attributes = Vec::new();
            for attribute in start.attributes() {
                let attribute = attribute
                    .map_err(|error| bad(format!("bad attribute in <{name}>: {error}")))?;
                let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                let value = attribute
                    .unescape_value()
                    .map_err(|error| bad(format!("bad attribute {key} in <{name}>: {error}")))?;
                attributes.push((key, value.into_owned()));
            }
            Ok(Element { name, attributes, ..Element::default() })
        };
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                let element = open(&start)?;
                attach(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                attach(&mut stack, &mut root, element)?;
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    let text = text.decode().map_err(|error| bad(error.to_string()))?;
                    current.text.push_str(&text);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .map_err(|error| bad(error.to_string()))?
                        .map(String::from)
                } else {
                    let name = reference.decode().map_err(|error| bad(error.to_string()))?;
                    match name.as_ref() {
                        "amp" => Some("&".to_string()),
                        "lt" => Some("<".to_string()),
                        "gt" => Some(">".to_string()),
                        "quot" => Some("\"".to_string()),
                        "apos" => Some("'".to_string()),
                        _ => None,
                    }
                };
                let resolved = resolved.ok_or_else(|| bad("unknown entity reference"))?;
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element"));
    }
    root.ok_or_else(|| bad("empty: no <input> document arrived"))
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) -> Result<()> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(bad("more than one root element")),
    }
    Ok(())
}

/// XML text/attribute escaping. Characters XML 1.0 cannot carry at all (controls other than
/// tab, CR, LF) are replaced by U+FFFD so an event can never break the stream.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            ch if (ch as u32) < 0x20 || ch == '\u{FFFE}' || ch == '\u{FFFF}' => {
                out.push('\u{FFFD}')
            }
            ch => out.push(ch),
        }
    }
    out
}

/// The `--validate-arguments` rejection: `<error><message>…</message></error>` on stdout.
pub fn validation_error(message: &str) -> String {
    format!("<error><message>{}</message></error>\n", escape(message))
}

/// One event of the stream.
#[derive(Clone, Debug, Default)]
pub struct StreamEvent<'a> {
    pub stanza: &'a str,
    /// Epoch seconds (written with at most 3 decimals).
    pub time: Option<f64>,
    pub source: Option<&'a str>,
    pub sourcetype: Option<&'a str>,
    pub index: Option<&'a str>,
    pub host: Option<&'a str>,
    pub data: &'a str,
}

/// Writes `<stream>`, complete events (`unbroken="1"` + `<done/>`), each flushed, and
/// `</stream>` at the end.
pub struct EventWriter<W: Write> {
    out: W,
    started: bool,
    pub written: usize,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W) -> EventWriter<W> {
        EventWriter { out, started: false, written: 0 }
    }

    pub fn write(&mut self, event: &StreamEvent<'_>) -> std::io::Result<()> {
        let mut text = String::new();
        if !self.started {
            text.push_str("<stream>\n");
        }
        text.push_str(&format!("<event stanza=\"{}\" unbroken=\"1\">", escape(event.stanza)));
        if let Some(time) = event.time.filter(|time| time.is_finite()) {
            text.push_str(&format!("<time>{time:.3}</time>"));
        }
        for (tag, value) in [
            ("source", event.source),
            ("sourcetype", event.sourcetype),
            ("index", event.index),
            ("host", event.host),
        ] {
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                text.push_str(&format!("<{tag}>{}</{tag}>", escape(value)));
            }
        }
        text.push_str(&format!("<data>{}</data><done/></event>\n", escape(event.data)));
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        self.started = true;
        self.written += 1;
        Ok(())
    }

    /// Closes the stream (nothing is written when no event was).
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.started {
            self.out.write_all(b"</stream>\n")?;
            self.out.flush()?;
        }
        Ok(self.out)
    }
}

#[cfg(test)]
#[path = "modinput_tests.rs"]
mod tests;
