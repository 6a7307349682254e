//! Slack Socket Mode emulation: the WebSocket server that `apps.connections.open` points at
//! (`wss://127.0.0.1:<port>/link/?ticket=…`, TLS with the emulator's CA). Each connection is
//! greeted with `hello`; queued envelopes go to one open connection each, and an envelope not
//! acknowledged on a connection that ends is sent again on the next one (with
//! `retry_attempt`), as Slack does. Acknowledgements (`{"envelope_id": …}`) are recorded with
//! their latency. Knobs: `disconnect` (Slack's `{"type":"disconnect"}`) and `drop` (the TCP
//! connection reset without a close frame).

use crate::lock;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One envelope offered to the app.
struct Pending {
    envelope_id: String,
    /// The frame's text (an envelope as JSON, or any text for a broken frame).
    body: String,
    /// Only for this connection (a copy per listener); `None`: the next open one.
    only_on: Option<u64>,
    /// The connection it was last sent on (`None`: not sent, or that connection ended).
    sent_on: Option<u64>,
    sent_at: Option<Instant>,
    attempts: u32,
    acked: bool,
}

/// An acknowledgement received.
#[derive(Clone, Debug)]
pub struct Ack {
    pub envelope_id: String,
    pub latency: Duration,
    /// The whole frame, as the app sent it.
    pub frame: Value,
}

#[derive(Default)]
pub(crate) struct State {
    queue: Vec<Pending>,
    acks: Vec<Ack>,
    next_conn: u64,
    open: Vec<u64>,
    opened_total: u64,
    disconnect: Vec<u64>,
    drop: Vec<u64>,
    tickets: u64,
}

pub(crate) struct SocketMode {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stopped: Arc<AtomicBool>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl SocketMode {
    pub(crate) fn start(tls: Option<Arc<ServerConfig>>) -> SocketMode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind socket mode");
        let port = listener.local_addr().expect("socket mode address").port();
        let state: Arc<Mutex<State>> = Arc::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let (st, stop) = (state.clone(), stopped.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = stream else { continue };
                let (st, tls, stop) = (st.clone(), tls.clone(), stop.clone());
                thread::spawn(move || serve(&st, tcp, tls, &stop));
            }
        });
        SocketMode { port, state, stopped }
    }

    /// A fresh connection URL, as `apps.connections.open` returns it.
    pub(crate) fn url(&self, tls: bool) -> String {
        let mut state = lock(&self.state);
        state.tickets += 1;
        let scheme = if tls { "wss" } else { "ws" };
        format!(
            "{scheme}://127.0.0.1:{}/link/?ticket=emulator-ticket-{}&app_id=A0EMULATOR",
            self.port, state.tickets
        )
    }

    pub(crate) fn send(&self, envelope: Value) {
        let envelope_id =
            envelope.get("envelope_id").and_then(Value::as_str).unwrap_or_default().to_string();
        lock(&self.state).queue.push(pending(envelope_id, envelope.to_string(), None));
    }

    /// A frame sent as it is; an envelope id found in it is what its ack must name.
    pub(crate) fn send_raw(&self, text: &str) {
        let envelope_id = text
            .split("\"envelope_id\"")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or_default()
            .to_string();
        lock(&self.state).queue.push(pending(envelope_id, text.to_string(), None));
    }

    /// One copy of `envelope` for each connection open now.
    pub(crate) fn send_to_all(&self, envelope: Value) {
        let envelope_id =
            envelope.get("envelope_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut state = lock(&self.state);
        for id in state.open.clone() {
            state.queue.push(pending(envelope_id.clone(), envelope.to_string(), Some(id)));
        }
    }

    pub(crate) fn acks(&self) -> Vec<Ack> {
        lock(&self.state).acks.clone()
    }

    /// Connections open now, and ever opened.
    pub(crate) fn connections(&self) -> (usize, u64) {
        let state = lock(&self.state);
        (state.open.len(), state.opened_total)
    }

    /// Envelopes queued and not acknowledged yet.
    pub(crate) fn unacked(&self) -> usize {
        lock(&self.state).queue.iter().filter(|p| !p.acked).count()
    }

    pub(crate) fn disconnect_all(&self) {
        let mut state = lock(&self.state);
        state.disconnect = state.open.clone();
    }

    pub(crate) fn drop_all(&self) {
        let mut state = lock(&self.state);
        state.drop = state.open.clone();
    }
}

