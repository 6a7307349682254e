//! ES asset & identity context (PRODUCT §17) end to end through the installed
//! `stackflow_slack` action: the fields are shown (escaped) in the message's context block,
//! the template summary names the critical asset / watch-listed identity first, and a route on
//! `field.dest_priority = critical` sends the notable to its channel.

use crate::slack::{posted, run_slack, setup};
use crate::support::*;
use crate::triage::brute_force_notable;
use serde_json::json;

fn critical_notable() -> Vec<(&'static str, Cell)> {
    let mut row = brute_force_notable();
    row.extend([
        ("dest_priority", one("critical")),
        ("dest_category", one("pci")),
        ("dest_bunit", one("payments <EU>")),
        ("dest_owner", one("alice")),
        ("user_priority", one("high")),
        ("user_watchlist", one("true")),
    ]);
    row
}

#[test]
fn a_critical_asset_is_shown_named_first_and_routed() {
    let (home, emulator) = setup();
    let conf = home.app_dir().join("local/stackflow.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\n[route:10_critical_assets]\nfield.dest_priority = critical\nchannel = #soc-crown-jewels\n");
    std::fs::write(&conf, text).unwrap();
    let mut plain = brute_force_notable();
    plain.retain(|(name, _)| *name != "event_id");
    plain.push(("event_id", one("BF-2")));
    plain.push(("dest_priority", one("low")));
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(41),
        &[critical_notable(), plain],
        json!({"mode": "row"}),
    );
    run.assert_code(0);
    let bodies = posted(&emulator);
    let channels: Vec<&str> = bodies.iter().map(|b| b["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["#soc-crown-jewels", "#soc-alerts"], "routed by dest_priority");

    let context = &bodies[0]["blocks"][1];
    assert_eq!(context["type"], "context");
    let assets = context["elements"][1]["text"].as_str().expect("an asset & identity element");
    assert!(assets.contains("dest_priority=critical"), "{assets}");
    assert!(assets.contains("dest_owner=alice"), "{assets}");
    assert!(assets.contains("user_watchlist=true"), "{assets}");
    assert!(assets.contains("payments &lt;EU&gt;"), "escaped: {assets}");
    assert!(!assets.contains("<EU>"), "escaped: {assets}");

    let summary = bodies[0]["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        summary.starts_with("Critical asset vpn-gw-01 (payments &lt;EU&gt;, pci, owner alice); watch-listed identity svc_backup."),
        "{summary}"
    );
    let other = bodies[1]["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(other.starts_with("Brute Force Access Behavior Detected"), "no lead: {other}");
    assert!(
        bodies[1]["blocks"][1]["elements"][1]["text"]
            .as_str()
            .unwrap()
            .contains("dest_priority=low")
    );
}
