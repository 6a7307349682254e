//! Risk routing (PRODUCT §13): `[route:<name>]` stanzas of `stackflow.conf`, evaluated in name
//! order, first match wins. Conditions (all must hold; none = every row): `min_risk_score`,
//! `min_severity`, `search_name` (wildcards `*` and `?`, case-insensitive; the row's
//! `search_name`, else the alert's), `field.<f>` (the row's value, or any value of a multivalue,
//! matches the wildcard). Effects for Slack: `channel`, `mention` (a user group `S…`, a user
//! `U…`/`W…`, or `here`/`channel`), `buttons` (the response buttons of PRODUCT §9, in the
//! words of the alert's `buttons` parameter: `ack`, `escalate`, `false_positive`, or `none`),
//! `suppress = true` (not posted; a receipt with outcome `suppressed`), `war_room = true` (a
//! war room for the notable after posting, PRODUCT §17). Conditions on any field cover ES's
//! asset & identity fields (`field.dest_priority = critical`).
//!
//! Pure: parsed from the already loaded configuration; no I/O.

use super::AlertContext;
use super::slack::{Severity, parse_buttons};
use crate::error::{Error, Result};
use crate::splunk::conf::{ConfFile, parse_bool};
use crate::splunk::results::Row;
use std::collections::BTreeMap;

pub const STANZA_PREFIX: &str = "route:";

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub name: String,
    pub min_risk_score: Option<f64>,
    pub min_severity: Option<Severity>,
    pub search_name: Option<String>,
    pub fields: Vec<(String, String)>,
    pub channel: Option<String>,
    /// Slack mention markup (`<!subteam^S…>`, `<@U…>`, `<!here>`).
    pub mention: Option<String>,
    /// The response buttons of the rows it matches (PRODUCT §9 `buttons`; empty = none).
    pub buttons: Option<Vec<String>>,
    pub suppress: bool,
    /// PRODUCT §17: open a war room for the notable after posting.
    pub war_room: bool,
}

/// `*` any run of characters, `?` one character; case-insensitive.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point (linear in practice, never exponential).
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A Slack mention from `S…` (user group), `U…`/`W…` (user), `here`/`channel`/`everyone`,
/// or markup already written (`<!subteam^S…>`, `<@U…>`).
pub fn mention_markup(value: &str) -> Option<String> {
    let value = value.trim();
    let id = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    if value.starts_with('<')
        && value.ends_with('>')
        && !value[1..value.len() - 1].contains(['<', '>'])
    {
        return Some(value.to_string());
    }
    match value.to_ascii_lowercase().trim_start_matches(['@', '!']) {
        "here" => return Some("<!here>".into()),
        "channel" => return Some("<!channel>".into()),
        "everyone" => return Some("<!everyone>".into()),
        _ => {}
    }
    let value = value.trim_start_matches('@');
    match value.chars().next() {
        Some('S') if id(value) => Some(format!("<!subteam^{value}>")),
        Some('U' | 'W') if id(value) => Some(format!("<@{value}>")),
        _ => None,
    }
}

