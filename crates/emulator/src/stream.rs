//! Slow and streamed answers (splunkd's search endpoints): wait a configured time while
//! watching for the client to hang up, then write the body at once (`Content-Length`), or
//! send the head first and the body as chunks (`Transfer-Encoding: chunked`, as splunkd's
//! `search/jobs/export` streams its results). Whether the answer was written whole or the
//! client left first is reported to the request's [`Outcome`].

use crate::http::{Response, reason, write_response};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How a response is to be written.
pub(crate) struct Streamed {
    /// Time before the body (after the head when `chunked`).
    pub delay: Duration,
    /// Head first, then the body in chunks; else everything after the delay.
    pub chunked: bool,
    pub outcome: Arc<Outcome>,
}

/// What became of one slow answer; `in_flight` counts the answers not finished yet (shared
/// by every search of one emulator, for the concurrency a test wants to bound).
pub(crate) struct Outcome {
    pub completed: AtomicBool,
    pub aborted: AtomicBool,
    in_flight: Arc<AtomicUsize>,
}

impl Outcome {
    /// A new answer in flight.
    pub(crate) fn start(in_flight: &Arc<AtomicUsize>) -> Arc<Outcome> {
        in_flight.fetch_add(1, Ordering::SeqCst);
        Arc::new(Outcome {
            completed: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            in_flight: in_flight.clone(),
        })
    }
    fn finish(&self, completed: bool) {
        let flag = if completed { &self.completed } else { &self.aborted };
        let first = !self.completed.load(Ordering::SeqCst) && !self.aborted.load(Ordering::SeqCst);
        flag.store(true, Ordering::SeqCst);
        if first {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Writes `resp` as `s` says; false when the connection must be closed.
pub(crate) fn write(
    w: &mut impl Write,
    raw: &TcpStream,
    resp: &Response,
    s: &Streamed,
    keep_alive: bool,
) -> bool {
    let done = |ok: bool| {
        s.outcome.finish(ok);
        ok
    };
    if !s.chunked {
        if !wait(raw, s.delay) {
            return done(false);
        }
        return last_write(s, || write_response(w, resp, keep_alive).is_ok());
    }
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let conn = if keep_alive { "keep-alive" } else { "close" };
    head.push_str(&format!("Transfer-Encoding: chunked\r\nConnection: {conn}\r\n\r\n"));
    if w.write_all(head.as_bytes()).and_then(|_| w.flush()).is_err() || !wait(raw, s.delay) {
        return done(false);
    }
    for piece in resp.body.chunks(16 * 1024) {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        if w.write_all(&chunk).is_err() {
            return done(false);
        }
    }
    last_write(s, || w.write_all(b"0\r\n\r\n").and_then(|_| w.flush()).is_ok())
}

/// The last write: marked completed before the client can see its bytes (so that a test
/// reading the answer finds it completed), and aborted instead if the write failed.
fn last_write(s: &Streamed, ok: impl FnOnce() -> bool) -> bool {
    s.outcome.finish(true);
    let ok = ok();
    if !ok {
        s.outcome.completed.store(false, Ordering::SeqCst);
        s.outcome.aborted.store(true, Ordering::SeqCst);
    }
    ok
}

/// Sleeps `delay` in small steps; false as soon as the peer has hung up.
fn wait(raw: &TcpStream, delay: Duration) -> bool {
    let end = Instant::now() + delay;
    loop {
        if peer_gone(raw) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Whether the peer closed its side (poll with POLLRDHUP: a FIN counts even with unread
/// bytes, such as a TLS close_notify, in front of it).
fn peer_gone(raw: &TcpStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        #[repr(C)]
        struct PollFd {
            fd: i32,
            events: i16,
            revents: i16,
        }
        unsafe extern "C" {
            fn poll(fds: *mut PollFd, nfds: std::ffi::c_ulong, timeout: i32) -> i32;
        }
        const POLLERR: i16 = 0x8;
        const POLLHUP: i16 = 0x10;
        const POLLRDHUP: i16 = 0x2000;
        let mut fd = PollFd { fd: raw.as_raw_fd(), events: POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd owned by this frame; fd owned by `raw`; timeout 0.
        let n = unsafe { poll(&mut fd, 1, 0) };
        n > 0 && fd.revents & (POLLRDHUP | POLLHUP | POLLERR) != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = raw;
        false
    }
}
