//! ES asset and identity context on a notable (PRODUCT §17): the fields ES's asset & identity
//! framework attaches (`dest_priority, dest_category, dest_bunit, dest_owner, src_priority,
//! src_category, user_priority, user_category, user_bunit, user_watchlist`), shown as one line
//! of a Slack message's context block, and the lead of the template summary when an asset is
//! critical or an identity is watch-listed. Routes match them like any field
//! (`field.dest_priority = critical`, `mapping::route`).
//!
//! Pure: no I/O.

use crate::splunk::results::{FieldValue, Row};

/// The asset & identity fields, in the order they are shown.
pub const FIELDS: &[&str] = &[
    "dest_priority",
    "dest_category",
    "dest_bunit",
    "dest_owner",
    "src_priority",
    "src_category",
    "user_priority",
    "user_category",
    "user_bunit",
    "user_watchlist",
];

/// A value longer than this is cut (characters).
const VALUE_MAX: usize = 80;

fn values(row: &Row, name: &str) -> Vec<String> {
    let raw: Vec<&str> = match row.get(name) {
        None => return Vec::new(),
        Some(FieldValue::Single(value)) => vec![value.as_str()],
        Some(FieldValue::Multi(values)) => values.iter().map(String::as_str).collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for value in raw {
        let value: String = value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(VALUE_MAX)
            .collect();
        let lower = value.to_ascii_lowercase();
        if value.is_empty() || ["null", "none", "n/a", "-", "unknown"].contains(&lower.as_str()) {
            continue;
        }
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

fn one(row: &Row, name: &str) -> Option<String> {
    values(row, name).into_iter().next()
}

/// Whether the row carries any asset or identity field.
pub fn present(row: &Row) -> bool {
    FIELDS.iter().any(|name| !values(row, name).is_empty())
}

/// `dest_priority=critical · dest_owner=alice …` (unescaped), or `None` without such fields.
pub fn line(row: &Row) -> Option<String> {
    let parts: Vec<String> = FIELDS
        .iter()
        .filter_map(|name| {
            let values = values(row, name);
            (!values.is_empty()).then(|| format!("{name}={}", values.join(",")))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Asset & identity: {}", parts.join(" · ")))
}

fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "t")
}

/// The summary's first sentence when the notable touches a critical asset or a watch-listed
/// identity: "Critical asset web-01 (finance, owner alice); watch-listed identity bob."
pub fn lead(row: &Row) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for (side, entity_fields) in [("dest", ["dest", "dest_ip"]), ("src", ["src", "src_ip"])] {
        let critical = values(row, &format!("{side}_priority"))
            .iter()
            .any(|priority| priority.eq_ignore_ascii_case("critical"));
        if !critical {
            continue;
        }
        let name = entity_fields.iter().find_map(|field| one(row, field));
        let mut details: Vec<String> = Vec::new();
        if let Some(bunit) = one(row, &format!("{side}_bunit")) {
            details.push(bunit);
        }
        if let Some(category) = one(row, &format!("{side}_category")) {
            details.push(category);
        }
        if let Some(owner) = one(row, &format!("{side}_owner")) {
            details.push(format!("owner {owner}"));
        }
        let mut text = match name {
            Some(name) => format!("critical asset {name}"),
            None => format!("critical {side} asset"),
        };
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join(", ")));
        }
        parts.push(text);
    }
    let user = ["user", "src_user"].iter().find_map(|field| one(row, field));
    let watched = values(row, "user_watchlist").iter().any(|value| is_true(value));
    let critical_user = values(row, "user_priority")
        .iter()
        .any(|priority| priority.eq_ignore_ascii_case("critical"));
    if watched || critical_user {
        let kind = match (watched, critical_user) {
            (true, true) => "watch-listed critical identity",
            (true, false) => "watch-listed identity",
            _ => "critical identity",
        };
        let mut text = match &user {
            Some(user) => format!("{kind} {user}"),
            None => kind.to_string(),
        };
        if let Some(bunit) = one(row, "user_bunit") {
            text.push_str(&format!(" ({bunit})"));
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return None;
    }
    let mut text = parts.join("; ");
    if let Some(first) = text.get(..1) {
        text = format!("{}{}", first.to_ascii_uppercase(), &text[1..]);
    }
    Some(format!("{text}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, &str)]) -> Row {
        let pairs: Vec<(&str, FieldValue)> =
            fields.iter().map(|(k, v)| (*k, FieldValue::Single(v.to_string()))).collect();
        Row::from_pairs("0", &pairs)
    }

    #[test]
    fn a_critical_asset_and_a_watched_identity_lead() {
        let r = row(&[
            ("dest", "web-01"),
            ("dest_priority", "critical"),
            ("dest_bunit", "finance"),
            ("dest_owner", "alice"),
            ("user", "bob"),
            ("user_watchlist", "true"),
        ]);
        assert_eq!(
            lead(&r).unwrap(),
            "Critical asset web-01 (finance, owner alice); watch-listed identity bob."
        );
        assert_eq!(
            line(&r).unwrap(),
            "Asset & identity: dest_priority=critical · dest_bunit=finance · dest_owner=alice · user_watchlist=true"
        );
        let plain =
            row(&[("dest", "web-01"), ("dest_priority", "medium"), ("user_watchlist", "false")]);
        assert_eq!(lead(&plain), None);
        assert!(present(&plain));
        assert_eq!(line(&row(&[("dest", "x")])), None);
    }
}