impl Route {
    /// Reads one `[route:<name>]` stanza; unknown keys and bad values are configuration errors.
    pub fn parse(name: &str, section: &BTreeMap<String, String>) -> Result<Route> {
        let stanza = format!("{STANZA_PREFIX}{name}");
        let mut route = Route {
            name: name.to_string(),
            min_risk_score: None,
            min_severity: None,
            search_name: None,
            fields: Vec::new(),
            channel: None,
            mention: None,
            buttons: None,
            suppress: false,
            war_room: false,
        };
        for (key, value) in section {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let bad = |problem: String| Error::config(&stanza, key, problem);
            match key.as_str() {
                "min_risk_score" => {
                    route.min_risk_score = Some(
                        value
                            .parse::<f64>()
                            .ok()
                            .filter(|n| n.is_finite())
                            .ok_or_else(|| bad(format!("\"{value}\" is not a number")))?,
                    );
                }
                "min_severity" => {
                    route.min_severity = Some(Severity::parse(value).ok_or_else(|| {
                        bad(format!(
                            "\"{value}\" is not one of informational, low, medium, high, critical"
                        ))
                    })?);
                }
                "search_name" => route.search_name = Some(value.to_string()),
                "channel" => route.channel = Some(value.to_string()),
                "mention" => {
                    route.mention = Some(mention_markup(value).ok_or_else(|| {
                        bad(format!(
                            "\"{value}\" is not a Slack user group id (S…), user id (U…/W…), here or channel"
                        ))
                    })?);
                }
                "buttons" => route.buttons = Some(parse_buttons(value).map_err(bad)?),
                "suppress" => {
                    route.suppress = parse_bool(value)
                        .ok_or_else(|| bad(format!("\"{value}\" is not a boolean")))?;
                }
                "war_room" => {
                    route.war_room = parse_bool(value)
                        .ok_or_else(|| bad(format!("\"{value}\" is not a boolean")))?;
                }
                other => match other.strip_prefix("field.") {
                    Some(field) if !field.is_empty() => {
                        route.fields.push((field.to_string(), value.to_string()));
                    }
                    _ => {
                        return Err(bad(
                            "unknown key: a route has min_risk_score, min_severity, search_name, field.<name>, channel, mention, buttons, suppress, war_room".into(),
                        ));
                    }
                },
            }
        }
        if !route.suppress
            && route.channel.is_none()
            && route.mention.is_none()
            && route.buttons.is_none()
            && !route.war_room
        {
            return Err(Error::config(
                &stanza,
                "",
                "the route has no effect: set channel, mention, buttons, war_room = true or suppress = true",
            ));
        }
        Ok(route)
    }

    /// Every `[route:<name>]` of the configuration, in name order.
    pub fn all(conf: &ConfFile) -> Result<Vec<Route>> {
        let mut names: Vec<&str> =
            conf.stanza_names().filter_map(|name| name.strip_prefix(STANZA_PREFIX)).collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|name| {
                conf.stanza(&format!("{STANZA_PREFIX}{name}")).map(|section| (name, section))
            })
            .map(|(name, section)| Route::parse(name, section))
            .collect()
    }

    pub fn matches(&self, row: &Row, context: &AlertContext) -> bool {
        if let Some(min) = self.min_risk_score {
            let score = row.str("risk_score").and_then(|s| s.trim().parse::<f64>().ok());
            if !score.is_some_and(|score| score >= min) {
                return false;
            }
        }
        if let Some(min) = self.min_severity
            && Severity::of_row(row) < min
        {
            return false;
        }
        if let Some(pattern) = &self.search_name {
            let name = row.str("search_name").unwrap_or(context.search_name.as_str());
            if !wildcard(pattern, name) {
                return false;
            }
        }
        self.fields.iter().all(|(field, pattern)| {
            row.get(field)
                .is_some_and(|value| value.values().iter().any(|v| wildcard(pattern, v.trim())))
        })
    }
}

