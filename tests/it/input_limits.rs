//! Hostile and odd input, end to end: the installed `stackflow_soar` action run as splunkd runs
//! it, fed a gzip bomb, oversized cells, rows and headers (`[limits]` in stackflow.conf), CSV
//! that ends inside a quoted field, a results "file" that is a FIFO, a directory or a device,
//! JSON arrays as the payload, an unreadable stackflow.conf and absurd `maxtime` values. Each
//! test checks the exit code of PRODUCT §4, the stderr line, and that SOAR received nothing
//! when the input was refused.

use crate::support::{Cell, Run, SplunkHome, gzip, one, payload, scheduler_sid};
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use stackflow_emulator::Emulator;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const STANZA: &str = "stackflow_soar";

/// A Splunk home whose `[soar:default]` points at a running emulator that also plays splunkd;
/// `extra_conf` is appended to local/stackflow.conf.
struct Setup {
    home: SplunkHome,
    emu: Emulator,
}

fn setup(extra_conf: &str) -> Setup {
    let home = SplunkHome::new();
    let emu = Emulator::start();
    let ca = home.root.join("soar-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 2\n\n{extra_conf}\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    Setup { home, emu }
}

impl Setup {
    /// Writes `gzipped` as the results file of `sid` and returns its path.
    fn write_raw(&self, sid: &str, gzipped: &[u8]) -> PathBuf {
        let path = self.home.dispatch_dir(sid).join("results.csv.gz");
        std::fs::write(&path, gzipped).unwrap();
        path
    }

    fn run_file(&self, sid: &str, results: &Path) -> Run {
        let payload = payload(&self.home, &self.emu.url(), sid, results, json!({}));
        self.home.run_alert(STANZA, &payload)
    }

    fn run_csv(&self, sid: &str, csv: &[u8]) -> Run {
        let path = self.write_raw(sid, &gzip(csv));
        self.run_file(sid, &path)
    }

    /// Runs with an address-space limit on the action (`ulimit -v`, inherited through the
    /// app's `.sh` wrapper and `exec`): an action that tries to hold a huge cell in memory
    /// fails to allocate instead of taking the test machine's memory.
    #[cfg(unix)]
    fn run_file_with_memory_cap(&self, sid: &str, results: &Path, kib: u64) -> Run {
        let (exe, args) = self.home.alert_command(STANZA);
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(&exe)
            .args(&args);
        let payload = payload(&self.home, &self.emu.url(), sid, results, json!({}));
        self.home.run_command(command, payload.to_string().as_bytes())
    }

    #[track_caller]
    fn assert_nothing_sent(&self) {
        let sent = self.emu.requests_to("/rest");
        assert!(sent.is_empty(), "SOAR received {} request(s)", sent.len());
    }
}

fn rows() -> Vec<Vec<(&'static str, Cell)>> {
    vec![vec![("src", one("10.0.0.1")), ("user", one("alice"))]]
}

/// The stderr line that reports a refused results file names the `[limits]` key and its value.
#[track_caller]
fn assert_limit_line(run: &Run, key: &str, value: &str) {
    run.assert_code(3).assert_levelled_stderr();
    assert!(
        run.stderr.lines().any(|line| {
            line.starts_with("ERROR bad results file")
                && line.contains(&format!("[limits] {key}"))
                && line.contains(value)
        }),
        "no ERROR line naming [limits] {key} = {value}; stderr:\n{}",
        run.stderr
    );
}

/// A results file of 3 MB that decompresses to one 3 GiB cell: gzip members may be
/// concatenated (RFC 1952 §2.2), so one compressed MiB of `A` is written 3,072 times.
fn write_gzip_bomb(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(&gzip(b"src,\"_raw\"\n10.0.0.1,\"")).unwrap();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![b'A'; 1 << 20]).unwrap();
    let mebibyte = encoder.finish().unwrap();
    for _ in 0..3 * 1024 {
        file.write_all(&mebibyte).unwrap();
    }
    file.write_all(&gzip(b"\"\n")).unwrap();
    file.flush().unwrap();
}

