//! Text for Slack: mrkdwn escaping, truncation that never splits a character or an escape,
//! and how row values and times are shown.

use super::*;

/// Escapes the three characters Slack's mrkdwn treats as control (`&`, `<`, `>`), so that a
/// row value cannot inject links or mentions such as `<!channel>`.
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Like [`truncate`] for escaped mrkdwn: never leaves half an `&amp;` entity at the cut.
pub fn truncate_escaped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

pub(super) fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A field's value for display: multivalues joined with ", ".
pub(super) fn display_value(value: &FieldValue) -> String {
    match value {
        FieldValue::Single(value) => value.trim().to_string(),
        FieldValue::Multi(values) => values
            .iter()
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The first of `names` present in the row, for display.
pub(super) fn first_present(row: &Row, names: &[&str]) -> Option<String> {
    names.iter().filter_map(|name| row.get(name)).map(display_value).find(|value| !value.is_empty())
}

/// `_time` as `YYYY-MM-DD HH:MM:SS UTC` when it is epoch seconds; other text as it is.
pub fn format_time(value: &str) -> String {
    let Some(seconds) = value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
    else {
        return value.trim().to_string();
    };
    let (year, month, day, hour, minute, second) =
        crate::civil_time::civil_from_unix(seconds.floor() as i64);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}
