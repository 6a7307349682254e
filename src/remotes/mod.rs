//! The remote systems, one module each: `soar`, `stackflow`, `slack`. A remote's module owns
//! its account settings (read once from `[<kind>:<account>]`), its URL (checked by the one
//! policy in `url`), its authentication, its writes (the delivery `Target`), its reads (what
//! `| stackflowsync` needs) and its `check` probe. Callers (`cmd/`, `sync/`, `check/`) never
//! build a remote's URL or header themselves.
//!
//! `open` builds a delivery target from configuration and the account's secret; it is used
//! both by the alert actions and by `spool flush`, which is why items never carry secrets.

pub mod llm;
pub mod probe;
pub mod response;
pub mod secrets;
pub mod slack;
pub mod soar;
pub mod splunkd;
pub mod stackflow;
pub mod stream;
pub mod url;

use crate::error::Result;
use crate::item::{Target, TargetKind};
use crate::net::http::{HttpClient, HttpOptions};
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;

/// Builds the delivery target for `kind` and `account`: its settings and its secret.
pub fn open(
    kind: TargetKind,
    account: &str,
    settings: &Settings,
    splunkd: &Splunkd,
) -> Result<Box<dyn Target>> {
    Ok(match kind {
        TargetKind::Soar => Box::new(soar::write::SoarTarget::open(account, settings, splunkd)?),
        TargetKind::Stackflow => {
            Box::new(stackflow::write::StackflowTarget::open(account, settings, splunkd)?)
        }
        TargetKind::Slack => Box::new(slack::write::SlackTarget::open(account, settings, splunkd)?),
    })
}

/// An HTTP client for an outbound account stanza: its TLS settings (verification on by
/// default), the `[proxy]`, and `[delivery] timeout_s`.
pub fn http_for(settings: &Settings, stanza: &str) -> Result<HttpClient> {
    let options = HttpOptions {
        tls: settings.tls(stanza, true)?,
        proxy: settings.proxy(),
        timeout: settings.request_timeout()?,
    };
    HttpClient::new(&options, stanza)
}
