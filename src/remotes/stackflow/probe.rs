//! `stackflow check` for a StackFlow account's incidents API: `GET /incidents?limit=1` with
//! the Bearer token. Read-only; the webhook is never called (that would create an incident).

use super::{StackflowAccount, StackflowApi};
use crate::remotes::probe::{ProbeResult, credentials_hint, failure, judge};

pub fn probe_api(api: &StackflowApi) -> ProbeResult {
    let hint = credentials_hint(&StackflowAccount::api_secret_user_of(&api.account.name));
    let response = api.get("/incidents?limit=1").map_err(|outcome| failure(outcome, &hint))?;
    judge(&response, "StackFlow GET /incidents", &hint)?;
    Ok(format!("{} reachable, API token accepted (read-back for stackflowsync)", api.base_url()))
}
