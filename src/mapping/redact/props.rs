//! Property tests of PII redaction (PRODUCT §15 "Redaction ends where the value ends"): for
//! every kind, values of every shape (delimiters, quotes, unicode, URL escapes) at the start,
//! middle or end of a text and next to punctuation never survive redaction, and restoring
//! gives back every value that is not a secret.
//!
//! Each generated value is built around *markers*: words that start with `Q` (or `q`) and
//! appear nowhere else in the text, so "no part of the value survives" is checked by looking
//! for each marker in the output.

use super::*;
use proptest::prelude::*;

/// A marker word: `Q` and 5 to 8 lower-case letters or digits (never a placeholder's text).
fn marker() -> impl Strategy<Value = String> {
    "Q[a-z0-9]{5,8}"
}

/// What may stand between the parts of a secret value: every delimiter, URL escapes, unicode.
fn joiner() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "&", ";", ",", "|", "/", "=", ":", "%26", "%3D", "%2C", "%2F", "é", "漢字", "…", "(", ")",
        "[", "]", "{", "}", "!", "?", "#", "~", "^", "*", "+", ".", "-", "_", "@", "$",
    ])
}

/// What may come right before a value or a key (start of text, punctuation, quotes, unicode,
/// URL escapes).
fn before() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "", " ", "\n", "?", "&", ";", ",", "|", "/", "=", ":", "(", "[", "{", "\"", "'", "`", "é",
        "漢字", "%26", "%3D", "%2C", "from ", "à ",
    ])
}

/// What may come right after a value that is not a secret.
fn after() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "", " ", "\n", "&", ";", ",", "|", "/", "=", ")", "]", "}", "\"", "'", "`", "é", "漢字",
        "%26", "%3D", "%2C", ". ", "! ", " at noon",
    ])
}

/// A secret's value: markers joined by delimiters (no whitespace, no quote), or a quoted
/// string of any content but its own quote.
fn secret_value() -> impl Strategy<Value = (String, Vec<String>)> {
    let unquoted = prop::collection::vec((marker(), joiner()), 1..4).prop_map(|parts| {
        let mut value = String::new();
        let mut markers = Vec::new();
        for (index, (marker, joiner)) in parts.iter().enumerate() {
            if index > 0 {
                value.push_str(joiner);
            }
            value.push_str(marker);
            markers.push(marker.clone());
        }
        (value, markers)
    });
    let quoted = (
        prop::sample::select(vec!['"', '\'', '`']),
        prop::collection::vec(
            (marker(), prop::sample::select(vec![" ", "&", "; ", " = ", "é "])),
            1..4,
        ),
    )
        .prop_map(|(quote, parts)| {
            let mut value = String::from(quote);
            let mut markers = Vec::new();
            for (index, (marker, joiner)) in parts.iter().enumerate() {
                if index > 0 {
                    value.push_str(joiner);
                }
                value.push_str(marker);
                markers.push(marker.clone());
            }
            value.push(quote);
            (value, markers)
        });
    prop_oneof![3 => unquoted, 1 => quoted]
}

/// `key=value` secrets of every spelling: key, separator, JSON quotes.
fn key_value_secret() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop::sample::select(vec![
            "password",
            "PASSWORD",
            "Password",
            "passwd",
            "pwd",
            "token",
            "secret",
            "db_password",
            "client_secret",
            "api_key",
            "x-api-key",
            "access_token",
            "aws_secret_access_key",
        ]),
        prop::sample::select(vec!["=", ": ", " = ", ":", "%3D", "%3d", "\":\"", "\": "]),
        secret_value(),
        prop::sample::select(vec!["", " ", "\n", "\" ", "' ", "` ", " and more"]),
    )
        .prop_map(|(key, separator, (value, markers), end)| {
            // `"password":"…"` is JSON: the key is quoted, and so is an unquoted value.
            let text = if separator == "\":\"" {
                let value = value.trim_matches(['"', '\'', '`']).replace('"', "");
                format!("\"{key}\":\"{value}\"{end}")
            } else {
                format!("{key}{separator}{value}{end}")
            };
            (text, markers)
        })
}

