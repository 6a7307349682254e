//! What to do with a click, decided without I/O: [`decide`] reads the facts gathered so far
//! (the click's claim, a decision's containment request, the link of the notable, who the
//! clicker is in Splunk, an approval's SOAR container, the effect's claim) and either names
//! the next fact it needs ([`Decision::Need`]) or ends with a [`Decision`]. The click handler
//! (`process`) gathers each fact in that order — so nothing is asked of splunkd, Slack or SOAR
//! that the click no longer needs — then applies the effect (`effects`) and tells Slack and
//! the receipt once (`tell`).

use super::claims::{self, Claim};
use super::click::{Action, Click};
use super::{Context, Outcome, Verdict, governance, playbook};
use crate::remotes::splunkd::users::SplunkUser;
use serde_json::{Map, Value};

/// A fact `decide` needs before it can go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The click's own claim (`claims::claim_click`).
    ClickClaim,
    /// The containment request an approval or denial is about (`playbook::request_record`).
    Request,
    /// The notable's link record, by this reference (`stackflow_links`).
    Link(String),
    /// The clicker's Splunk user (`governance::map_user`).
    User,
    /// An approval's SOAR container (`playbook::find_container`).
    Container,
    /// The effect's claim, by this key (`claims::claim_effect`).
    EffectClaim(String),
}

/// The facts of one click, each `None` until gathered.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub click_claim: Option<Claim>,
    /// `Some(None)`: no request waits for this decision.
    pub request: Option<Option<Map<String, Value>>>,
    /// `Some(None)`: StackFlow recorded no such notable.
    pub link: Option<Option<Context>>,
    /// `Err`: why the Slack user has no Splunk user (said to the clicker).
    pub user: Option<Result<SplunkUser, String>>,
    /// `Err`: why there is no container to run the playbook on.
    pub container: Option<Result<u64, String>>,
    pub effect_claim: Option<Claim>,
}

/// Where a click ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Gather this fact and decide again.
    Need(Fact),
    /// The click was seen before: its receipt only (`duplicate`, with why).
    SeenBefore(String),
    /// Ends before any effect: `failed`, or `duplicate` of an effect another click holds.
    Early(Outcome),
    /// The clicker may not act (`denied`, with why).
    Refuse(String),
    /// Apply the effect, holding `effect` (its claim's key) when it has one.
    Act { effect: Option<String>, container: Option<u64> },
}

impl Facts {
    /// The reference the link is read by: a decision's request's notable, else the button's.
    pub fn link_reference<'a>(&'a self, click: &'a Click) -> &'a str {
        match &self.request {
            Some(Some(request)) => request.get("dedupe_key").and_then(Value::as_str).unwrap_or(""),
            _ => click.reference_and_playbook().0,
        }
    }

    /// The playbook a click is about: the button's, else a decision's request's.
    pub fn playbook<'a>(&'a self, click: &'a Click) -> Option<&'a str> {
        click.reference_and_playbook().1.or_else(|| match &self.request {
            Some(Some(request)) => request.get("playbook").and_then(Value::as_str),
            _ => None,
        })
    }

    /// The notable's context as far as it is known (for the record and the receipt).
    pub fn context(&self, click: &Click) -> Context {
        match &self.link {
            Some(Some(context)) => context.clone(),
            _ if click.action.is_decision() && !matches!(self.request, Some(Some(_))) => {
                Context::default()
            }
            _ => Context { dedupe_key: self.link_reference(click).into(), ..Context::default() },
        }
    }

    /// The clicker's Splunk user, once known.
    pub fn splunk_user(&self) -> Option<&SplunkUser> {
        self.user.as_ref().and_then(|user| user.as_ref().ok())
    }
}

/// The next step of a click, from the facts gathered so far. Pure.
pub fn decide(click: &Click, facts: &Facts) -> Decision {
    use Decision::{Early, Need, Refuse};
    match &facts.click_claim {
        None => return Need(Fact::ClickClaim),
        Some(Claim::Taken(seen)) => return Decision::SeenBefore(seen_before(seen)),
        Some(Claim::Won) => {}
    }
    let request = match (&facts.request, click.action.is_decision()) {
        (_, false) => None,
        (None, true) => return Need(Fact::Request),
        (Some(None), true) => {
            return Early(Outcome::new(
                Verdict::Failed,
                "no containment request waits for this decision",
            ));
        }
        (Some(Some(request)), true) => Some(request),
    };
    let context = match &facts.link {
        None => return Need(Fact::Link(facts.link_reference(click).to_string())),
        Some(None) => {
            return Early(Outcome::new(
                Verdict::Failed,
                "the button names no notable StackFlow recorded (no stackflow_links record)",
            ));
        }
        Some(Some(context)) => context,
    };
    let user = match &facts.user {
        None => return Need(Fact::User),
        Some(Err(why)) => return Refuse(why.clone()),
        Some(Ok(user)) => user,
    };
    let needed = governance::capability_for(&click.action);
    if !user.can(needed) {
        return Refuse(format!("the Splunk user \"{}\" lacks the capability {needed}", user.name));
    }
    if let Some(why) =
        request.and_then(|request| playbook::self_approval(request, click, &user.name))
    {
        return Refuse(why);
    }
    // An approval finds the container first: nothing is recorded for a run that cannot be.
    let container = match (&click.action, &facts.container) {
        (Action::Approve, None) => return Need(Fact::Container),
        (Action::Approve, Some(Err(why))) => {
            let mut outcome = Outcome::new(Verdict::Failed, why.clone());
            outcome.playbook = facts.playbook(click).unwrap_or("").to_string();
            return Early(outcome);
        }
        (Action::Approve, Some(Ok(container))) => Some(*container),
        _ => None,
    };
    let (reference, _) = click.reference_and_playbook();
    let effect = claims::effect_key(&click.action, &context.event_id, reference);
    if let Some(key) = &effect {
        match &facts.effect_claim {
            None => return Need(Fact::EffectClaim(key.clone())),
            Some(Claim::Taken(holder)) => {
                let message = claims::already(holder, &click.action);
                return Early(Outcome::new(Verdict::Duplicate, message));
            }
            Some(Claim::Won) => {}
        }
    }
    Decision::Act { effect, container }
}

/// Why a click seen before is not acted on again — also when its first handling was
/// interrupted (`started`: a listener stopped mid-click, or another search head's listener is
/// on it) or is kept for later (`pending`).
fn seen_before(seen: &Map<String, Value>) -> String {
    let earlier = seen.get("outcome").and_then(Value::as_str).unwrap_or("");
    match seen.get("state").and_then(Value::as_str) {
        Some("done") => format!("seen before (outcome {earlier}); not acted on again"),
        Some("pending") => "seen before and queued; it will be acted on once".into(),
        _ => "seen before, its handling interrupted or still running; not acted on again (click \
              again if the change is missing)"
            .to_string(),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
