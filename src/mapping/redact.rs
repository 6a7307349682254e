//! PII redaction before any model request (PRODUCT §13): e-mail addresses, user names (values
//! of user-type fields), IPv4/IPv6 addresses (optional), phone numbers, card numbers
//! (Luhn-checked) and secrets (bearer tokens, JWTs, AWS keys, `password=` values) become
//! placeholders (`<EMAIL_1>`, `<USER_1>`, `<IP_1>`, `<PHONE_1>`, `<CARD_1>`, `<SECRET_1>`),
//! consistently within one [`Redactor`]; [`Redactor::restore`] fills the answer's placeholders
//! back in locally — except secrets, which never come back (`[secret]`).
//!
//! Pure: no I/O. All matches are found on the original text and replaced in one pass, so a
//! placeholder is never matched again.

use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// What a redacted value was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    Email,
    Card,
    Ip,
    Phone,
    User,
}

impl Kind {
    /// The placeholder's word, and the key in audit counts (lower case).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Secret => "SECRET",
            Kind::Email => "EMAIL",
            Kind::Card => "CARD",
            Kind::Ip => "IP",
            Kind::Phone => "PHONE",
            Kind::User => "USER",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Email => "email",
            Kind::Card => "card",
            Kind::Ip => "ip",
            Kind::Phone => "phone",
            Kind::User => "user",
        }
    }
}

/// Row fields whose values are user names (CIM user fields and ES risk objects of type user).
pub const USER_FIELDS: &[&str] = &[
    "user",
    "src_user",
    "dest_user",
    "user_name",
    "username",
    "user_id",
    "src_user_name",
    "dest_user_name",
    "account",
    "account_name",
];

/// What a secret restores to: secrets never travel back into a message.
pub const SECRET_RESTORED: &str = "[secret]";

