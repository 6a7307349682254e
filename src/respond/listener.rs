//! The Socket Mode listener loop: connect, read frames, acknowledge every envelope before
//! anything else is done with it, hand it to the handler, and reconnect — at once after Slack's
//! `disconnect`, with exponential backoff and jitter after a lost socket or a failed connect —
//! until the stop flag is raised (SIGTERM / SIGINT). Frames are untrusted: anything that is not
//! a JSON object with the expected fields is logged and skipped (Slack "Using Socket Mode":
//! `hello`, `disconnect`, envelopes with `envelope_id`, acknowledged by `{"envelope_id": …}`).

use crate::net::retry::{Backoff, jitter_unit};
use crate::remotes::slack::socket::{ConnectError, Socket, SocketModeClient};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tungstenite::Message;

/// How often a blocked read looks at the stop flag.
pub const POLL: Duration = Duration::from_millis(200);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Slack pings about every 30 s (unverified interval): silence this long means a dead socket.
const SILENCE_LIMIT: Duration = Duration::from_secs(120);

/// One Socket Mode envelope (already acknowledged when the handler sees it).
#[derive(Clone, Debug)]
pub struct Envelope {
    pub envelope_id: String,
    /// `interactive`, `events_api`, `slash_commands`…
    pub kind: String,
    pub payload: Value,
    pub retry_attempt: u64,
}

/// What the loop did, for the exit code and the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    pub envelopes: u64,
}

/// Runs until `stop` is raised, or a connection error that retrying cannot fix.
pub fn run(
    client: &SocketModeClient,
    stop: &Arc<AtomicBool>,
    handler: &mut dyn FnMut(&Envelope),
) -> Result<Stats, crate::error::Error> {
    let mut stats = Stats::default();
    let mut failures: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut socket = match client.connect(POLL) {
            Ok(socket) => socket,
            Err(ConnectError::Fatal(error)) => return Err(error),
            Err(ConnectError::Retry(reason)) => {
                failures = failures.saturating_add(1);
                let wait = backoff(failures);
                log::warn!(
                    "Socket Mode: cannot connect ({reason}); trying again in {} ms",
                    wait.as_millis()
                );
                sleep_unless_stopped(wait, stop);
                continue;
            }
        };
        stats.connections = stats.connections.saturating_add(1);
        let end = serve(&mut socket, stop, handler, &mut stats);
        let _ = socket.close(None);
        let _ = socket.flush();
        match end {
            End::Stopped => break,
            End::Disconnect(reason) => {
                failures = 0;
                log::info!("Socket Mode: Slack asked to reconnect ({reason})");
            }
            End::Lost(reason) => {
                failures = failures.saturating_add(1);
                let wait = backoff(failures);
                log::warn!(
                    "Socket Mode: connection lost ({reason}); reconnecting in {} ms",
                    wait.as_millis()
                );
                sleep_unless_stopped(wait, stop);
            }
        }
    }
    Ok(stats)
}

enum End {
    Stopped,
    Disconnect(String),
    Lost(String),
}

fn serve(
    socket: &mut Socket,
    stop: &AtomicBool,
    handler: &mut dyn FnMut(&Envelope),
    stats: &mut Stats,
) -> End {
    let mut last_frame = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return End::Stopped;
        }
        let message = match socket.read() {
            Ok(message) => message,
            Err(tungstenite::Error::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if last_frame.elapsed() > SILENCE_LIMIT {
                    return End::Lost("no frame from Slack for 120 s".into());
                }
                continue;
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return End::Lost("closed".into());
            }
            Err(error) => return End::Lost(error.to_string()),
        };
        last_frame = Instant::now();
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return End::Lost("Slack closed the connection".into()),
            // Pings are answered by tungstenite; binary frames are not part of Socket Mode.
            _ => continue,
        };
        match on_frame(text.as_str(), socket, handler, stats) {
            Ok(Some(end)) => return end,
            Ok(None) => {}
            Err(reason) => return End::Lost(reason),
        }
    }
}

