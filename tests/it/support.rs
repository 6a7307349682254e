//! Test harness: a throwaway `$SPLUNK_HOME` with the app installed, Splunk-style results files,
//! alert payloads, and a runner that resolves and starts the action's executable the way
//! splunkd does (alert_actions.conf → `<app>/<platform>/bin/<stanza>` → `<app>/bin/<stanza>[.sh]`).
//! Every run goes through one hook (`Run::from_output`) that fails the test on a crash (a
//! signal, a panic message) or an internal error (exit 9) the test did not ask for.
#![allow(dead_code)]

use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use stackflow::splunk::conf::ConfFile;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const SESSION_KEY: &str = "test-session-key";
/// The Splunk platform folder of the machine running the tests.
pub const PLATFORM_DIR: &str = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
    "linux_x86_64"
} else if cfg!(target_os = "macos") {
    "darwin_x86_64"
} else if cfg!(windows) {
    "windows_x86_64"
} else {
    "linux_aarch64"
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary Splunk installation holding the app.
pub struct SplunkHome {
    pub root: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl SplunkHome {
    /// Installs `app/stackflow` and the freshly built binary into a new temporary SPLUNK_HOME.
    pub fn new() -> SplunkHome {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!(
            "stackflow it {} {n} {}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let home = SplunkHome { root };
        let app = home.app_dir();
        copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("app").join("stackflow"), &app);
        let bin_dir = app.join(PLATFORM_DIR).join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let exe_name = if cfg!(windows) { "stackflow.exe" } else { "stackflow" };
        // A hard link, not a copy: a copy holds a write descriptor that a child forked by
        // another test thread at that moment inherits until its exec, and running the binary
        // in that window fails with ETXTBSY ("Text file busy").
        let installed = bin_dir.join(exe_name);
        if std::fs::hard_link(env!("CARGO_BIN_EXE_stackflow"), &installed).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_stackflow"), &installed).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for dir in [app.join("bin"), bin_dir.clone()] {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for entry in entries.flatten() {
                        std::fs::set_permissions(
                            entry.path(),
                            std::fs::Permissions::from_mode(0o755),
                        )
                        .unwrap();
                    }
                }
            }
        }
        std::fs::create_dir_all(home.root.join("var/log/splunk")).unwrap();
        std::fs::create_dir_all(home.root.join("var/spool/splunk")).unwrap();
        home
    }

    /// A new installation that trusts `emulator`'s CA; the CA file's path is returned for
    /// `ca_file` settings.
    pub fn trusting(emulator: &stackflow_emulator::Emulator) -> (SplunkHome, PathBuf) {
        let home = SplunkHome::new();
        let ca = home.root.join("emulator-ca.pem");
        emulator.write_ca(&ca).unwrap();
        (home, ca)
    }

    /// Every receipt line (JSON after the `***SPLUNK***` header) in the stash files written so far.
    pub fn receipts(&self) -> Vec<Value> {
        self.stash_lines(".stash_stackflow").into_iter().map(|(_, line)| line).collect()
    }

    /// Every `(header, line)` of the stash files whose name ends with `suffix`.
    pub fn stash_lines(&self, suffix: &str) -> Vec<(String, Value)> {
        let mut receipts = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("var/spool/splunk")) else {
            return receipts;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().ends_with(suffix) {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let header = text.lines().next().unwrap_or_default().to_string();
            for line in text.lines().skip(1) {
                receipts.push((header.clone(), serde_json::from_str(line).unwrap()));
            }
        }
        receipts
    }

    pub fn app_dir(&self) -> PathBuf {
        self.root.join("etc").join("apps").join("stackflow")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("var/spool/stackflow")
    }

    /// Writes `local/stackflow.conf` (the admin's layer).
    pub fn write_local_conf(&self, text: &str) {
        let local = self.app_dir().join("local");
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(local.join("stackflow.conf"), text).unwrap();
    }

    /// Appends to `local/stackflow.conf`.
    pub fn append_local_conf(&self, text: &str) {
        let local = self.app_dir().join("local");
        std::fs::create_dir_all(&local).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(local.join("stackflow.conf"))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// A dispatch directory for a search id.
    pub fn dispatch_dir(&self, sid: &str) -> PathBuf {
        let dir = self.root.join("var/run/splunk/dispatch").join(sid);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `results.csv.gz` the way Splunk writes it and returns its path.
    pub fn write_results(&self, sid: &str, rows: &[Vec<(&str, Cell)>]) -> PathBuf {
        let path = self.dispatch_dir(sid).join("results.csv.gz");
        std::fs::write(&path, gzip(splunk_csv(rows).as_bytes())).unwrap();
        path
    }

    /// Writes a per-result alert file `per_result_alert/tmp_<n>.csv.gz`.
    pub fn write_per_result(&self, sid: &str, n: u32, row: Vec<(&str, Cell)>) -> PathBuf {
        let dir = self.dispatch_dir(sid).join("per_result_alert");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("tmp_{n}.csv.gz"));
        std::fs::write(&path, gzip(splunk_csv(&[row]).as_bytes())).unwrap();
        path
    }

    /// Resolves the executable for an alert action stanza the way splunkd does, and its argv.
    pub fn alert_command(&self, stanza: &str) -> (PathBuf, Vec<String>) {
        let app = self.app_dir();
        let conf = ConfFile::load_app_conf(&app, "alert_actions.conf").unwrap();
        assert!(conf.has_stanza(stanza), "alert_actions.conf has no [{stanza}]");
        if let Some(cmd) = conf.get_nonempty(stanza, "alert.execute.cmd") {
            let mut args = Vec::new();
            for n in 0..10 {
                if let Some(arg) = conf.get(stanza, &format!("alert.execute.cmd.arg.{n}")) {
                    args.push(arg.replace("$SPLUNK_HOME", &self.root.to_string_lossy()));
                }
            }
            return (app.join("bin").join(cmd), args);
        }
        match self.executable(stanza) {
            Some(exe) => (exe, vec!["--execute".to_string()]),
            None => panic!("no executable for alert action {stanza} in {}", app.display()),
        }
    }

    /// The executable splunkd finds for `name` (an alert action or a modular input's scheme):
    /// the platform directory first, then `bin/`, with the platform's extensions.
    pub fn executable(&self, name: &str) -> Option<PathBuf> {
        let app = self.app_dir();
        let extensions: &[&str] =
            if cfg!(windows) { &[".exe", ".cmd", ".bat"] } else { &["", ".sh"] };
        [app.join(PLATFORM_DIR).join("bin"), app.join("bin")].into_iter().find_map(|dir| {
            extensions
                .iter()
                .map(|extension| dir.join(format!("{name}{extension}")))
                .find(|candidate| candidate.is_file())
        })
    }

    /// The executable splunkd starts for a modular input's scheme.
    pub fn modinput_executable(&self, scheme: &str) -> PathBuf {
        self.executable(scheme).unwrap_or_else(|| {
            panic!("splunkd would find no executable for modular input {scheme}")
        })
    }

    /// Runs an alert action as splunkd does: payload on stdin, `--execute`, SPLUNK_HOME set.
    pub fn run_alert(&self, stanza: &str, payload: &Value) -> Run {
        let (exe, args) = self.alert_command(stanza);
        let mut command = Command::new(&exe);
        command.args(&args);
        self.run_command(command, payload.to_string().as_bytes())
    }

    /// Runs `stackflow <args>` from the installed app (as an admin or the scripted input would).
    pub fn run_stackflow(&self, args: &[&str], stdin: &[u8]) -> Run {
        let exe = self.app_dir().join(PLATFORM_DIR).join("bin").join("stackflow");
        let mut command = Command::new(exe);
        command.args(args);
        self.run_command(command, stdin)
    }

    /// Starts a command with the environment splunkd gives its children.
    pub fn command(&self, mut command: Command) -> Command {
        command
            .env_clear()
            .env("SPLUNK_HOME", &self.root)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs a command (see `command`) to its end; fails the test if it crashed or hit an
    /// internal error (see `Run::from_output`).
    pub fn run_command(&self, command: Command, stdin: &[u8]) -> Run {
        self.run_command_expecting(command, stdin, &[], Expect::Ordinary)
    }

    /// `run_command` with extra environment variables (set over splunkd's) and what the test
    /// expects: only a test that provokes an internal error on purpose passes
    /// `Expect::InternalError`.
    pub fn run_command_expecting(
        &self,
        command: Command,
        stdin: &[u8],
        env: &[(&str, &str)],
        expect: Expect,
    ) -> Run {
        let mut command = self.command(command);
        command.envs(env.iter().copied());
        let started = Instant::now();
        let mut child = spawn(&mut command);
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let output = wait_with_timeout(child, Duration::from_secs(300));
        let _ = writer.join();
        Run::from_output(output, started.elapsed(), expect)
    }

    /// The ModularAction log of an action.
    pub fn modalert_log(&self, stanza: &str) -> String {
        std::fs::read_to_string(
            self.root.join("var/log/splunk").join(format!("{stanza}_modalert.log")),
        )
        .unwrap_or_default()
    }
}

impl Drop for SplunkHome {
    fn drop(&mut self) {
        if std::env::var_os("STACKFLOW_KEEP_TEST_HOME").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Starts a process, retrying "text file busy": another test thread may have forked while this
/// binary was still open for writing (the copy in `SplunkHome::new`), and the forked child holds
/// that descriptor until it execs.
pub fn spawn(command: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Ok(child) => return child,
            Err(error) if error.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("cannot start {command:?}: {error}"),
        }
    }
}

fn wait_with_timeout(child: std::process::Child, limit: Duration) -> Output {
    let id = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("wait for the action"),
        Err(_) => {
            #[cfg(unix)]
            unsafe_kill(id);
            panic!("the action ran longer than {limit:?} (splunkd would kill it)");
        }
    }
}

