//! The POSIX launchers in `app/stackflow/bin/`, run from an installed copy of the app under a
//! directory whose path contains spaces, with a stub in place of the platform binary: argv
//! (`alert soar --execute`), stdin pass-through, exit codes, and the FATAL/9 paths.
#![cfg(unix)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const STUB: &str = r#"#!/bin/sh
printf 'argv:'
for a in "$@"; do printf ' [%s]' "$a"; done
printf '\n'
printf 'stdin:'
cat
printf '\n'
echo "INFO stub stderr" >&2
exit "${STUB_EXIT:-0}"
"#;

/// The platform folder the launcher picks on this machine.
fn platform_dir() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux_x86_64",
        ("linux", "aarch64") => "linux_aarch64",
        ("macos", _) => "darwin_x86_64",
        other => panic!("no launcher platform for {other:?}"),
    }
}

struct Installed {
    root: PathBuf,
    app: PathBuf,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Copy `app/stackflow/bin` into `<tmp>/Splunk Home/etc/apps/stackflow/bin` and put the stub in
/// `<platform>/bin/stackflow`.
fn install(with_stub: bool) -> Installed {
    static N: AtomicUsize = AtomicUsize::new(0);
    let root = std::env::temp_dir().join(format!(
        "stackflow launchers {} {}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let app = root.join("Splunk Home").join("etc").join("apps").join("stackflow");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("app").join("stackflow").join("bin");
    fs::create_dir_all(app.join("bin")).unwrap();
    for entry in fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let dest = app.join("bin").join(entry.file_name());
        fs::copy(entry.path(), &dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    }
    if with_stub {
        let dir = app.join(platform_dir()).join("bin");
        fs::create_dir_all(&dir).unwrap();
        write_exec(&dir.join("stackflow"), STUB);
    }
    Installed { root, app }
}

fn run(script: &Path, args: &[&str], stdin: &str, envs: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(script);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", script.display()));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn alert_launchers_pass_argv_stdin_and_exit_code() {
    let inst = install(true);
    assert!(inst.app.to_str().unwrap().contains(' '), "the test path must contain a space");
    let payload = r#"{"sid":"scheduler__admin_c2VhcmNo","configuration":{"account":"default"}}"#;
    for action in ["soar", "incident", "slack"] {
        let script = inst.app.join("bin").join(format!("stackflow_{action}.sh"));
        let out = run(&script, &["--execute"], payload, &[]);
        assert_eq!(out.status.code(), Some(0), "{action}: {out:?}");
        assert_eq!(
            stdout(&out),
            format!("argv: [alert] [{action}] [--execute]\nstdin:{payload}\n"),
            "{action}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "INFO stub stderr\n");
        for code in [2, 5, 7, 9] {
            let out = run(&script, &["--execute"], "{}", &[("STUB_EXIT", code.to_string())]);
            assert_eq!(out.status.code(), Some(code), "{action} exit {code}");
        }
    }
}

#[test]
fn launcher_keeps_arguments_with_spaces_and_binary_stdin() {
    let inst = install(true);
    let out = run(
        &inst.app.join("bin").join("stackflow"),
        &["spool", "list", "two words", "", "*", "$HOME"],
        "line 1\nline 2",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "argv: [spool] [list] [two words] [] [*] [$HOME]\nstdin:line 1\nline 2\n"
    );
}

#[test]
fn flush_launcher_runs_spool_flush_with_the_session_key_on_stdin() {
    let inst = install(true);
    let out = run(&inst.app.join("bin").join("stackflow_flush.sh"), &[], "SESSIONKEY\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "argv: [spool] [flush]\nstdin:SESSIONKEY\n\n");
}

#[test]
fn missing_binary_is_one_fatal_line_and_exit_9() {
    let inst = install(false);
    let out = run(&inst.app.join("bin").join("stackflow_soar.sh"), &["--execute"], "{}", &[]);
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("FATAL "), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_platform_is_one_fatal_line_and_exit_9() {
    let inst = install(true);
    let fake = inst.root.join("fake bin");
    fs::create_dir_all(&fake).unwrap();
    write_exec(
        &fake.join("uname"),
        "#!/bin/sh\ncase \"$1\" in -s) echo Plan9 ;; *) echo mips ;; esac\n",
    );
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let out = run(&inst.app.join("bin").join("stackflow"), &["--version"], "", &[("PATH", path)]);
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("FATAL ") && err.contains("Plan9/mips"), "{err}");
}

#[test]
fn windows_launchers_call_the_exe_with_the_right_subcommand() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("app").join("stackflow").join("bin");
    for (file, sub) in [
        ("stackflow_soar.cmd", "alert soar"),
        ("stackflow_incident.cmd", "alert incident"),
        ("stackflow_slack.cmd", "alert slack"),
        ("stackflow_flush.cmd", "spool flush"),
    ] {
        let text = fs::read_to_string(bin.join(file)).unwrap();
        assert!(
            text.lines().count() > 1 && !text.replace("\r\n", "").contains('\n'),
            "{file}: CRLF only"
        );
        assert!(
            text.contains(&format!("\"%~dp0..\\windows_x86_64\\bin\\stackflow.exe\" {sub} %*\r\n")),
            "{file}: {text}"
        );
        assert!(text.contains("exit /b %ERRORLEVEL%"), "{file}");
        let sh = bin.join(file.replace(".cmd", ".sh"));
        assert!(sh.exists(), "{file} has no POSIX twin");
    }
}
