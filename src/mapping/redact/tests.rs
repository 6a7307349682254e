//! Unit tests of PII redaction: each kind, the look-alikes that stay, consistency, restoring,
//! and a property test over generated texts.

use super::*;

fn redact(text: &str) -> String {
    Redactor::new(true).redact(text)
}

#[test]
fn emails_are_redacted_consistently_whatever_their_case() {
    let mut r = Redactor::new(true);
    let out = r.redact("from jdoe@acme.example to ops@corp.acme.io, again JDoe@Acme.example");
    assert_eq!(out, "from <EMAIL_1> to <EMAIL_2>, again <EMAIL_1>");
    assert_eq!(r.counts().get("email"), Some(&3));
    assert_eq!(
        redact("a@b is not an address; nor is user@host"),
        "a@b is not an address; nor is user@host"
    );
}

#[test]
fn user_names_of_user_fields_are_redacted_as_whole_words() {
    let mut r = Redactor::new(true);
    r.add_user("ACME\\svc_backup");
    r.add_user("jdoe");
    r.add_user("-");
    let out = r.redact("ACME\\svc_backup and svc_backup and JDOE; jdoe2 and xjdoe stay; - stays");
    assert_eq!(out, "<USER_1> and <USER_2> and <USER_3>; jdoe2 and xjdoe stay; - stays");
    assert_eq!(
        r.restore(&out),
        "ACME\\svc_backup and svc_backup and JDOE; jdoe2 and xjdoe stay; - stays"
    );
    // Text whose lower case is longer in bytes (İ) does not stop user redaction.
    let out = r.redact("İstanbul login by jdoe");
    assert!(out.starts_with("İstanbul login by <USER_") && !out.contains("jdoe"), "{out}");
}

#[test]
fn ipv4_addresses_but_not_version_numbers() {
    assert_eq!(redact("src 10.0.0.5 dest 203.0.113.7."), "src <IP_1> dest <IP_2>.");
    for keep in [
        "version 10.0.19041.1",
        "v1.2.3.4 installed",
        "build 1.2.3.4",
        "chrome 120.0.6099.109",
        "1.2.3.4.5",
        "999.1.1.1",
        "release 2.10.3",
        "2025-11-21 18:33:20",
    ] {
        assert_eq!(redact(keep), keep, "{keep}");
    }
    assert_eq!(redact("dev 10.0.0.5"), "dev <IP_1>", "a word ending in v is not a version");
    let mut keep_ips = Redactor::new(false);
    assert_eq!(keep_ips.redact("from 10.0.0.5 and fe80::1"), "from 10.0.0.5 and fe80::1");
}

#[test]
fn ipv6_addresses_but_not_times_macs_or_paths() {
    assert_eq!(redact("from 2001:db8::7 to fe80::1%eth0"), "from <IP_1> to <IP_2>%eth0");
    assert_eq!(redact("mapped ::ffff:192.0.2.1 here"), "mapped <IP_1> here");
    for keep in ["at 18:33:20", "mac 00:1A:2B:3C:4D:5E", "std::vec::Vec", "a::b", "ratio 3:2"] {
        assert_eq!(redact(keep), keep, "{keep}");
    }
}

#[test]
fn phone_numbers_but_not_dates_or_counts() {
    assert_eq!(redact("call +1 415 555 0134 now"), "call <PHONE_1> now");
    assert_eq!(redact("or (415) 555-0134 or 415-555-0134"), "or <PHONE_1> or <PHONE_2>");
    assert_eq!(redact("+44 20 7946 0958"), "<PHONE_1>");
    for keep in ["on 2025-11-21", "count 4155550134", "port 8089", "T1059.001"] {
        assert_eq!(redact(keep), keep, "{keep}");
    }
}

#[test]
fn card_numbers_pass_luhn_order_ids_do_not() {
    assert_eq!(redact("card 4111 1111 1111 1111 used"), "card <CARD_1> used");
    assert_eq!(redact("card 5500-0000-0000-0004."), "card <CARD_1>.");
    assert_eq!(redact("amex 378282246310005"), "amex <CARD_1>");
    for keep in
        ["order 4111111111111112", "ORD-1234567890123", "epoch 1763750000", "id 12345678901234"]
    {
        assert_eq!(redact(keep), keep, "{keep}");
    }
    assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
    assert!(!luhn_valid(&[]));
}

