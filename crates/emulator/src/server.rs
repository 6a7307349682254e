//! The listener: accept loop, one thread per connection, keep-alive request loop, fault and
//! latency injection, request recording and routing by path to the API modules.

use crate::http::{self, Request, Response};
use crate::{Fault, Recorded, Shared, control, lock, slack, soar, splunkd, stackflow};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One listener incarnation: stop flag, open connections and the accept thread.
pub(crate) struct Run {
    port: u16,
    stopped: AtomicBool,
    next_conn: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Run {
    pub(crate) fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the thread drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = lock(&self.accept).take() {
            let _ = h.join();
        }
        for (_, c) in lock(&self.conns).drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn bind(port: u16) -> TcpListener {
    let mut last = None;
    for _ in 0..100 {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(e) if port != 0 => {
                last = Some(e);
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("emulator bind: {e}"),
        }
    }
    panic!("emulator bind 127.0.0.1:{port}: {last:?}")
}

/// Binds 127.0.0.1:`port` and starts the accept thread; returns the run handle and bound port.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    port: u16,
    tls: Option<Arc<ServerConfig>>,
) -> (Arc<Run>, u16) {
    let listener = bind(port);
    let port = listener.local_addr().expect("local addr").port();
    let run = Arc::new(Run {
        port,
        stopped: AtomicBool::new(false),
        next_conn: AtomicU64::new(0),
        conns: Mutex::default(),
        accept: Mutex::default(),
    });
    let r = run.clone();
    let handle = thread::spawn(move || {
        for stream in listener.incoming() {
            if r.stopped.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let id = r.next_conn.fetch_add(1, Ordering::Relaxed);
            if let Ok(c) = stream.try_clone() {
                lock(&r.conns).insert(id, c);
            }
            let (shared, run, tls) = (shared.clone(), r.clone(), tls.clone());
            thread::spawn(move || {
                serve(&shared, &run, stream, tls);
                lock(&run.conns).remove(&id);
            });
        }
    });
    *lock(&run.accept) = Some(handle);
    (run, port)
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn serve(shared: &Shared, run: &Run, tcp: TcpStream, tls: Option<Arc<ServerConfig>>) {
    let Ok(raw) = tcp.try_clone() else { return };
    let stream: Box<dyn Stream> = match tls {
        Some(cfg) => match ServerConnection::new(cfg) {
            Ok(conn) => Box::new(StreamOwned::new(conn, tcp)),
            Err(_) => return,
        },
        None => Box::new(tcp),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    while !run.stopped.load(Ordering::SeqCst) {
        let mut req = match http::read_head(&mut reader) {
            Ok(Some(req)) => req,
            _ => return,
        };
        if http::expects_continue(&req) {
            let w = reader.get_mut();
            if w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").and_then(|_| w.flush()).is_err() {
                return;
            }
        }
        if http::read_body(&mut reader, &mut req).is_err() {
            return;
        }
        if !handle(shared, &req, reader.get_mut(), &raw) || !req.keep_alive {
            return;
        }
    }
}

/// Answers one request; returns false when the connection must be closed.
fn handle(shared: &Shared, req: &Request, w: &mut Box<dyn Stream>, raw: &TcpStream) -> bool {
    if req.path.starts_with("/_emulator/") {
        let resp = control::handle(shared, req);
        return http::write_response(w, &resp, req.keep_alive).is_ok();
    }
    let seq = shared.record(Recorded {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        status: 0,
    });
    let latency = shared
        .latency_for(&format!("{} {}", req.method, req.path))
        .or_else(|| shared.latency_for(&req.path));
    if let Some(d) = latency {
        thread::sleep(d);
    }
    let resp = match shared.take_fault(&req.path) {
        None => route(shared, req),
        Some(Fault::Delay(d)) => {
            thread::sleep(d);
            route(shared, req)
        }
        Some(Fault::Status { status, body, headers }) => {
            let mut r = Response::raw(status, body.into_bytes());
            for (k, v) in headers {
                r.headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
                r.headers.push((k, v));
            }
            r
        }
        Some(Fault::RetryAfter { status, seconds }) => {
            Response::json(status, &throttle_body(&req.path))
                .with_header("Retry-After", seconds.to_string())
        }
        Some(Fault::ResetMidResponse) => {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"partial\":");
            let _ = w.flush();
            reset(raw);
            return false;
        }
        Some(Fault::CloseWithoutResponse) => {
            let _ = raw.shutdown(Shutdown::Both);
            return false;
        }
        Some(Fault::ResetAfterProcessing) => {
            let resp = route(shared, req);
            shared.set_status(seq, resp.status);
            reset(raw);
            return false;
        }
    };
    let resp = if req.path.starts_with("/prod/api/") {
        stackflow::rate_headers(shared, resp)
    } else {
        resp
    };
    shared.set_status(seq, resp.status);
    if let Some(streamed) = &resp.stream {
        return crate::stream::write(w, raw, &resp, streamed, req.keep_alive);
    }
    http::write_response(w, &resp, req.keep_alive).is_ok()
}

/// The API-shaped body of a throttling fault.
fn throttle_body(path: &str) -> serde_json::Value {
    if path.starts_with("/api/") {
        json!({"ok": false, "error": "ratelimited"})
    } else if path.starts_with("/rest/") {
        json!({"failed": true, "message": "Service temporarily unavailable"})
    } else if path.starts_with("/prod/api/") {
        json!({"error": "Too many requests", "code": "RATE_LIMITED", "requestId": crate::util::request_id()})
    } else {
        json!({"messages": [{"type": "ERROR", "text": "Service temporarily unavailable"}]})
    }
}

/// Abortive close: SO_LINGER {on, 0} then drop → the peer sees a TCP RST.
fn reset(raw: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        #[repr(C)]
        struct Linger {
            onoff: i32,
            linger: i32,
        }
        unsafe extern "C" {
            fn setsockopt(fd: i32, level: i32, name: i32, val: *const Linger, len: u32) -> i32;
        }
        let l = Linger { onoff: 1, linger: 0 };
        // SAFETY: valid fd owned by `raw`; SOL_SOCKET=1, SO_LINGER=13 on Linux; struct matches `struct linger`.
        unsafe { setsockopt(raw.as_raw_fd(), 1, 13, &l, std::mem::size_of::<Linger>() as u32) };
    }
}

fn route(shared: &Shared, req: &Request) -> Response {
    let p = req.path.as_str();
    if p.starts_with("/services/") || p.starts_with("/servicesNS/") {
        splunkd::handle(&mut lock(&shared.splunkd), req)
    } else if p.starts_with("/rest/") {
        soar::handle(&mut lock(&shared.soar), req)
    } else if p.starts_with("/prod/api/") {
        stackflow::handle(&mut lock(&shared.stackflow), req)
    } else if p.starts_with(crate::slack_response_url::PREFIX)
        || p.starts_with(crate::slack_response_url::COMMANDS_PREFIX)
    {
        crate::slack_response_url::handle(&mut lock(&shared.response_urls), req)
    } else if p.starts_with("/api/") {
        if let Some(refused) =
            crate::slack_response_url::refused_ephemeral(&lock(&shared.response_urls), req)
        {
            return refused;
        }
        slack::handle(&mut lock(&shared.slack), req)
    } else if p.starts_with("/v1/") {
        crate::llm::handle(&lock(&shared.llm), req)
    } else {
        Response::json(404, &json!({"error": "not found", "path": p}))
    }
}
