//! PII redaction before any model request (PRODUCT §13): e-mail addresses, user names (values
//! of user-type fields), IPv4/IPv6 addresses (optional), phone numbers, card numbers
//! (Luhn-checked) and secrets (bearer tokens, JWTs, AWS keys, `password=` values) become
//! placeholders (`<EMAIL_1>`, `<USER_1>`, `<IP_1>`, `<PHONE_1>`, `<CARD_1>`, `<SECRET_1>`),
//! consistently within one [`Redactor`]; [`Redactor::restore`] fills the answer's placeholders
//! back in locally — except secrets, which never come back (`[secret]`).
//!
//! A `password=` / `token=` / `secret=` value (and a bearer credential) runs to the next
//! whitespace or quote, whatever delimiters it holds (`password=Tr0ub4dor&3x` is one secret,
//! PRODUCT §15). Word boundaries are ASCII ones, so other scripts do not hide a value
//! (`漢字jdoe@acme.example`), and URL escapes are seen as delimiters (`ip%3D10.0.0.5`).
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
    /// The whole match is the secret, or capture group 1 when present. Matched on the text
    /// with URL escapes masked (see [`mask_percent_escapes`]).
    secrets: Vec<Regex>,
    /// Capture group 1 is the secret; matched on the text as it is (a value's `%26` is part of
    /// the value).
    valued: Vec<Regex>,
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
                // JSON Web Tokens: three base64url segments, the header starting `{"`.
                re(r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
                // AWS access key ids (AWS IAM "unique identifier prefixes").
                re(r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}(?-u:\b)"),
                // Slack tokens.
                re(r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}"),
            ],
            // key=value / key: value / "key": "value" secrets (password=, db_password=,
            // aws_secret_access_key=, token: …, also `=` written %3D). The value is a quoted
            // string, or runs to the next whitespace or quote: `&`, `;`, `,` and the like are
            // part of a password, not its end (`password=Tr0ub4dor&3x`).
            valued: vec![
                re(
                    r#"(?i)(?:(?-u:\b)|%[0-9a-f]{2})(?:[a-z0-9]+[_-])*(?:password|passwd|pwd|pass|secret|api[_-]?key|access[_-]?token|token)(?:[_-][a-z0-9]+)*["'`]?\s*(?:[=:]|%3d|%3a)\s*("[^"]*"|'[^']*'|`[^`]*`|["'`]?[^\s"'`]+)"#,
                ),
                // RFC 6750 bearer tokens: the credential runs to the next whitespace or quote
                // (also after a URL-encoded space), as a password does.
                re(r#"(?i)(?:(?-u:\b)|%[0-9a-f]{2})bearer(?:\s|%20)+([^\s"'`]{8,})"#),
            ],
            email: re(
                r"(?-u:\b)[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?-u:\b)",
            ),
            card: re(r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,}(?-u:\b)"),
            ipv4: re(r"(?-u:\b)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?-u:\b)"),
            ipv6: re(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*"),
            phones: vec![
                // International: +<country> then groups.
                re(r"\+[0-9]{1,3}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})){2,5}"),
                // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
                re(r"\([0-9]{3}\) ?[0-9]{3}[ .\-][0-9]{4}(?-u:\b)"),
                re(r"(?-u:\b)[0-9]{3}[.\-][0-9]{3}[.\-][0-9]{4}(?-u:\b)"),
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

/// Card numbers in a run of digit groups (`7 4111 1111 1111 1111`): every run of whole groups
/// with 13 to 19 digits that passes Luhn.
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
    // Every candidate goes to the overlap rule of `redact` (earliest, then longest, wins), so a
    // run that also takes a neighbouring number's digits does not hide the card next to it.
    for (_, first, last) in cards {
        let (from, to) = (groups[first].0, groups[last].1);
        found.push(Found { start: offset + from, end: offset + to, kind: Kind::Card });
    }
}

/// A letter, digit or `_` of ASCII: what may not touch an address or a user name. Other
/// scripts (`漢jdoe`, `é10.0.0.5`) do not glue a value to a word.
fn ascii_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The text with every URL escape (`%` and two hex digits) turned into three spaces: same
/// length and offsets, so that `%3D10.0.0.5` or `%26jdoe` show where a value starts.
fn mask_percent_escapes(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let escape_at = |i: usize| {
        bytes[i] == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    };
    if !(0..bytes.len()).any(escape_at) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if escape_at(i) {
            out.extend_from_slice(b"   ");
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were replaced, by ASCII bytes: still UTF-8.
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| text.to_string()))
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
        for pattern in &patterns.valued {
            for captures in pattern.captures_iter(text) {
                let Some(m) = captures.get(1) else { continue };
                // `bearer of news`: a plain lower-case word is prose, not a credential.
                if m.as_str().bytes().all(|b| b.is_ascii_lowercase()) {
                    let key = &text[captures.get(0).map_or(0, |all| all.start())..m.start()];
                    if key.trim_end().to_ascii_lowercase().ends_with("bearer") {
                        continue;
                    }
                }
                found.push(Found { start: m.start(), end: m.end(), kind: Kind::Secret });
            }
        }
        // E-mail addresses on the text as it is too: `%2B` is part of a local part.
        for m in patterns.email.find_iter(text) {
            found.push(Found { start: m.start(), end: m.end(), kind: Kind::Email });
        }
        // Every other kind is looked for with URL escapes masked (`%3D10.0.0.5` holds an
        // address); the offsets are the text's own.
        let masked = mask_percent_escapes(text);
        let text: &str = &masked;
        for pattern in &patterns.secrets {
            for captures in pattern.captures_iter(text) {
                if let Some(m) = captures.get(1).or_else(|| captures.get(0)) {
                    found.push(Found { start: m.start(), end: m.end(), kind: Kind::Secret });
                }
            }
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
                // The match may take a neighbouring `:` or `.` (`:2001:db8::7:`, `…::7.`).
                let whole = m.as_str().trim_end_matches('.');
                let Some((skip, candidate)) = [
                    (0, whole),
                    (0, whole.strip_suffix(':').unwrap_or(whole)),
                    (1, whole.strip_prefix(':').unwrap_or(whole)),
                    (1, whole.strip_prefix(':').and_then(|w| w.strip_suffix(':')).unwrap_or(whole)),
                ]
                .into_iter()
                .find(|(_, candidate)| candidate.parse::<Ipv6Addr>().is_ok()) else {
                    continue;
                };
                let (start, end) = (m.start() + skip, m.start() + skip + candidate.len());
                // `a::b` or `Foo::bar` are names, not addresses: at least 4 hex digits (or ::1).
                let hex_digits = candidate.bytes().filter(u8::is_ascii_hexdigit).count();
                if (hex_digits >= 4 || candidate == "::1")
                    && !ascii_word(text[..start].chars().next_back())
                    && !ascii_word(text[end..].chars().next())
                {
                    found.push(Found { start, end, kind: Kind::Ip });
                }
            }
        }
        for pattern in &patterns.phones {
            for m in pattern.find_iter(text) {
                // E.164 numbers have at most 15 digits: a longer match ran into the next
                // number, so it ends after the last group that keeps it within 15.
                let mut digits = 0;
                let mut end = None;
                for (at, byte) in m.as_str().bytes().enumerate() {
                    if byte.is_ascii_digit() {
                        digits += 1;
                        let next = m.as_str().as_bytes().get(at + 1);
                        if digits <= 15 && !next.is_some_and(u8::is_ascii_digit) {
                            end = Some((at + 1 + usize::from(next == Some(&b')')), digits));
                        }
                    }
                }
                if let Some(end) = end.filter(|(_, digits)| *digits >= 7).map(|(end, _)| end) {
                    found.push(Found { start: m.start(), end: m.start() + end, kind: Kind::Phone });
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
                if !ascii_word(text[..start].chars().next_back())
                    && !ascii_word(text[end..].chars().next())
                {
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
        for mut m in found {
            if m.start < at && m.end > at {
                // A value is never left partly visible: the part of it after a match that
                // started earlier gets a placeholder of its own (leading separators stay).
                m.start = at + text[at..m.end].len()
                    - text[at..m.end].trim_start_matches([' ', '-', '.', ':']).len();
            }
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
mod props;
#[cfg(test)]
mod tests;
