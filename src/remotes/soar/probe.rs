//! `stackflow check` for a SOAR account: `GET /rest/version` with the token (else, on SOAR
//! versions without it, `GET /rest/container?page_size=1`). Read-only.

use super::SoarApi;
use crate::remotes::probe::{ProbeResult, credentials_hint, failure, judge};
use serde_json::Value;

pub fn probe(api: &SoarApi) -> ProbeResult {
    let hint = credentials_hint(&api.account.secret_user());
    let response = api.get("/rest/version").map_err(|outcome| failure(outcome, &hint))?;
    let note = if response.status == 404 {
        let response =
            api.get("/rest/container?page_size=1").map_err(|outcome| failure(outcome, &hint))?;
        judge(&response, "SOAR GET /rest/container", &hint)?;
        "/rest/version not available".to_string()
    } else {
        judge(&response, "SOAR GET /rest/version", &hint)?;
        match response.json().as_ref().and_then(|json| json.get("version")).and_then(Value::as_str)
        {
            Some(version) => format!("SOAR {version}"),
            None => "version not reported".to_string(),
        }
    };
    Ok(format!("{} reachable, token accepted ({note})", api.base_url()))
}
