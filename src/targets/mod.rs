//! The remote systems: SOAR, StackFlow and Slack clients. Each turns a `DeliveryItem` into
//! requests and the responses into an `Outcome`; none decides about retries or the spool.
//!
//! `open` builds a target from configuration and the account's secret; it is used both by the
//! alert actions and by `spool flush`, which is why items never carry secrets.

pub mod slack;
pub mod soar;
pub mod stackflow;

use crate::delivery::http::{HttpClient, HttpOptions};
use crate::delivery::{Target, TargetKind};
use crate::error::Result;
use crate::settings::Settings;
use crate::splunk::rest::Splunkd;

/// Builds the client for `kind` and `account`: reads `[<kind>:<account>]` and the secret.
pub fn open(
    kind: TargetKind,
    account: &str,
    settings: &Settings,
    splunkd: &Splunkd,
) -> Result<Box<dyn Target>> {
    Ok(match kind {
        TargetKind::Soar => Box::new(soar::SoarTarget::open(account, settings, splunkd)?),
        TargetKind::Stackflow => {
            Box::new(stackflow::StackflowTarget::open(account, settings, splunkd)?)
        }
        TargetKind::Slack => Box::new(slack::SlackTarget::open(account, settings, splunkd)?),
    })
}

/// An HTTP client for an outbound account stanza: its TLS settings (verification on by
/// default), the `[proxy]`, and `[delivery] timeout_s`.
pub fn http_for(settings: &Settings, stanza: &str) -> Result<HttpClient> {
    let options = HttpOptions {
        tls: settings.tls(stanza, true)?,
        proxy: settings.proxy(),
        timeout: settings.delivery()?.timeout,
    };
    HttpClient::new(&options, stanza)
}