impl Drop for SocketMode {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(state: &Mutex<State>, tcp: TcpStream, tls: Option<Arc<ServerConfig>>, stop: &AtomicBool) {
    let Ok(raw) = tcp.try_clone() else { return };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let stream: Box<dyn Stream> = match tls {
        Some(config) => match ServerConnection::new(config) {
            Ok(connection) => Box::new(StreamOwned::new(connection, tcp)),
            Err(_) => return,
        },
        None => Box::new(tcp),
    };
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    let _ = raw.set_read_timeout(Some(Duration::from_millis(10)));
    let id = {
        let mut st = lock(state);
        st.next_conn += 1;
        st.opened_total += 1;
        let id = st.next_conn;
        st.open.push(id);
        id
    };
    let hello = json!({"type": "hello", "num_connections": 1,
        "debug_info": {"host": "emulator", "approximate_connection_time": 3600},
        "connection_info": {"app_id": "A0EMULATOR"}});
    let mut alive = ws.send(tungstenite::Message::text(hello.to_string())).is_ok();
    while alive && !stop.load(Ordering::SeqCst) {
        // Commands and envelopes to send.
        let (to_send, disconnect, drop_now) = {
            let mut st = lock(state);
            let disconnect = take(&mut st.disconnect, id);
            let drop_now = take(&mut st.drop, id);
            let mut to_send = Vec::new();
            if !disconnect && !drop_now {
                let mine = |p: &Pending| {
                    !p.acked && p.sent_on.is_none() && p.only_on.is_none_or(|only| only == id)
                };
                for pending in st.queue.iter_mut().filter(|p| mine(p)) {
                    to_send.push(with_retry(&pending.body, pending.attempts));
                    pending.attempts += 1;
                    pending.sent_on = Some(id);
                    pending.sent_at = Some(Instant::now());
                }
            }
            (to_send, disconnect, drop_now)
        };
        if drop_now {
            let _ = raw.shutdown(Shutdown::Both);
            break;
        }
        if disconnect {
            let frame = json!({"type": "disconnect", "reason": "refresh_requested",
                               "debug_info": {"host": "emulator"}});
            let _ = ws.send(tungstenite::Message::text(frame.to_string()));
        }
        for text in to_send {
            if ws.send(tungstenite::Message::text(text)).is_err() {
                alive = false;
            }
        }
        match ws.read() {
            Ok(tungstenite::Message::Text(text)) => record_ack(state, text.as_str(), id),
            Ok(tungstenite::Message::Close(_)) => alive = false,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => alive = false,
        }
    }
    let mut st = lock(state);
    st.open.retain(|open| *open != id);
    for pending in st.queue.iter_mut().filter(|p| !p.acked && p.sent_on == Some(id)) {
        pending.sent_on = None;
        // A copy for this connection goes to the next one once it is gone.
        pending.only_on = None;
    }
}

fn pending(envelope_id: String, body: String, only_on: Option<u64>) -> Pending {
    Pending { envelope_id, body, only_on, sent_on: None, sent_at: None, attempts: 0, acked: false }
}

/// A queued frame with `retry_attempt` / `retry_reason` added on a re-delivery (Slack's
/// re-delivery fields); a frame that is not a JSON object goes as it is.
fn with_retry(body: &str, attempts: u32) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut object)) if attempts > 0 => {
            object.insert("retry_attempt".into(), json!(attempts));
            object.insert("retry_reason".into(), json!("timeout"));
            Value::Object(object).to_string()
        }
        _ => body.to_string(),
    }
}

fn take(list: &mut Vec<u64>, id: u64) -> bool {
    let before = list.len();
    list.retain(|x| *x != id);
    list.len() != before
}

fn record_ack(state: &Mutex<State>, text: &str, connection: u64) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else { return };
    let Some(envelope_id) = frame.get("envelope_id").and_then(Value::as_str) else { return };
    let mut st = lock(state);
    let mut latency = Duration::ZERO;
    if let Some(pending) = st
        .queue
        .iter_mut()
        .find(|p| p.envelope_id == envelope_id && !p.acked && p.sent_on == Some(connection))
    {
        pending.acked = true;
        latency = pending.sent_at.map(|t| t.elapsed()).unwrap_or_default();
    }
    st.acks.push(Ack { envelope_id: envelope_id.to_string(), latency, frame });
}
