//! Unit tests of the flush's audit trail: many searches, bounded state, every line kept.

use super::*;
use crate::delivery::deliverer::Final;
use crate::item::{DeliveryItem, ItemContext, TargetKind};
use crate::net::Delivered;
use crate::splunk::conf::ConfFile;
use std::path::Path;
use std::time::Duration;

fn temp_home(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("stackflow-drain-unit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn report(sid: &str, n: usize) -> DeliveryReport {
    DeliveryReport {
        item: DeliveryItem {
            target: TargetKind::Soar,
            account: "default".into(),
            dedupe_key: format!("{sid}:{n}"),
            request: DeliveryItem::raw_from_value(&serde_json::Value::Null),
            context: ItemContext {
                action: "stackflow_soar".into(),
                sid: sid.into(),
                rid: n.to_string(),
                search_name: format!("search of {sid}"),
                ..ItemContext::default()
            },
            list_index: None,
        },
        result: Final::Delivered,
        attempts: 1,
        duration: Duration::from_millis(3),
        delivered: Some(Delivered {
            remote_id: Some(n.to_string()),
            remote_url: None,
            duplicate: false,
            details: Default::default(),
            message: "created".into(),
        }),
        message: "delivered by spool flush: created".into(),
    }
}

fn stash_lines(home: &Path) -> usize {
    let dir = home.join("var").join("spool").join("splunk");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
                .map(|text| text.lines().count().saturating_sub(1)) // less the header
                .sum()
        })
        .unwrap_or(0)
}

fn log_text(home: &Path) -> String {
    let path = home.join("var").join("log").join("splunk").join("stackflow_soar_modalert.log");
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn many_searches_keep_bounded_state_and_every_line() {
    let home = temp_home("many");
    let settings = Settings::from_conf(ConfFile::default(), None, Some(home.clone()));
    let searches = OPEN_SEARCHES + 300;
    let mut audit = DrainAudit::new(&settings, None, 500);
    for n in 0..searches {
        audit.record(&report(&format!("sid{n}"), n));
        assert!(audit.open_searches() <= OPEN_SEARCHES);
    }
    audit.finish();
    assert_eq!(stash_lines(&home), searches, "one receipt per item");
    let log = log_text(&home);
    assert_eq!(log.matches("Delivered to SOAR").count(), searches);
    // Each search leaves its closing line exactly once, naming its own sid.
    assert_eq!(log.matches("Successfully created splunk events").count(), searches);
    let line = log
        .lines()
        .find(|line| line.contains("Successfully created") && line.contains("sid=\"sid7\""))
        .unwrap_or_else(|| panic!("no closing line of sid7 in {log}"));
    assert!(line.contains("event_count=\"1\""), "{line}");
    // Receipts went into a few stash files, not one per search.
    let files = std::fs::read_dir(home.join("var").join("spool").join("splunk")).unwrap().count();
    assert_eq!(files, searches.div_ceil(500));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_search_with_several_items_counts_them_together() {
    let home = temp_home("several");
    let settings = Settings::from_conf(ConfFile::default(), None, Some(home.clone()));
    let mut audit = DrainAudit::new(&settings, None, 500);
    for n in 0..5 {
        audit.record(&report("sidA", n));
        audit.record(&report("sidB", n));
    }
    assert_eq!(audit.open_searches(), 2);
    drop(audit);
    let log = log_text(&home);
    let closing: Vec<&str> =
        log.lines().filter(|line| line.contains("Successfully created")).collect();
    assert_eq!(closing.len(), 2, "{log}");
    assert!(closing.iter().all(|line| line.contains("event_count=\"5\"")), "{closing:?}");
    assert_eq!(stash_lines(&home), 10);
    let _ = std::fs::remove_dir_all(&home);
}