#[test]
fn secrets_of_every_form() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let cases = [
        ("Authorization: Bearer abc.def-123_XYZ=", "Authorization: Bearer <SECRET_1>"),
        (&*format!("token {jwt} end"), "token <SECRET_1> end"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key <SECRET_1> used"),
        ("password=hunter2&x=1", "password=<SECRET_1>"),
        ("password=Tr0ub4dor&3x and more", "password=<SECRET_1> and more"),
        ("db_password=a;b,c|d \"next\"", "db_password=<SECRET_1> \"next\""),
        ("{\"secret\": \"s3 cr&t\"}", "{\"secret\": <SECRET_1>}"),
        ("token%3DTr0ub4dor%263x end", "token%3D<SECRET_1> end"),
        ("pwd: \"s3cr et\"", "pwd: <SECRET_1>"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = <SECRET_1>",
        ),
        ("slack xoxb-1234567890-abcdefghij", "slack <SECRET_1>"),
    ];
    for (text, expected) in cases {
        let mut r = Redactor::new(true);
        let out = r.redact(text);
        assert_eq!(out, expected, "{text}");
        assert_eq!(
            r.restore(&out),
            expected.replace("<SECRET_1>", SECRET_RESTORED),
            "never restored"
        );
    }
    for keep in ["the password policy", "token bucket", "bearer of news"] {
        assert_eq!(redact(keep), keep, "{keep}");
    }
}

#[test]
fn restore_fills_in_known_placeholders_only() {
    let mut r = Redactor::new(true);
    let out = r.redact("jdoe@acme.example from 10.0.0.5");
    assert_eq!(out, "<EMAIL_1> from <IP_1>");
    assert_eq!(
        r.restore("User <EMAIL_1> logged in from <IP_1>; <IP_9> and <b>x</b> and a < b"),
        "User jdoe@acme.example logged in from 10.0.0.5; <IP_9> and <b>x</b> and a < b"
    );
}

/// A deterministic pseudo-random generator (xorshift64*), so the property test is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, min: u64) -> String {
        let len = min + self.below(6);
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
}

/// A Luhn-valid card number of 16 digits.
fn card(rng: &mut Rng) -> String {
    let mut digits: Vec<u8> =
        (0..15).map(|i| if i == 0 { 4 } else { rng.below(10) as u8 }).collect();
    let check = (0..10).find(|d| {
        let mut all = digits.clone();
        all.push(*d);
        luhn_valid(&all)
    });
    digits.push(check.unwrap());
    let text: String = digits.iter().map(|d| (b'0' + d) as char).collect();
    if rng.below(2) == 0 {
        text
    } else {
        format!("{} {} {} {}", &text[0..4], &text[4..8], &text[8..12], &text[12..16])
    }
}

#[test]
fn property_no_pii_value_survives_and_restore_round_trips() {
    let mut rng = Rng(0x5eed_1234_abcd_0016);
    let fillers =
        ["logged", "in", "from", "to", "at", "failed", "version 1.2.3", "count 42", "on", "host-7"];
    for case in 0..2000 {
        let mut redactor = Redactor::new(true);
        let mut pii: Vec<String> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        for _ in 0..(3 + rng.below(8)) {
            let value = match rng.below(8) {
                0 => format!("{}.{}@{}.example", rng.word(2), rng.word(2), rng.word(3)),
                1 => {
                    let user = format!("u{}_{}", rng.word(3), rng.below(1000));
                    redactor.add_user(&user);
                    user
                }
                2 => format!(
                    "{}.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                ),
                3 => format!("2001:db8:{:x}::{:x}", rng.below(65536), 1 + rng.below(65535)),
                4 => format!(
                    "+{} {} {} {}",
                    1 + rng.below(99),
                    100 + rng.below(900),
                    100 + rng.below(900),
                    1000 + rng.below(9000)
                ),
                5 => card(&mut rng),
                6 => format!(
                    "AKIA{}",
                    (0..16).map(|_| (b'A' + rng.below(26) as u8) as char).collect::<String>()
                ),
                _ => format!("password={}{}", rng.word(6), rng.below(100)),
            };
            let secret_value = value.strip_prefix("password=").unwrap_or(&value).to_string();
            pii.push(secret_value);
            parts.push(value);
            parts.push(fillers[rng.below(fillers.len() as u64) as usize].to_string());
        }
        let text = parts.join(" ");
        let out = redactor.redact(&text);
        for value in &pii {
            assert!(
                !out.contains(value.as_str()),
                "case {case}: {value:?} survived in {out:?} (from {text:?})"
            );
        }
        let restored = redactor.restore(&out);
        if !text.contains("password=") && !text.contains("AKIA") {
            assert_eq!(restored, text, "case {case}");
        }
    }
}
