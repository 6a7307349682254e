//! `stackflow-emulator` binary: runs the loopback emulator for benchmarks and demos until stdin
//! closes or SIGTERM/SIGINT arrives, optionally writing the CA PEM and a final state dump.

use stackflow_emulator::Emulator;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
fn install_signal_handlers() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    // SAFETY: the handler only stores to an atomic (async-signal-safe); 15 = SIGTERM, 2 = SIGINT.
    unsafe {
        signal(15, on_signal);
        signal(2, on_signal);
    }
}

#[cfg(not(unix))]
fn install_signal_handlers() {}

fn usage() -> ! {
    eprintln!(
        "usage: stackflow-emulator [--plain] [--no-record] [--port N] [--ca-out PATH] [--state-dump PATH] [--socket-mode]"
    );
    std::process::exit(2)
}

fn main() {
    let (mut plain, mut port, mut ca_out, mut dump, mut record) = (false, 0u16, None, None, true);
    let mut socket_mode = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plain" => plain = true,
            "--no-record" => record = false,
            "--socket-mode" => socket_mode = true,
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--ca-out" => ca_out = Some(args.next().unwrap_or_else(|| usage())),
            "--state-dump" => dump = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    install_signal_handlers();
    let emu = Emulator::start_on(port, !plain);
    emu.set_recording(record);
    if socket_mode {
        emu.start_socket_mode();
    }
    let ca_written = ca_out
        .filter(|_| !plain)
        .map(|p| emu.write_ca(p.as_ref()).map_err(|e| format!("{p}: {e}")));
    if let Some(Err(e)) = ca_written {
        eprintln!("stackflow-emulator: cannot write CA to {e}");
        std::process::exit(1);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {}", emu.url());
    let _ = out.flush();
    std::thread::spawn(|| {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        STOP.store(true, Ordering::SeqCst);
    });
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    emu.stop();
    if let Some(path) = dump {
        let state = serde_json::to_vec(&emu.state_json(true)).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, state) {
            eprintln!("stackflow-emulator: cannot write state dump to {path}: {e}");
        }
    }
}