#[cfg(unix)]
fn unsafe_kill(pid: u32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

/// What a run left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// What a test expects of a run besides its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Anything but a crash or an internal error (the default of every run).
    Ordinary,
    /// An internal error (exit 9, `FATAL internal error`), provoked on purpose.
    InternalError,
}

impl Run {
    /// The harness hook: every run of the binary goes through here, and a crash or a bug fails
    /// the test whatever the test itself asserts — a process killed by a signal (with
    /// `panic = "abort"`, as in release builds, a panic that escaped the hook is SIGABRT), a
    /// panic message on stderr, or an internal error (exit 9 or a `FATAL internal error` line)
    /// that the test did not ask for.
    #[track_caller]
    pub fn from_output(output: Output, elapsed: Duration, expect: Expect) -> Run {
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        };
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = output.status.signal() {
                panic!(
                    "the process was killed by signal {signal}{}; stderr:\n{}",
                    if signal == 6 { " (SIGABRT: a panic, or an abort)" } else { "" },
                    run.stderr
                );
            }
        }
        assert!(
            output.status.code().is_some(),
            "the process ended without an exit code; stderr:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked at") && !run.stdout.contains("panicked at"),
            "the process panicked; stderr:\n{}",
            run.stderr
        );
        let internal = run.code == 9
            || run.stderr.lines().any(|line| line.starts_with("FATAL internal error"));
        if expect != Expect::InternalError {
            assert!(
                !internal,
                "internal error (a bug) in a run that did not expect one: exit {}; stderr:\n{}",
                run.code, run.stderr
            );
        }
        run
    }

    /// Asserts the exit code, printing stderr on failure.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }

    /// Every stderr line starts with a level word splunkd understands.
    #[track_caller]
    pub fn assert_levelled_stderr(&self) -> &Run {
        for line in self.stderr.lines() {
            let word = line.split(' ').next().unwrap_or("");
            assert!(
                ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"].contains(&word),
                "stderr line without a level word: {line:?}\nstderr:\n{}",
                self.stderr
            );
        }
        self
    }

    /// stderr has a line with this level containing `text`.
    #[track_caller]
    pub fn assert_line(&self, level: &str, text: &str) -> &Run {
        assert!(
            self.stderr.lines().any(|line| line.starts_with(level) && line.contains(text)),
            "no {level} line containing {text:?}; stderr:\n{}",
            self.stderr
        );
        self
    }

    /// No secret appears anywhere in the output.
    #[track_caller]
    pub fn assert_no_secret(&self, secrets: &[&str]) -> &Run {
        for secret in secrets {
            assert!(
                !self.stderr.contains(secret) && !self.stdout.contains(secret),
                "secret {secret:?} was printed"
            );
        }
        self
    }
}

