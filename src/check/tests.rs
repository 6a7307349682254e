//! Unit tests of `check`.

use super::*;
use std::path::PathBuf;

fn settings(text: &str, home: &Path) -> Settings {
    Settings::from_conf(ConfFile::parse_str(text), None, Some(home.to_path_buf()))
}

fn temp_home(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("stackflow-check-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn line<'a>(report: &'a Report, what: &str) -> &'a Line {
    report
        .lines
        .iter()
        .find(|line| line.what == what)
        .unwrap_or_else(|| panic!("no line {what}: {report:?}"))
}

#[test]
fn the_unreachable_splunkd_fails_without_network() {
    let splunkd = unreachable_splunkd().expect("built");
    match splunkd.secret("soar.default") {
        Err(Error::Unavailable(_)) => {}
        other => panic!("{:?}", other.map(|_| "a secret")),
    }
}

#[test]
fn without_a_session_key_settings_are_still_validated() {
    let home = temp_home("nokey");
    let conf = "[soar:default]\nurl = https://soar.example.com\n\n\
                [soar:lab]\nurl = https://lab.example.com\nverify_ssl = maybe\n\n\
                [slack:default]\napi_url = https://slack.com/api\n";
    let mut report = Report::default();
    check_settings(&mut report, &settings(conf, &home), None, String::new());
    let splunkd = line(&report, "[splunkd]");
    assert_eq!((splunkd.status, splunkd.code), (Status::Fail, ExitCode::Credentials));
    assert!(splunkd.detail.contains("no splunkd session key"), "{}", splunkd.detail);
    let soar = line(&report, "soar:default");
    assert_eq!((soar.status, soar.code), (Status::Fail, ExitCode::Credentials));
    assert!(
        soar.detail.contains("settings valid; secret \"soar.default\" not read"),
        "{}",
        soar.detail
    );
    let lab = line(&report, "soar:lab");
    assert_eq!(lab.code, ExitCode::Configuration);
    assert!(
        lab.detail.contains("[soar:lab] verify_ssl: \"maybe\" is not a boolean"),
        "{}",
        lab.detail
    );
    assert_eq!(report.exit_code(), ExitCode::Configuration);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn the_spool_dir_must_be_writable() {
    let home = temp_home("spool");
    let mut report = Report::default();
    check_delivery(&mut report, &settings("", &home));
    assert_eq!(line(&report, "[delivery]").status, Status::Ok);
    assert!(home.join("var/spool/stackflow").is_dir());
    assert_eq!(std::fs::read_dir(home.join("var/spool/stackflow")).unwrap().count(), 0);
    let blocker = home.join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let mut report = Report::default();
    let conf = format!("[delivery]\nspool_dir = {}/sub\n", blocker.display());
    check_delivery(&mut report, &settings(&conf, &home));
    let delivery = line(&report, "[delivery]");
    assert_eq!((delivery.status, delivery.code), (Status::Fail, ExitCode::Configuration));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn receipts_index_names_are_checked_and_unknown_keys_warned() {
    let home = temp_home("keys");
    let mut report = Report::default();
    let conf = "[receipts]\nindex = Bad Index\n[soar:x]\nverfy_ssl = false\n[sour:y]\nurl = z\n";
    let settings = settings(conf, &home);
    check_receipts(&mut report, &settings);
    check_known_keys(&mut report, &settings);
    assert_eq!(line(&report, "[receipts]").code, ExitCode::Configuration);
    assert!(line(&report, "[soar:x]").detail.contains("verfy_ssl"));
    assert_eq!(line(&report, "[sour:y]").status, Status::Warn);
    assert_eq!(report.exit_code(), ExitCode::Configuration);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn short_reasons_keep_urls_whole() {
    assert_eq!(
        short_reason(
            "no splunkd session key on stdin: secrets cannot be read at https://127.0.0.1:8089 (pipe one)"
        ),
        "no splunkd session key on stdin: secrets cannot be read at https://127.0.0.1:8089 (see [splunkd])"
    );
}

#[test]
fn the_table_aligns_and_the_worst_failure_wins() {
    let mut report = Report::default();
    report.ok("soar:default", "fine");
    report.warn("[receipts]", "hmm");
    report.fail("slack:default", "down", ExitCode::Deferred);
    report.fail("stackflow:default api", "refused", ExitCode::Credentials);
    let text = report.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "OK    soar:default           fine");
    assert_eq!(lines[1], "WARN  [receipts]             hmm");
    assert_eq!(lines[2], "FAIL  slack:default          down");
    assert_eq!(lines[4], "4 checks: 1 OK, 1 WARN, 2 FAIL (exit 5)");
    assert_eq!(report.exit_code(), ExitCode::Credentials);
}