/// One text frame: `hello`, `disconnect`, or an envelope (acknowledged, then handled).
fn on_frame(
    text: &str,
    socket: &mut Socket,
    handler: &mut dyn FnMut(&Envelope),
    stats: &mut Stats,
) -> Result<Option<End>, String> {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        // Unusable, but Slack would re-deliver it forever: acknowledged when it names itself.
        match raw_envelope_id(text) {
            Some(envelope_id) => {
                send_ack(socket, &envelope_id)?;
                stats.envelopes = stats.envelopes.saturating_add(1);
                log::warn!(
                    "Socket Mode: envelope {envelope_id} is not a JSON object ({} bytes); acknowledged and dropped",
                    text.len()
                );
            }
            None => log::warn!(
                "Socket Mode: skipped a frame that is not a JSON object ({} bytes)",
                text.len()
            ),
        }
        return Ok(None);
    };
    let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "hello" => {
            log::info!("Socket Mode: hello received, listening");
            return Ok(None);
        }
        "disconnect" => {
            let reason = frame.get("reason").and_then(Value::as_str).unwrap_or("no reason");
            return Ok(Some(End::Disconnect(reason.chars().take(100).collect())));
        }
        _ => {}
    }
    let Some(envelope_id) = frame
        .get("envelope_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .map(str::to_string)
    else {
        log::warn!("Socket Mode: skipped a {kind:?} frame without a usable envelope_id");
        return Ok(None);
    };
    // Acknowledge first (Slack wants it within 3 s), whatever follows.
    send_ack(socket, &envelope_id)?;
    stats.envelopes = stats.envelopes.saturating_add(1);
    let envelope = Envelope {
        envelope_id,
        kind,
        payload: frame.remove("payload").unwrap_or(Value::Null),
        retry_attempt: frame.get("retry_attempt").and_then(Value::as_u64).unwrap_or(0),
    };
    handler(&envelope);
    Ok(None)
}

/// `{"envelope_id": …}` (python-slack-sdk `SocketModeResponse`: the ack names the envelope).
fn send_ack(socket: &mut Socket, envelope_id: &str) -> Result<(), String> {
    let ack = serde_json::json!({ "envelope_id": envelope_id }).to_string();
    socket.send(Message::text(ack)).map_err(|error| format!("sending an ack: {error}"))
}

/// The `envelope_id` of a frame that is not valid JSON, read as text: the first
/// `"envelope_id"` key followed by a plain string value (no escapes, at most 200 bytes).
fn raw_envelope_id(text: &str) -> Option<String> {
    let at = text.find("\"envelope_id\"")?;
    let rest = text[at + "\"envelope_id\"".len()..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let id = &rest[..end];
    let usable = !id.is_empty() && id.len() <= 200 && !id.contains('\\');
    usable.then(|| id.to_string())
}

/// `BACKOFF_FIRST · 2^(n-1)`, at most `BACKOFF_MAX`, minus up to half of it at random ("equal
/// jitter", `net::retry::Backoff`), so that many listeners do not reconnect in step.
pub fn backoff(failures: u32) -> Duration {
    Backoff { base: BACKOFF_FIRST, cap: BACKOFF_MAX }.delay(failures, None, jitter_unit())
}

fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep((until - now).min(POLL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for failures in [0, 1, 2, 5, 30, u32::MAX] {
            let wait = backoff(failures);
            let exponent = failures.saturating_sub(1).min(16);
            let base = BACKOFF_FIRST.saturating_mul(1u32 << exponent).min(BACKOFF_MAX);
            assert!(wait >= base / 2 && wait <= base, "{failures}: {wait:?} vs {base:?}");
        }
        assert!(backoff(30) <= BACKOFF_MAX);
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }

    #[test]
    fn envelope_ids_of_broken_frames() {
        let id = |text: &str| raw_envelope_id(text);
        assert_eq!(id(r#"{"envelope_id": "e-1", "payload": {"#).as_deref(), Some("e-1"));
        assert_eq!(id(r#"{"type":"x","envelope_id":"e2"#), None);
        assert_eq!(id(r#"{"envelope_id": 5}"#), None);
        assert_eq!(id(r#"{"envelope_id": "a\"b"}"#), None);
        assert_eq!(id("garbage"), None);
        assert_eq!(id(&format!(r#"{{"envelope_id": "{}"}}"#, "x".repeat(300))), None);
    }
}
