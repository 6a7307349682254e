//! A list answer (`{"count":…,"num_pages":…,"data":[…]}`, or a bare array) read as it
//! arrives: each item of its list is parsed and handed over on its own, so that memory does not
//! grow with the answer however many items a remote puts in one page. The envelope's scalar
//! fields are kept (`count`, `num_pages`, `failed`, `message` …); anything else is skipped
//! without being built.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::io::Read;

/// A kept scalar text longer than this is cut (a `message` of a whole run's output).
const MAX_SCALAR_CHARS: usize = 4096;

/// What a streamed answer held besides its items.
#[derive(Debug, Default)]
pub struct Envelope {
    /// The envelope's scalar fields.
    pub fields: Map<String, Value>,
    /// Items in the list (all of them, also those after the visitor stopped).
    pub items: u64,
    /// The visitor asked to stop; the rest of the list was skipped unparsed.
    pub stopped: bool,
    /// The answer had a list at one of the keys (or was one).
    pub had_list: bool,
}

/// Reads `reader` as a list answer: the first of `list_keys` present (or a bare array) is the
/// list; `visit` sees its items one at a time and returns false to skip the rest.
pub fn read_list(
    reader: impl Read,
    list_keys: &[&str],
    visit: &mut dyn FnMut(Value) -> bool,
) -> Result<Envelope, String> {
    let mut envelope = Envelope::default();
    let mut deserializer =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let seed = Answer { list_keys, visit, out: &mut envelope };
    seed.deserialize(&mut deserializer)
        .map_err(|error| format!("the answer is not JSON: {error}"))?;
    deserializer.end().map_err(|error| format!("the answer is not JSON: {error}"))?;
    Ok(envelope)
}

struct Answer<'a> {
    list_keys: &'a [&'a str],
    visit: &'a mut dyn FnMut(Value) -> bool,
    out: &'a mut Envelope,
}

impl<'de> DeserializeSeed<'de> for Answer<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Answer<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        List { visit: self.visit, out: self.out }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if !self.out.had_list && self.list_keys.contains(&key.as_str()) {
                map.next_value_seed(List { visit: &mut *self.visit, out: &mut *self.out })?;
            } else if let Some(value) = map.next_value_seed(Scalar)? {
                self.out.fields.insert(key, value);
            }
        }
        Ok(())
    }
}

struct List<'a> {
    visit: &'a mut dyn FnMut(Value) -> bool,
    out: &'a mut Envelope,
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.had_list = true;
        loop {
            if self.out.stopped {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
            } else {
                let Some(item) = seq.next_element::<Value>()? else { return Ok(()) };
                self.out.stopped = !(self.visit)(item);
            }
            self.out.items = self.out.items.saturating_add(1);
        }
    }
}

/// A scalar as a `Value` (text cut to [`MAX_SCALAR_CHARS`]); lists and objects skipped (`None`).
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Value>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
        Ok(Some(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
        Ok(Some(Value::String(v.chars().take(MAX_SCALAR_CHARS).collect())))
    }
    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(Some(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_visited_one_by_one_and_scalars_kept() {
        let text = br#"{"count": 3, "num_pages": 1, "extra": {"a": [1, 2]}, "message": "ok",
            "data": [{"id": 1}, {"id": 2}, {"id": 3}], "failed": false}"#;
        let mut seen = Vec::new();
        let envelope = read_list(&text[..], &["data"], &mut |item| {
            seen.push(item["id"].as_u64().unwrap());
            seen.len() < 2
        })
        .unwrap();
        assert_eq!(seen, [1, 2]);
        assert!(envelope.stopped && envelope.had_list);
        assert_eq!(envelope.items, 3);
        assert_eq!(envelope.fields["num_pages"], 1);
        assert_eq!(envelope.fields["failed"], false);
        assert!(!envelope.fields.contains_key("extra"));
        let bare = read_list(&b"[{\"id\": 9}]"[..], &["data"], &mut |_| true).unwrap();
        assert_eq!((bare.items, bare.had_list), (1, true));
        let none = read_list(&b"{\"data\": null}"[..], &["data"], &mut |_| true).unwrap();
        assert!(!none.had_list);
        for bad in [&b"{\"data\": [1,"[..], b"nope", b"{} {}"] {
            assert!(read_list(bad, &["data"], &mut |_| true).is_err());
        }
    }
}