#[cfg(unix)]
#[test]
fn a_gzip_bomb_is_refused_within_the_field_limit_and_nothing_is_sent() {
    let s = setup("");
    let sid = scheduler_sid(101);
    let bomb = s.home.dispatch_dir(&sid).join("results.csv.gz");
    write_gzip_bomb(&bomb);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4_000_000);
    // 512 MiB of address space: far above what the limits allow the action to hold, far below
    // the 3 GiB cell.
    let run = s.run_file_with_memory_cap(&sid, &bomb, 512 * 1024);
    assert_limit_line(&run, "max_field_bytes", "16777216");
    run.assert_line("ERROR", "row 0");
    s.assert_nothing_sent();
}

#[test]
fn configured_limits_refuse_big_cells_rows_headers_and_files() {
    let s = setup(
        "[limits]\nmax_field_bytes = 1000\nmax_record_bytes = 2500\nmax_fields = 6\nmax_results_bytes = 20000\n",
    );
    let cell = |n: usize| "x".repeat(n);
    // Within every limit (values of exactly 1000 bytes, 6 columns): delivered.
    let fits =
        format!("a,b,c,__mv_a,__mv_b,__mv_c\n{},{},\"{}\",,,\n", cell(1000), cell(1000), cell(500));
    s.run_csv(&scheduler_sid(102), fits.as_bytes()).assert_code(0);
    assert_eq!(s.emu.soar_artifacts().len(), 1);
    s.emu.clear_requests();

    let cases: Vec<(String, &str, &str)> = vec![
        (format!("a,b\n1,{}\n", cell(1001)), "max_field_bytes", "1000"),
        // Quotes and doubled quotes count once, as the value Splunk meant.
        (format!("a,b\n1,\"{}\"\"\"\n", cell(1000)), "max_field_bytes", "1000"),
        (format!("a,b,c\n{},{},{}\n", cell(900), cell(900), cell(900)), "max_record_bytes", "2500"),
        ("a,b,c,d,e,f,g\n1,2,3,4,5,6,7\n".to_string(), "max_fields", "6"),
        // Rows of a header-only width still add up to the whole file's size.
        (format!("a\n{}", format!("{}\n", cell(999)).repeat(25)), "max_results_bytes", "20000"),
    ];
    for (n, (csv, key, value)) in cases.iter().enumerate() {
        let run = s.run_csv(&scheduler_sid(103 + n as u32), csv.as_bytes());
        assert_limit_line(&run, key, value);
    }
    s.assert_nothing_sent();
}

#[test]
fn an_invalid_limit_is_a_configuration_error() {
    let s = setup("[limits]\nmax_fields = lots\n");
    let sid = scheduler_sid(110);
    let results = s.home.write_results(&sid, &rows());
    let run = s.run_file(&sid, &results);
    run.assert_code(4).assert_levelled_stderr();
    run.assert_line("ERROR", "[limits] max_fields");
    s.assert_nothing_sent();
}