/// Bearer tokens (8 characters at least): the credential runs to the next whitespace or quote.
fn bearer_secret() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", "Bearer%20"]),
        prop::collection::vec(("Q[a-z0-9]{7,10}", joiner()), 1..3),
    )
        .prop_map(|(prefix, parts)| {
            let mut value = String::new();
            let mut markers = Vec::new();
            for (index, (marker, joiner)) in parts.iter().enumerate() {
                if index > 0 {
                    value.push_str(joiner);
                }
                value.push_str(marker);
                markers.push(marker.clone());
            }
            (format!("{prefix}{value}"), markers)
        })
}

/// JSON Web Tokens (base64url segments, each holding a marker).
fn jwt_secret() -> impl Strategy<Value = (String, Vec<String>)> {
    (marker(), marker(), "[A-Za-z0-9_-]{0,20}").prop_map(|(payload, signature, tail)| {
        (format!("eyJhbGciOiJIUzI1NiJ9.eyJ{payload}.{signature}{tail}"), vec![payload, signature])
    })
}

/// AWS access key ids.
fn aws_secret() -> impl Strategy<Value = (String, Vec<String>)> {
    (prop::sample::select(vec!["AKIA", "ASIA", "AROA", "AIDA"]), "Q[0-9A-Z]{15}")
        .prop_map(|(prefix, rest)| (format!("{prefix}{rest}"), vec![rest]))
}

/// A Luhn-valid card number of 13 to 19 digits, grouped by spaces or dashes or not at all.
fn card_value() -> impl Strategy<Value = String> {
    (prop::collection::vec(0u8..10, 12..19), 0usize..3).prop_map(|(mut digits, grouping)| {
        digits[0] = digits[0].max(1);
        let check = (0..10u8)
            .find(|d| {
                let mut all = digits.clone();
                all.push(*d);
                luhn_valid(&all)
            })
            .unwrap_or(0);
        digits.push(check);
        let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        match grouping {
            0 => text,
            n => {
                let separator = if n == 1 { " " } else { "-" };
                let groups: Vec<&str> = text
                    .as_bytes()
                    .chunks(4)
                    .map(|chunk| std::str::from_utf8(chunk).unwrap_or(""))
                    .collect();
                groups.join(separator)
            }
        }
    })
}

/// A value that is not a secret, with its kind; user names are declared to the redactor.
fn plain_value() -> impl Strategy<Value = (Kind, String)> {
    prop_oneof![
        (
            "q[a-z0-9]{4,8}",
            prop::sample::select(vec!["", ".x", "+tag", "-y", "%2Bz"]),
            "[a-z]{2,6}",
            prop::sample::select(vec!["example", "co.uk", "io"])
        )
            .prop_map(|(local, extra, domain, tld)| (
                Kind::Email,
                format!("{local}{extra}@{domain}.{tld}")
            )),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| (Kind::Ip, format!("{a}.{b}.{c}.{d}"))),
        any::<u128>()
            .prop_filter("has enough hex digits", |bits| bits.count_ones() > 24)
            .prop_map(|bits| (Kind::Ip, Ipv6Addr::from(bits).to_string())),
        (1u32..99, 100u32..999, 100u32..999, 1000u32..9999, 0usize..4).prop_map(
            |(cc, a, b, c, form)| {
                let text = match form {
                    0 => format!("+{cc} {a} {b} {c}"),
                    1 => format!("({a}) {b}-{c}"),
                    2 => format!("{a}-{b}-{c}"),
                    _ => format!("{a}.{b}.{c}"),
                };
                (Kind::Phone, text)
            }
        ),
        card_value().prop_map(|card| (Kind::Card, card)),
        ("q[a-z0-9]{3,8}", prop::sample::select(vec!["", "CORP\\", "é", "$"])).prop_map(
            |(name, shape)| {
                let name = match shape {
                    "CORP\\" => format!("CORP\\{name}"),
                    "$" => format!("{name}$"),
                    "é" => format!("{name}é"),
                    _ => name,
                };
                (Kind::User, name)
            }
        ),
    ]
}

