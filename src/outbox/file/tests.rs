//! Unit tests of the file store.

use super::*;
use crate::item::{DeliveryItem, ItemContext, TargetKind, item_id};
use crate::net::RejectClass;
use crate::outbox::record::RECORD_VERSION;

pub(crate) fn temp_root(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "stackflow-spool-{tag}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&root);
    root
}

pub(crate) fn item(key: &str) -> DeliveryItem {
    DeliveryItem {
        target: TargetKind::Soar,
        account: "default".into(),
        dedupe_key: key.into(),
        request: DeliveryItem::raw_from_value(&serde_json::json!({"container": {"name": key}})),
        context: ItemContext { action: "stackflow_soar".into(), ..ItemContext::default() },
        list_index: None,
    }
}

pub(crate) fn record(key: &str) -> SpoolRecord {
    SpoolRecord {
        version: RECORD_VERSION,
        id: item_id(key),
        item: item(key),
        attempts: 1,
        first_attempt_unix: now_unix(),
        last_attempt_unix: now_unix(),
        next_attempt_unix: now_unix(),
        last_error: "HTTP 503".into(),
        reject_class: None,
        flushes: 0,
        remote_hold_unix: 0.0,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = list_dir(dir).unwrap().into_iter().map(|(_, name)| name).collect();
    names.sort();
    names
}

#[test]
fn a_claim_is_exclusive_and_finishing_leaves_no_claim() {
    let root = temp_root("claim");
    let spool = FileStore::new(&root);
    let id = item_id("k1");
    spool.put_pending(&record("k1")).unwrap();
    let claim = spool.claim(&id).unwrap().unwrap().unwrap();
    assert!(spool.claim(&id).unwrap().is_none(), "claimed twice");
    assert_eq!(names(&spool.inflight_dir()), vec![format!("{id}.{}.json", std::process::id())]);
    let mut next = claim.record.clone();
    next.attempts += 1;
    spool.finish_retry(claim, &next).unwrap();
    assert!(names(&spool.inflight_dir()).is_empty());
    assert_eq!(spool.peek_pending(&id).unwrap().unwrap().attempts, 2);
    let claim = spool.claim(&id).unwrap().unwrap().unwrap();
    spool.finish_dead(claim, &next).unwrap();
    assert!(names(&spool.pending_dir()).is_empty());
    assert_eq!(names(&spool.dead_dir()), vec![format!("{id}.json")]);
    assert!(names(&spool.tmp_dir()).is_empty());
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn recovery_adopts_claims_of_dead_flushers_and_removes_their_temp_files() {
    let root = temp_root("recover");
    let spool = FileStore::new(&root);
    fs::create_dir_all(spool.inflight_dir()).unwrap();
    fs::create_dir_all(spool.tmp_dir()).unwrap();
    // pid u32::MAX - 1 cannot exist (Linux pid_max ≤ 2^22).
    let dead = u32::MAX - 1;
    let orphan = record("orphan");
    fs::write(
        spool.inflight_dir().join(format!("{}.{dead}.json", orphan.id)),
        serde_json::to_vec(&orphan).unwrap(),
    )
    .unwrap();
    // A claim whose item was already put back to pending by the dead flusher.
    let both = record("both");
    spool.put_pending(&both).unwrap();
    fs::write(
        spool.inflight_dir().join(format!("{}.{dead}.json", both.id)),
        serde_json::to_vec(&both).unwrap(),
    )
    .unwrap();
    // A live process's claim and temp file are left alone.
    let live = record("live");
    let parent = std::os::unix::process::parent_id();
    let live_claim = spool.inflight_dir().join(format!("{}.{parent}.json", live.id));
    fs::write(&live_claim, serde_json::to_vec(&live).unwrap()).unwrap();
    let live_tmp = spool.tmp_dir().join(format!("x.json.{parent}.0.tmp"));
    fs::write(&live_tmp, b"{").unwrap();
    let dead_tmp = spool.tmp_dir().join(format!("y.json.{dead}.3.tmp"));
    fs::write(&dead_tmp, b"{\"trunc").unwrap();

    let recovery = spool.recover().unwrap();
    assert_eq!(recovery.removed_tmp, vec![dead_tmp]);
    assert_eq!(recovery.superseded.len(), 1);
    assert_eq!(recovery.adopted.len(), 1);
    assert!(live_claim.exists() && live_tmp.exists());
    let adopted = spool.open_adopted(&recovery.adopted[0]).unwrap().unwrap();
    assert_eq!(adopted.record.item.dedupe_key, "orphan");
    spool.finish_delivered(adopted).unwrap();
    assert_eq!(names(&spool.inflight_dir()), vec![format!("{}.{parent}.json", live.id)]);
    assert_eq!(names(&spool.pending_dir()), vec![format!("{}.json", both.id)]);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn a_corrupt_item_is_quarantined_on_claim() {
    let root = temp_root("corrupt");
    let spool = FileStore::new(&root);
    fs::create_dir_all(spool.pending_dir()).unwrap();
    let id = item_id("torn");
    let full = serde_json::to_vec(&record("torn")).unwrap();
    fs::write(spool.pending_dir().join(format!("{id}.json")), &full[..full.len() / 2]).unwrap();
    let quarantined = spool.claim(&id).unwrap().unwrap().unwrap_err();
    assert!(quarantined.problem.contains("not a spool item"), "{}", quarantined.problem);
    assert_eq!(quarantined.moved_to, spool.quarantine_dir().join(format!("{id}.json")));
    assert!(names(&spool.pending_dir()).is_empty() && names(&spool.inflight_dir()).is_empty());
    let listed = spool.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, ItemState::Quarantine);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn requeue_and_purge_work_on_dead_letters() {
    let root = temp_root("dead");
    let spool = FileStore::new(&root);
    let mut old = record("old");
    old.reject_class = Some(RejectClass::Remote);
    old.last_attempt_unix = now_unix() - 10.0 * 86400.0;
    spool.put_dead(&old).unwrap();
    let mut fresh = record("fresh");
    fresh.reject_class = Some(RejectClass::Credentials);
    fresh.flushes = 4;
    spool.put_dead(&fresh).unwrap();
    let removed = spool.purge(Duration::from_secs(7 * 86400)).unwrap();
    assert_eq!(removed, vec![spool.dead_dir().join(format!("{}.json", old.id))]);
    let (done, missing) = spool.requeue(&[fresh.id.clone(), "nope".into()]).unwrap();
    assert_eq!(done, vec![fresh.id.clone()]);
    assert_eq!(missing, vec!["nope".to_string()]);
    let back = spool.peek_pending(&fresh.id).unwrap().unwrap();
    assert_eq!((back.reject_class, back.flushes), (None, 0));
    assert!(back.last_error.contains("HTTP 503"));
    assert!(names(&spool.dead_dir()).is_empty());
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn an_unusable_spool_is_an_error_naming_the_path() {
    let root = temp_root("unusable");
    fs::create_dir_all(root.parent().unwrap()).unwrap();
    fs::write(&root, b"a regular file").unwrap();
    let spool = FileStore::new(root.join("spool"));
    let error = spool.put_pending(&record("k")).unwrap_err();
    assert!(error.to_string().contains(&root.display().to_string()), "{error}");
    assert!(spool.check_usable().is_err());
    let _ = fs::remove_file(&root);
}

#[cfg(unix)]
#[test]
fn write_ahead_claims_reuse_one_file_and_leave_nothing_behind() {
    use std::os::unix::fs::MetadataExt;
    let root = temp_root("write-ahead");
    let spool = FileStore::new(&root);
    let mut inodes = Vec::new();
    // Each shorter than the one before: the reused file must not keep the previous tail.
    for key in ["batch:0 with a longer key than the others", "batch:1", "b:2"] {
        let owned = record(key);
        let view = SpoolRecordView {
            version: owned.version,
            id: &owned.id,
            item: &owned.item,
            attempts: 0,
            first_attempt_unix: owned.first_attempt_unix,
            last_attempt_unix: owned.last_attempt_unix,
            next_attempt_unix: owned.next_attempt_unix,
            last_error: "the alert run sending it was interrupted",
            flushes: 0,
        };
        let claim = spool.write_ahead(&view).unwrap();
        // What a flusher would adopt if this process died now: the whole record.
        assert_eq!(
            names(&spool.inflight_dir()),
            vec![format!("{}.{}.json", owned.id, std::process::id())]
        );
        let read: SpoolRecord = serde_json::from_slice(&fs::read(&claim.path).unwrap()).unwrap();
        assert_eq!(read.item, owned.item);
        inodes.push(fs::metadata(&claim.path).unwrap().ino());
        spool.drop_write_ahead(claim);
        assert!(
            names(&spool.inflight_dir()).is_empty(),
            "a dropped claim leaves inflight/ at once"
        );
        assert_eq!(names(&spool.tmp_dir()).len(), 1, "kept for the next claim");
    }
    assert!(inodes.windows(2).all(|pair| pair[0] == pair[1]), "one file, overwritten: {inodes:?}");
    drop(spool);
    assert!(names(&root.join("tmp")).is_empty(), "the kept file goes with the spool");
    let _ = fs::remove_dir_all(&root);
}