struct Patterns {
    /// The whole match is the secret, or capture group 1 when present.
    secrets: Vec<Regex>,
    email: Regex,
    card: Regex,
    ipv4: Regex,
    ipv6: Regex,
    phones: Vec<Regex>,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let re = |pattern: &str| Regex::new(pattern).expect("a valid built-in pattern");
        Patterns {
            secrets: vec![
                // RFC 6750 bearer tokens (b64token).
                re(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)"),
                // JSON Web Tokens: three base64url segments, the header starting `{"`.
                re(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
                // AWS access key ids (AWS IAM "unique identifier prefixes").
                re(r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b"),
                // Slack tokens.
                re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
                // key=value / key: value secrets (password=, aws_secret_access_key=, token: …).
                re(
                    r#"(?i)\b(?:password|passwd|pwd|pass|secret|client_secret|aws_secret_access_key|api_?key|access_?token|token)\s*[=:]\s*("[^"]*"|'[^']*'|[^\s&,;"']+)"#,
                ),
            ],
            email: re(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"),
            card: re(r"\b[0-9](?:[ -]?[0-9]){12,}\b"),
            ipv4: re(r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b"),
            ipv6: re(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*"),
            phones: vec![
                // International: +<country> then groups.
                re(r"\+[0-9]{1,3}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,5}"),
                // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
                re(r"\([0-9]{3}\) ?[0-9]{3}[ .\-][0-9]{4}\b"),
                re(r"\b[0-9]{3}[.\-][0-9]{3}[.\-][0-9]{4}\b"),
            ],
        }
    })
}

/// The Luhn checksum (ISO/IEC 7812-1) of a digit string.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (index, digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(*digit);
        if index % 2 == 1 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Card numbers in a run of digit groups (`7 4111 1111 1111 1111`): the longest run of whole
/// groups with 13 to 19 digits that passes Luhn, longest first.
fn find_cards(run: &str, offset: usize, found: &mut Vec<Found>) {
    // Byte ranges of the groups (separated by one space or dash).
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (at, byte) in run.bytes().enumerate() {
        match (byte.is_ascii_digit(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                groups.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        groups.push((from, run.len()));
    }
    // Every run of whole groups that is a card; the longest win, then the leftmost.
    let mut cards: Vec<(usize, usize, usize)> = Vec::new();
    for first in 0..groups.len() {
        // Each group has at least one digit, so 19 groups bound the search.
        for last in first..groups.len().min(first.saturating_add(19)) {
            let (from, to) = (groups[first].0, groups[last].1);
            let digits: Vec<u8> =
                run[from..to].bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
            if (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
                cards.push((digits.len(), first, last));
            }
        }
    }
    cards.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (_, first, last) in cards {
        if taken.iter().all(|(f, l)| last < *f || first > *l) {
            taken.push((first, last));
            let (from, to) = (groups[first].0, groups[last].1);
            found.push(Found { start: offset + from, end: offset + to, kind: Kind::Card });
        }
    }
}

/// A match to replace: byte range, kind, the value.
#[derive(Debug)]
struct Found {
    start: usize,
    end: usize,
    kind: Kind,
}

/// Redacts texts consistently: the same value gets the same placeholder in every text given to
/// the same redactor.
#[derive(Debug, Default)]
pub struct Redactor {
    redact_ips: bool,
    users: Vec<String>,
    /// value → placeholder.
    placeholders: HashMap<(Kind, String), String>,
    /// placeholder → value.
    values: BTreeMap<String, (Kind, String)>,
    next: BTreeMap<Kind, u32>,
    counts: BTreeMap<Kind, u64>,
}

impl Redactor {
    pub fn new(redact_ips: bool) -> Redactor {
        Redactor { redact_ips, ..Redactor::default() }
    }

    /// Declares a user name (a value of a user-type field): its occurrences are redacted, and
    /// so are its bare forms (`DOMAIN\jdoe` → also `jdoe`; `jdoe@corp` → also `jdoe`).
    pub fn add_user(&mut self, name: &str) {
        let name = name.trim();
        let lower = name.to_ascii_lowercase();
        if name.chars().count() < 2
            || ["-", "null", "none", "unknown", "n/a"].contains(&lower.as_str())
        {
            return;
        }
        let mut forms = vec![name.to_string()];
        if let Some((_, bare)) = name.rsplit_once('\\') {
            forms.push(bare.to_string());
        }
        if let Some((bare, _)) = name.split_once('@') {
            forms.push(bare.to_string());
        }
        for form in forms {
            if form.chars().count() >= 2 && !self.users.contains(&form) {
                self.users.push(form);
            }
        }
        // Longest first, so that `DOMAIN\jdoe` wins over `jdoe`.
        self.users.sort_by_key(|user| std::cmp::Reverse(user.len()));
    }

    /// Redactions so far, by kind (`{"email": 2, "ip": 1}`).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.iter().map(|(kind, count)| (kind.key(), *count)).collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn find(&self, text: &str) -> Vec<Found> {
        let patterns = patterns();
        let mut found: Vec<Found> = Vec::new();
        for pattern in &patterns.secrets {
            for captures in pattern.captures_iter(text) {
                if let Some(m) = captures.get(1).or_else(|| captures.get(0)) {
                    found.push(Found { start: m.start(), end: m.end(), kind: Kind::Secret });
                }
            }
        }
        for m in patterns.email.find_iter(text) {
            found.push(Found { start: m.start(), end: m.end(), kind: Kind::Email });
        }
        for m in patterns.card.find_iter(text) {
            find_cards(m.as_str(), m.start(), &mut found);
        }
        if self.redact_ips {
            for m in patterns.ipv4.find_iter(text) {
                // A version number such as 10.0.19041.1 or 1.2.3.4.5 is not an address.
                let before = text[..m.start()].chars().next_back();
                let after = &text[m.end()..];
                let dotted_more = before == Some('.')
                    || (after.starts_with('.')
                        && after[1..].starts_with(|c: char| c.is_ascii_digit()));
                let previous_word = text[..m.start()]
                    .trim_end_matches([' ', ':', '='])
                    .rsplit(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let versioned = ["v", "ver", "version", "release", "build", "firmware"]
                    .contains(&previous_word.as_str());
                if !dotted_more && !versioned && m.as_str().parse::<Ipv4Addr>().is_ok() {
                    found.push(Found { start: m.start(), end: m.end(), kind: Kind::Ip });
                }
            }
            for m in patterns.ipv6.find_iter(text) {
                let candidate = m.as_str().trim_end_matches('.');
                let candidate = if candidate.parse::<Ipv6Addr>().is_err() {
                    candidate.strip_suffix(':').unwrap_or(candidate)
                } else {
                    candidate
                };
                let end = m.start() + candidate.len();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                // `a::b` or `Foo::bar` are names, not addresses: at least 4 hex digits (or ::1).
                let hex_digits = candidate.bytes().filter(u8::is_ascii_hexdigit).count();
                if (hex_digits >= 4 || candidate == "::1")
                    && !word(text[..m.start()].chars().next_back())
                    && !word(text[end..].chars().next())
                    && candidate.parse::<Ipv6Addr>().is_ok()
                {
                    found.push(Found { start: m.start(), end, kind: Kind::Ip });
                }
            }
        }
        for pattern in &patterns.phones {
            for m in pattern.find_iter(text) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if (7..=15).contains(&digits) {
                    found.push(Found { start: m.start(), end: m.end(), kind: Kind::Phone });
                }
            }
        }
        // ASCII case folding keeps byte offsets, whatever else the text holds.
        let lower = text.to_ascii_lowercase();
        for user in &self.users {
            let needle = user.to_ascii_lowercase();
            let mut from = 0;
            while let Some(at) = lower[from..].find(&needle) {
                let start = from + at;
                let end = start + needle.len();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                if !word(text[..start].chars().next_back()) && !word(text[end..].chars().next()) {
                    found.push(Found { start, end, kind: Kind::User });
                }
                from = end;
            }
        }
        found
    }

    fn placeholder(&mut self, kind: Kind, value: &str) -> String {
        let key =
            (kind, if kind == Kind::Email { value.to_lowercase() } else { value.to_string() });
        if let Some(placeholder) = self.placeholders.get(&key) {
            return placeholder.clone();
        }
        let number = self.next.entry(kind).or_insert(0);
        *number = number.saturating_add(1);
        let placeholder = format!("<{}_{}>", kind.word(), number);
        self.values.insert(placeholder.clone(), (kind, value.to_string()));
        self.placeholders.insert(key, placeholder.clone());
        placeholder
    }

    /// The text with every PII value replaced by its placeholder. Overlapping matches: the one
    /// that starts first wins, then the longer, then the kind earlier in [`Kind`]'s order.
    pub fn redact(&mut self, text: &str) -> String {
        let mut found = self.find(text);
        found.sort_by(|a, b| {
            a.start.cmp(&b.start).then(b.end.cmp(&a.end)).then(a.kind.cmp(&b.kind))
        });
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for m in found {
            if m.start < at || m.start >= m.end {
                continue;
            }
            out.push_str(&text[at..m.start]);
            let placeholder = self.placeholder(m.kind, &text[m.start..m.end]);
            out.push_str(&placeholder);
            *self.counts.entry(m.kind).or_insert(0) += 1;
            at = m.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Fills placeholders back in (secrets become [`SECRET_RESTORED`]); text that looks like a
    /// placeholder but was never handed out stays as it is.
    pub fn restore(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let close = tail.find('>').filter(|close| *close <= 24);
            match close.and_then(|close| self.values.get(&tail[..=close]).map(|v| (close, v))) {
                Some((close, (kind, value))) => {
                    out.push_str(if *kind == Kind::Secret { SECRET_RESTORED } else { value });
                    rest = &tail[close + 1..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests;