/// Whether a plain value shows in `out`: the whole value, or an address's local part.
fn survives(out: &str, value: &str) -> bool {
    let local = value.split_once('@').map(|(local, _)| local.split(['.', '+', '-', '%']).next());
    out.contains(value) || local.flatten().is_some_and(|local| out.contains(local))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every secret kind, alone in a text: no marker of its value survives, and restoring
    /// gives `[secret]`, never the value.
    #[test]
    fn no_part_of_a_secret_survives(
        (secret, markers) in prop_oneof![
            4 => key_value_secret(),
            1 => bearer_secret(),
            1 => jwt_secret(),
            1 => aws_secret(),
        ],
        lead in before(),
        prose in prop::sample::select(vec!["", "login failed ", "漢字 ", "x=1&"]),
    ) {
        let text = format!("{lead}{prose}{secret}");
        let mut redactor = Redactor::new(true);
        let out = redactor.redact(&text);
        for marker in &markers {
            prop_assert!(!out.contains(marker.as_str()), "{marker:?} survived in {out:?} (from {text:?})");
        }
        let restored = redactor.restore(&out);
        for marker in &markers {
            prop_assert!(!restored.contains(marker.as_str()), "{marker:?} restored in {restored:?}");
        }
        prop_assert!(restored.contains(SECRET_RESTORED), "{restored:?}");
    }

    /// Every other kind, next to any punctuation, quote, unicode or URL escape, at the start,
    /// middle or end: the value does not survive, and restoring gives the text back exactly.
    #[test]
    fn no_plain_value_survives_and_restore_round_trips(
        values in prop::collection::vec((before(), plain_value(), after()), 1..5),
        start in prop::sample::select(vec!["", "seen ", "漢字"]),
    ) {
        let mut redactor = Redactor::new(true);
        let mut text = String::from(start);
        for (index, (lead, (kind, value), trail)) in values.iter().enumerate() {
            if kind == &Kind::User {
                redactor.add_user(value);
            }
            if index > 0 {
                text.push(' ');
            }
            text.push_str(lead);
            text.push_str(value);
            text.push_str(trail);
        }
        let out = redactor.redact(&text);
        for (_, (kind, value), _) in &values {
            prop_assert!(!survives(&out, value), "{kind:?} {value:?} survived in {out:?} (from {text:?})");
        }
        prop_assert_eq!(redactor.restore(&out), text);
    }

    /// Secrets and plain values in one text (separated by whitespace, as a secret's value runs
    /// to it): no secret marker and no plain value survives; restoring gives back every plain
    /// value and no secret.
    #[test]
    fn mixed_texts_keep_secrets_out_and_restore_the_rest(
        secrets in prop::collection::vec(prop_oneof![key_value_secret(), bearer_secret(), jwt_secret(), aws_secret()], 1..3),
        plains in prop::collection::vec((before(), plain_value(), after()), 1..4),
    ) {
        let mut redactor = Redactor::new(true);
        let mut parts: Vec<String> = Vec::new();
        for ((lead, (kind, value), trail), secret) in plains.iter().zip(secrets.iter().cycle()) {
            if kind == &Kind::User {
                redactor.add_user(value);
            }
            parts.push(format!("{lead}{value}{trail}"));
            parts.push(secret.0.clone());
        }
        let text = parts.join(" \n ");
        let out = redactor.redact(&text);
        let restored = redactor.restore(&out);
        for (secret, markers) in &secrets {
            for marker in markers {
                prop_assert!(!out.contains(marker.as_str()), "{marker:?} of {secret:?} survived in {out:?}");
                prop_assert!(!restored.contains(marker.as_str()), "{marker:?} restored");
            }
        }
        for (_, (kind, value), _) in &plains {
            prop_assert!(!survives(&out, value), "{kind:?} {value:?} survived in {out:?}");
            prop_assert!(restored.contains(value.as_str()), "{kind:?} {value:?} not restored in {restored:?}");
        }
    }
}
