//! Unit tests of `modalert`.

use super::*;

/// One whole line (without the line end), as `ModAlertLog` writes it at `time`.
fn format_line(
    time: SystemTime,
    level: Level,
    invocation: &Invocation,
    signature: &str,
    status: &str,
    row: Option<&RowIds>,
    extra: &[(&str, String)],
) -> String {
    let mut line = String::new();
    LineTemplate::new(level, invocation, signature, status, extra).render_into(
        &mut line,
        &asctime(time),
        row,
    );
    line
}
use std::time::Duration;

fn invocation() -> Invocation {
    Invocation {
        worker: "sh1".into(),
        action_name: "stackflow_soar".into(),
        search_name: "Threat - Brute Force - Rule".into(),
        sid: "scheduler__admin__SA__RMD5abc_at_1714557600_42".into(),
        sid_snapshot: String::new(),
        app: "SplunkEnterpriseSecuritySuite".into(),
        user: "admin".into(),
        digest_mode: 1,
        action_mode: "saved",
    }
}

#[test]
fn asctime_is_utc_with_milliseconds() {
    let time = UNIX_EPOCH + Duration::from_millis(1_714_557_600_123);
    assert_eq!(asctime(time), "2024-05-01 10:00:00,123+0000");
    assert_eq!(asctime(UNIX_EPOCH), "1970-01-01 00:00:00,000+0000");
    // a leap day
    assert_eq!(
        asctime(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29 00:00:00,000+0000"
    );
}

#[test]
fn lines_follow_the_reference_example() {
    let time = UNIX_EPOCH + Duration::from_millis(1_714_557_600_123);
    let row = RowIds { rid: "0".into(), ..RowIds::default() };
    let line = format_line(
        time,
        Level::Info,
        &invocation(),
        "Invoking modular action",
        "",
        Some(&row),
        &[],
    );
    assert_eq!(
        line,
        "2024-05-01 10:00:00,123+0000 INFO sendmodaction - worker=\"sh1\" signature=\"Invoking modular action\" \
         action_name=\"stackflow_soar\" search_name=\"Threat - Brute Force - Rule\" \
         sid=\"scheduler__admin__SA__RMD5abc_at_1714557600_42\" rid=\"0\" app=\"SplunkEnterpriseSecuritySuite\" \
         user=\"admin\" digest_mode=\"1\" action_mode=\"saved\""
    );
}

#[test]
fn extra_keys_are_sorted_deduplicated_and_empty_ones_dropped() {
    let row = RowIds { rid: "3".into(), orig_sid: "o".into(), orig_rid: "9".into() };
    let line = format_line(
        UNIX_EPOCH,
        Level::Error,
        &invocation(),
        "sig",
        "failure",
        Some(&row),
        &[
            ("zeta", "1".into()),
            ("alpha", "a \"quoted\" \\ value\nnext".into()),
            ("empty", String::new()),
            ("sid", "not allowed".into()),
        ],
    );
    assert!(line.starts_with("1970-01-01 00:00:00,000+0000 ERROR sendmodaction - worker=\"sh1\""));
    assert!(line.ends_with(
        "action_status=\"failure\" alpha=\"a \\\"quoted\\\" \\\\ value\\nnext\" zeta=\"1\""
    ));
    assert!(line.contains(" orig_sid=\"o\" rid=\"3\" orig_rid=\"9\" "));
    assert!(!line.contains("empty="));
    assert_eq!(line.matches("sid=\"").count(), 2); // sid and orig_sid only
}

#[test]
fn realtime_sids_lose_the_snapshot_which_goes_to_the_rid() {
    assert_eq!(
        split_realtime_sid("rt_scheduler__admin__app__RMD5910195c23186c103_at_1425692383_0.7"),
        ("rt_scheduler__admin__app__RMD5910195c23186c103_at_1425692383_0".into(), "7".into())
    );
    // search head cluster: the _<guid> suffix stays on the sid (CIM-665)
    assert_eq!(
        split_realtime_sid("rt_scheduler__admin__app__RMD5x_at_1425692383_3.12_6C1AB3D8-F1D2"),
        ("rt_scheduler__admin__app__RMD5x_at_1425692383_3_6C1AB3D8-F1D2".into(), "12".into())
    );
    assert_eq!(split_realtime_sid("1465593470.1228"), ("1465593470.1228".into(), String::new()));
    assert_eq!(
        split_realtime_sid("scheduler__admin__s__RMD5_at_1_2"),
        ("scheduler__admin__s__RMD5_at_1_2".into(), String::new())
    );
    let context = AlertContext {
        action: "stackflow_soar".into(),
        sid: "rt_scheduler__admin__app__RMD5x_at_1425692383_0.4".into(),
        ..AlertContext::default()
    };
    let invocation = Invocation::new(&context, "w".into());
    assert_eq!(invocation.row_ids("2", "", "").rid, "2.4");
    let mut ids = invocation.row_ids("9", "a", "b");
    invocation.fill_row_ids(&mut ids, "2", "", "");
    assert_eq!(ids, RowIds { rid: "2.4".into(), ..RowIds::default() });
    assert_eq!(invocation.action_mode, "saved");
}

#[test]
fn mode_digest_and_action_name_override() {
    let mut context = AlertContext {
        action: "stackflow_soar".into(),
        sid: "1465593470.1228".into(),
        ..AlertContext::default()
    };
    let invocation = Invocation::new(&context, String::new());
    assert_eq!((invocation.action_mode, invocation.digest_mode), ("adhoc", 1));
    assert_eq!(invocation.action_name, "stackflow_soar");
    context.result_id = Some("5".into());
    context.params.insert("action_name".into(), "soar_forward".into());
    let invocation = Invocation::new(&context, String::new());
    assert_eq!(invocation.digest_mode, 0);
    assert_eq!(invocation.action_name, "soar_forward");
}

#[test]
fn worker_comes_from_server_conf_else_the_payload_host() {
    let home = std::env::temp_dir().join(format!("stackflow-worker-{}", std::process::id()));
    let local = home.join("etc/system/local");
    std::fs::create_dir_all(&local).unwrap();
    assert_eq!(worker_name(Some(&home), "sh.example.com:8089"), "sh.example.com");
    std::fs::write(local.join("server.conf"), "[general]\nserverName = sh1\n").unwrap();
    assert_eq!(worker_name(Some(&home), "other"), "sh1");
    std::fs::remove_dir_all(&home).unwrap();
    assert_eq!(worker_name(None, "h"), "h");
}

#[test]
fn the_file_rotates_at_the_limit_and_keeps_five_backups() {
    let dir = std::env::temp_dir().join(format!("stackflow-rotate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("x_modalert.log");
    let mut file = RotatingFile::new(path.clone(), 100, BACKUP_COUNT);
    for n in 0..40 {
        file.write_line(&format!("{n:039}")).unwrap(); // 40 bytes a line: 2 lines a file
    }
    file.flush().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&path).lines().count(), 2);
    assert!(read(&path).ends_with(&format!("{:039}\n", 39)));
    for n in 1..=5 {
        let backup = dir.join(format!("x_modalert.log.{n}"));
        assert_eq!(read(&backup).lines().count(), 2, "backup {n}");
        assert!(std::fs::metadata(&backup).unwrap().len() < 100);
    }
    assert!(!dir.join("x_modalert.log.6").exists());
    assert!(read(&dir.join("x_modalert.log.1")).starts_with(&format!("{:039}", 36)));
    std::fs::remove_dir_all(&dir).unwrap();
}