#[test]
fn a_file_that_ends_inside_a_quoted_field_is_malformed() {
    let s = setup("");
    // The row has as many fields as the header: only the missing closing quote is wrong.
    for (n, csv) in [
        &b"src,user\n10.0.0.1,\"alice\n"[..],
        &b"src,user\n10.0.0.1,\"alice"[..],
        &b"src,user\n\""[..],
    ]
    .iter()
    .enumerate()
    {
        let run = s.run_csv(&scheduler_sid(120 + n as u32), csv);
        run.assert_code(3).assert_levelled_stderr();
        run.assert_line("ERROR", "quoted field");
        run.assert_line("ERROR", "not closed");
    }
    s.assert_nothing_sent();
    // A closed quote at the very end, with or without a final newline, is fine.
    for (n, csv) in
        [&b"src,user\n10.0.0.1,\"alice\""[..], &b"src,user\n10.0.0.1,alice"[..]].iter().enumerate()
    {
        s.run_csv(&scheduler_sid(125 + n as u32), csv).assert_code(0);
    }
    assert_eq!(s.emu.soar_containers().len(), 2);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_results_file_is_refused_at_once() {
    let s = setup("");
    let sid = scheduler_sid(130);
    let fifo = s.home.dispatch_dir(&sid).join("results.csv.gz");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    // Nobody writes to it: reading it would wait until splunkd's maxtime.
    let run = s.run_file(&sid, &fifo);
    run.assert_code(3).assert_levelled_stderr();
    run.assert_line("ERROR", &fifo.display().to_string());
    run.assert_line("ERROR", "not a regular file (a FIFO)");
    s.assert_nothing_sent();
}

#[test]
fn a_directory_or_a_device_as_results_file_is_refused() {
    let s = setup("");
    let sid = scheduler_sid(131);
    let dir = s.home.dispatch_dir(&sid);
    let mut cases = vec![(dir.clone(), "not a regular file (a directory)")];
    if cfg!(unix) && Path::new("/dev/zero").exists() {
        cases.push((PathBuf::from("/dev/zero"), "not a regular file (a device)"));
    }
    for (path, why) in cases {
        let run = s.run_file(&sid, &path);
        run.assert_code(3).assert_levelled_stderr();
        run.assert_line("ERROR", &path.display().to_string());
        run.assert_line("ERROR", why);
    }
    s.assert_nothing_sent();
}

#[test]
fn a_json_array_payload_is_a_bad_payload() {
    let s = setup("");
    let sid = scheduler_sid(140);
    let results = s.home.write_results(&sid, &rows());
    let good = payload(&s.home, &s.emu.url(), &sid, &results, json!({}));
    let (exe, args) = s.home.alert_command(STANZA);
    for input in [json!([]), json!([good]), Value::Array(vec![json!(1), json!("x")])] {
        let mut command = Command::new(&exe);
        command.args(&args);
        let run = s.home.run_command(command, input.to_string().as_bytes());
        run.assert_code(2).assert_levelled_stderr();
        run.assert_line("ERROR", "JSON object");
    }
    s.assert_nothing_sent();
}

#[test]
fn an_unreadable_stackflow_conf_is_a_configuration_error_naming_the_file() {
    let s = setup("");
    let conf = s.home.app_dir().join("local").join("stackflow.conf");
    std::fs::remove_file(&conf).unwrap();
    // A directory where the file should be: unreadable even for root (mode 000 is not).
    std::fs::create_dir(&conf).unwrap();
    let sid = scheduler_sid(150);
    let results = s.home.write_results(&sid, &rows());
    let run = s.run_file(&sid, &results);
    run.assert_code(4).assert_levelled_stderr();
    run.assert_line("ERROR", &conf.display().to_string());
    s.assert_nothing_sent();
}

#[test]
fn an_absurd_maxtime_neither_panics_nor_stops_the_delivery() {
    let s = setup("");
    let local = s.home.app_dir().join("local").join("alert_actions.conf");
    let values =
        ["99999999999999999999s", "1e400", "1e300d", "18446744073709551615", "213503982334602d"];
    for (n, value) in values.iter().enumerate() {
        std::fs::write(&local, format!("[{STANZA}]\nmaxtime = {value}\n")).unwrap();
        let sid = scheduler_sid(160 + n as u32);
        let results = s.home.write_results(&sid, &rows());
        let run = s.run_file(&sid, &results);
        run.assert_code(0).assert_levelled_stderr();
        assert!(!run.stderr.contains("FATAL"), "maxtime = {value}:\n{}", run.stderr);
    }
    assert_eq!(s.emu.soar_containers().len(), values.len());
}