/// A cell of a results row.
#[derive(Clone, Debug)]
pub enum Cell {
    One(String),
    Many(Vec<String>),
}

pub fn one(value: &str) -> Cell {
    Cell::One(value.to_string())
}

pub fn many(values: &[&str]) -> Cell {
    Cell::Many(values.iter().map(|v| v.to_string()).collect())
}

fn splunk_quote(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        value.to_string()
    } else if value.is_empty() {
        String::new()
    } else {
        format!("\"{}\"", value.replace('"', "\"\""))
    }
}

/// Splunk's results CSV: header of all fields (first-seen order), then one `__mv_` column per
/// field; a field is quoted iff it has a character outside [A-Za-z0-9]; LF line ends.
pub fn splunk_csv(rows: &[Vec<(&str, Cell)>]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        for (name, _) in row {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = names
        .iter()
        .map(|name| splunk_quote(name))
        .chain(names.iter().map(|name| splunk_quote(&format!("__mv_{name}"))))
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in rows {
        let mut plain = Vec::new();
        let mut mv = Vec::new();
        for name in &names {
            match row.iter().find(|(n, _)| n == name).map(|(_, cell)| cell) {
                None => {
                    plain.push(String::new());
                    mv.push(String::new());
                }
                Some(Cell::One(value)) => {
                    plain.push(splunk_quote(value));
                    mv.push(String::new());
                }
                Some(Cell::Many(values)) => {
                    plain.push(splunk_quote(&values.join("\n")));
                    let encoded: Vec<String> =
                        values.iter().map(|v| format!("${}$", v.replace('$', "$$"))).collect();
                    mv.push(splunk_quote(&encoded.join(";")));
                }
            }
        }
        plain.extend(mv);
        out.push_str(&plain.join(","));
        out.push('\n');
    }
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A scheduled-search payload as splunkd 9.x writes it (`payload_format = json`).
pub fn payload(
    home: &SplunkHome,
    emulator_url: &str,
    sid: &str,
    results_file: &Path,
    params: Value,
) -> Value {
    let _ = home;
    json!({
        "app": "search",
        "owner": "admin",
        "results_file": results_file.to_string_lossy(),
        "results_link": format!("http://sh.example.com:8000/app/search/@go?sid={sid}"),
        "search_uri": "/servicesNS/admin/search/saved/searches/Brute%20Force",
        "server_host": "sh.example.com",
        "server_uri": emulator_url,
        "session_key": SESSION_KEY,
        "sid": sid,
        "search_name": "Brute Force Access Behavior Detected",
        "configuration": params,
        "result": {}
    })
}

/// A scheduler sid like splunkd's.
pub fn scheduler_sid(n: u32) -> String {
    format!("scheduler__admin__search__RMD5aa11bb22cc33dd44_at_1763750000_{n}")
}

/// The configuration splunkd writes on a modular input's stdin: one enabled stanza with the
/// given params after `interval`, `index` and `disabled`.
pub fn modinput_config(
    server_uri: &str,
    checkpoint_dir: &Path,
    stanza: &str,
    interval: u32,
    params: &[(&str, &str)],
) -> String {
    let params: String =
        params.iter().map(|(k, v)| format!("<param name=\"{k}\">{v}</param>")).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<input>
  <server_host>sh1</server_host>
  <server_uri>{server_uri}</server_uri>
  <session_key>{SESSION_KEY}</session_key>
  <checkpoint_dir>{}</checkpoint_dir>
  <configuration>
    <stanza name="{stanza}" app="stackflow">
      <param name="interval">{interval}</param><param name="index">stackflow</param><param name="disabled">0</param>{params}
    </stanza>
  </configuration>
</input>"#,
        checkpoint_dir.display()
    )
}