/// The first route that matches the row.
pub fn route_for<'a>(routes: &'a [Route], row: &Row, context: &AlertContext) -> Option<&'a Route> {
    routes.iter().find(|route| route.matches(row, context))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::results::FieldValue;

    fn row(pairs: &[(&str, &str)]) -> Row {
        let pairs: Vec<(&str, FieldValue)> =
            pairs.iter().map(|(k, v)| (*k, FieldValue::Single(v.to_string()))).collect();
        Row::from_pairs("0", &pairs)
    }

    fn routes(text: &str) -> Result<Vec<Route>> {
        Route::all(&ConfFile::parse_str(text))
    }

    #[test]
    fn asset_fields_route_and_war_room_is_an_effect() {
        let routes = routes(
            "[route:10_crown]\nfield.dest_priority = critical\nwar_room = true\n\n[route:20_rest]\nchannel = #soc\n",
        )
        .unwrap();
        let context = AlertContext::default();
        let critical = row(&[("dest", "db-1"), ("dest_priority", "Critical")]);
        let low = row(&[("dest", "db-2"), ("dest_priority", "low")]);
        let first = route_for(&routes, &critical, &context).unwrap();
        assert_eq!(first.name, "10_crown");
        assert!(first.war_room && first.channel.is_none());
        assert_eq!(route_for(&routes, &low, &context).unwrap().name, "20_rest");
        assert!(Route::all(&ConfFile::parse_str("[route:x]\nwar_room = maybe\n")).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("Brute*", "brute force access"));
        assert!(wildcard("*force*", "Brute Force"));
        assert!(wildcard("T1?10", "t1110"));
        assert!(!wildcard("Brute", "Brute Force"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXXbYYc") && !wildcard("a*b*c", "aXXbYY"));
    }

    #[test]
    fn mentions() {
        assert_eq!(mention_markup("S0614TZR7").as_deref(), Some("<!subteam^S0614TZR7>"));
        assert_eq!(mention_markup("@U024BE7LH").as_deref(), Some("<@U024BE7LH>"));
        assert_eq!(mention_markup("here").as_deref(), Some("<!here>"));
        assert_eq!(mention_markup("<!subteam^S1>").as_deref(), Some("<!subteam^S1>"));
        assert_eq!(mention_markup("soc team"), None);
    }

    #[test]
    fn first_match_in_name_order_wins() {
        let routes = routes(
            "[route:20_high]\nmin_severity = high\nchannel = #soc-high\n\n\
             [route:10_risky]\nmin_risk_score = 100\nchannel = #soc-risk\nmention = S0614TZR7\n\n\
             [route:30_noise]\nsearch_name = *Test*\nfield.dest = lab-*\nsuppress = true\n",
        )
        .unwrap();
        let context =
            AlertContext { search_name: "ES Test Rule".into(), ..AlertContext::default() };
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["10_risky", "20_high", "30_noise"]);
        let pick = |pairs: &[(&str, &str)]| {
            route_for(&routes, &row(pairs), &context).map(|r| r.name.clone())
        };
        assert_eq!(
            pick(&[("risk_score", "120"), ("urgency", "critical")]).as_deref(),
            Some("10_risky")
        );
        assert_eq!(
            pick(&[("risk_score", "99"), ("urgency", "critical")]).as_deref(),
            Some("20_high")
        );
        assert_eq!(pick(&[("dest", "LAB-7")]).as_deref(), Some("30_noise"));
        assert_eq!(pick(&[("dest", "prod-7")]), None);
        assert_eq!(pick(&[("risk_score", "lots")]), None);
    }

    #[test]
    fn route_buttons_are_the_response_buttons() {
        let parsed =
            routes("[route:a]\nbuttons = False_Positive, ack\n[route:b]\nbuttons = none\n")
                .unwrap();
        assert_eq!(
            parsed[0].buttons.as_deref(),
            Some(&["false_positive".to_string(), "ack".into()][..])
        );
        assert_eq!(parsed[1].buttons.as_deref(), Some(&[][..]));
    }

    #[test]
    fn bad_routes_name_the_stanza_and_key() {
        for (text, key) in [
            ("[route:a]\nmin_risk_score = high\nchannel = #x\n", "min_risk_score"),
            ("[route:a]\nmin_severity = urgent\nchannel = #x\n", "min_severity"),
            ("[route:a]\nmention = soc team\n", "mention"),
            ("[route:a]\nbuttons = soar\n", "buttons"),
            ("[route:a]\nsuppress = maybe\n", "suppress"),
            ("[route:a]\nchanel = #x\n", "chanel"),
        ] {
            let error = routes(text).unwrap_err().to_string();
            assert!(error.contains(&format!("[route:a] {key}")), "{text}: {error}");
        }
        assert!(
            routes("[route:a]\nmin_severity = high\n")
                .unwrap_err()
                .to_string()
                .contains("no effect")
        );
    }
}
