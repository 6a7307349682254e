//! `decide`: each fact asked for in order, and each way a click ends.

use super::*;
use serde_json::json;

fn click(action_id: &str, value: &str) -> Click {
    let payload = json!({"type": "block_actions", "user": {"id": "U1", "username": "alice"},
        "container": {"channel_id": "C1", "message_ts": "1.0"},
        "actions": [{"action_id": action_id, "value": value, "action_ts": "2.0"}]});
    Click::parse(&payload).unwrap()
}

fn user(capabilities: &[&str]) -> SplunkUser {
    SplunkUser {
        name: "alice".into(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        ..SplunkUser::default()
    }
}

fn linked() -> Option<Option<Context>> {
    Some(Some(Context { dedupe_key: "k1".into(), event_id: "E1".into(), ..Context::default() }))
}

#[test]
fn an_ack_asks_for_each_fact_in_turn_then_acts_once() {
    let ack = click("stackflow_ack", "k1");
    let mut facts = Facts::default();
    assert_eq!(decide(&ack, &facts), Decision::Need(Fact::ClickClaim));
    facts.click_claim = Some(Claim::Won);
    assert_eq!(decide(&ack, &facts), Decision::Need(Fact::Link("k1".into())));
    facts.link = linked();
    assert_eq!(decide(&ack, &facts), Decision::Need(Fact::User));
    facts.user = Some(Ok(user(&["stackflow_respond"])));
    assert_eq!(decide(&ack, &facts), Decision::Need(Fact::EffectClaim("ack:E1".into())));
    facts.effect_claim = Some(Claim::Won);
    assert_eq!(
        decide(&ack, &facts),
        Decision::Act { effect: Some("ack:E1".into()), container: None }
    );
    let holder = json!({"verb": "acknowledged", "splunk_user": "bob"});
    facts.effect_claim = Some(Claim::Taken(holder.as_object().unwrap().clone()));
    let Decision::Early(outcome) = decide(&ack, &facts) else { panic!() };
    assert_eq!(
        (outcome.verdict, outcome.message.as_str()),
        (Verdict::Duplicate, "already acknowledged by bob")
    );
}

#[test]
fn refusals_and_failures_end_before_any_effect() {
    let ack = click("stackflow_ack", "k1");
    let mut facts = Facts { click_claim: Some(Claim::Won), ..Facts::default() };
    facts.link = Some(None);
    assert!(matches!(decide(&ack, &facts), Decision::Early(o) if o.verdict == Verdict::Failed));
    facts.link = linked();
    facts.user = Some(Err("not mapped".into()));
    assert_eq!(decide(&ack, &facts), Decision::Refuse("not mapped".into()));
    facts.user = Some(Ok(user(&[])));
    assert!(
        matches!(decide(&ack, &facts), Decision::Refuse(why) if why.contains("stackflow_respond"))
    );
    let seen = json!({"state": "done", "outcome": "done"});
    facts.click_claim = Some(Claim::Taken(seen.as_object().unwrap().clone()));
    assert!(
        matches!(decide(&ack, &facts), Decision::SeenBefore(why) if why.contains("outcome done"))
    );
}

#[test]
fn an_approval_needs_its_request_a_second_person_and_a_container() {
    let approve = click("stackflow_approve", "req1");
    let mut facts = Facts { click_claim: Some(Claim::Won), ..Facts::default() };
    assert_eq!(decide(&approve, &facts), Decision::Need(Fact::Request));
    facts.request = Some(None);
    assert!(matches!(decide(&approve, &facts), Decision::Early(o) if o.verdict == Verdict::Failed));
    let request = json!({"dedupe_key": "k1", "playbook": "block_ip", "slack_user_id": "U9",
                         "splunk_user": "carol"});
    facts.request = Some(Some(request.as_object().unwrap().clone()));
    assert_eq!(decide(&approve, &facts), Decision::Need(Fact::Link("k1".into())));
    assert_eq!(facts.playbook(&approve), Some("block_ip"));
    facts.link = linked();
    facts.user = Some(Ok(user(&["stackflow_approve"])));
    assert_eq!(decide(&approve, &facts), Decision::Need(Fact::Container));
    facts.container = Some(Err("no container".into()));
    let Decision::Early(outcome) = decide(&approve, &facts) else { panic!() };
    assert_eq!(outcome.playbook, "block_ip");
    facts.container = Some(Ok(7));
    assert_eq!(decide(&approve, &facts), Decision::Need(Fact::EffectClaim("decision:req1".into())));
    facts.effect_claim = Some(Claim::Won);
    assert_eq!(
        decide(&approve, &facts),
        Decision::Act { effect: Some("decision:req1".into()), container: Some(7) }
    );
    let mut own = request.as_object().unwrap().clone();
    own.insert("splunk_user".into(), json!("alice"));
    facts.request = Some(Some(own));
    assert!(matches!(decide(&approve, &facts), Decision::Refuse(_)));
}
