//! Splunk users as splunkd describes them (`authentication/users`): a user's e-mail, roles
//! and effective capabilities, looked up by name or by e-mail. Used to decide whether the
//! Splunk user behind a Slack click may act — by that user's rights, never by the session's
//! (Splunk REST API reference, "authentication/users": `email`, `roles`, `capabilities`).

use super::Splunkd;
use crate::error::Result;
use crate::net::url_encode;
use serde_json::Value;

/// Users an e-mail search may return before the answer is taken as ambiguous.
const MAX_EMAIL_MATCHES: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplunkUser {
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    pub capabilities: Vec<String>,
}

impl SplunkUser {
    /// Holds `capability` (directly or through `admin_all_objects`, which admins hold).
    pub fn can(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|held| held == capability || held == "admin_all_objects")
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn from_entry(entry: &Value) -> Option<SplunkUser> {
    let content = entry.get("content")?;
    Some(SplunkUser {
        name: entry.get("name").and_then(Value::as_str)?.to_string(),
        email: content.get("email").and_then(Value::as_str).unwrap_or_default().to_string(),
        roles: strings(content.get("roles")),
        capabilities: strings(content.get("capabilities")),
    })
}

/// `GET /services/authentication/users/<name>`; `None` when there is no such user.
pub fn user(splunkd: &Splunkd, name: &str) -> Result<Option<SplunkUser>> {
    let path = format!("/services/authentication/users/{}?output_mode=json", url_encode(name));
    let answer = splunkd.get_json(&path, "splunkd authentication/users")?;
    Ok(answer.as_ref().and_then(|json| json.pointer("/entry/0")).and_then(from_entry))
}

/// The one user whose `email` equals `email` (case-insensitive); `None` when none or several
/// match (an ambiguous mapping acts for nobody).
pub fn user_by_email(splunkd: &Splunkd, email: &str) -> Result<Option<SplunkUser>> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        return Ok(None);
    }
    let path = format!(
        "/services/authentication/users?output_mode=json&count={}&search={}",
        MAX_EMAIL_MATCHES + 1,
        url_encode(&format!("email={email}"))
    );
    let answer = splunkd.get_json(&path, "splunkd authentication/users")?;
    let entries = answer
        .as_ref()
        .and_then(|json| json.get("entry"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matching: Vec<SplunkUser> = entries
        .iter()
        .filter_map(from_entry)
        .filter(|user| user.email.eq_ignore_ascii_case(email))
        .collect();
    Ok(match matching.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_and_capabilities() {
        let user =
            from_entry(&json!({"name": "alice", "content": {"email": "a@x", "roles": ["analyst"],
            "capabilities": ["stackflow_respond"]}}))
            .unwrap();
        assert!(user.can("stackflow_respond"));
        assert!(!user.can("stackflow_approve"));
        let admin = from_entry(
            &json!({"name": "root", "content": {"capabilities": ["admin_all_objects"]}}),
        )
        .unwrap();
        assert!(admin.can("stackflow_approve"));
        assert!(from_entry(&json!({"content": {}})).is_none());
    }
}
