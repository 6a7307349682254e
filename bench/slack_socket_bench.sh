#!/usr/bin/env bash
# Benchmark (PRODUCT §14): the Slack Socket Mode listener. The installed modular input
# (bin/stackflow_slack_socket.sh, XML configuration on stdin as splunkd writes it) connects over
# TLS to the emulator's Socket Mode server; N envelopes (default 1,000) are sent one at a time,
# each after the previous one was acknowledged — half `events_api` (acknowledged and ignored),
# half `interactive` clicks on a StackFlow button by an unmapped user (acknowledged, then the
# full refusal path: KV lookups, users.info, splunkd users, an ephemeral reply, an audit
# receipt), so that the work after each ack is in the way of the next envelope. The emulator
# measures each ack's latency from the moment it wrote the envelope to the moment it read the
# ack. Targets: ack p99 <= 100 ms; listener idle RSS < 8 MB (VmRSS after connecting, before
# the first envelope, and again after the run). The floor, measured first in the same run with
# the same envelopes: bench/socket_floor.py, a client that only acknowledges.
#
# Then EFFECTS (default 200) authorised Acknowledge clicks, one at a time, are timed from the
# envelope's send to the notable update at the emulated splunkd (target: within 1 s).
#
# usage: [EFFECTS=200] bench/slack_socket_bench.sh [ENVELOPES]
# Output: a markdown table on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
EMU_ARGS=--socket-mode bench_install_and_emulate slack-socket

control() { # control PATH [JSON]
  python3 - "$URL" "$WORK/ca.pem" "$1" "${2:-}" <<'PY'
import ssl, sys, urllib.request
url, ca, path, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(url + path, data=body.encode() if body else None, method="POST" if body else "GET",
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, context=ctx).read().decode())
PY
}
control /_emulator/secret '{"realm":"stackflow","username":"slack.default","password":"xoxb-test"}' >/dev/null
control /_emulator/secret '{"realm":"stackflow","username":"slack_app.default","password":"xapp-test"}' >/dev/null
cat > "$APP/local/stackflow.conf" <<CONF
[slack:default]
api_url = $URL/api
ca_file = $WORK/ca.pem

[splunkd]
uri = $URL
CONF
cat > "$WORK/input.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<input><server_host>sh1</server_host><server_uri>$URL</server_uri><session_key>test-session-key</session_key>
<checkpoint_dir>$WORK</checkpoint_dir><configuration><stanza name="stackflow_slack_socket://default" app="stackflow">
<param name="interval">0</param><param name="index">stackflow</param></stanza></configuration></input>
XML
LISTENER=
trap 'kill $LISTENER 2>/dev/null || true; exec 9>&- 2>/dev/null || true; kill $EMU_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
open_connections() { control /_emulator/socket/connections | python3 -c 'import json,sys; print(json.load(sys.stdin)["open"])'; }
wait_connected() {
  for _ in $(seq 200); do [ "$(open_connections)" = 1 ] && break; sleep 0.05; done
  sleep 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$LISTENER/status"; }
# send FIRST N: envelopes FIRST..FIRST+N-1, each after the previous one was acknowledged.
send() {
python3 - "$URL" "$WORK/ca.pem" "$1" "$2" <<'PY'
import json, ssl, sys, time, urllib.request
url, ca, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
def call(path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET", headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, context=ctx).read())
for i in range(first, first + n):
    env = "bench-%d" % i
    if i % 2:
        payload = {"type": "block_actions", "user": {"id": "UBENCH%d" % i, "username": "nobody"},
                   "container": {"type": "message", "channel_id": "C1", "message_ts": "1.%06d" % i},
                   "channel": {"id": "C1"}, "message": {"ts": "1.%06d" % i, "text": "x", "blocks": []},
                   "actions": [{"action_id": "stackflow_ack", "value": "dk-%d" % i, "type": "button", "action_ts": "2.%d" % i}]}
        call("/_emulator/socket/send", {"envelope_id": env, "type": "interactive", "payload": payload})
    else:
        call("/_emulator/socket/send", {"envelope_id": env, "type": "events_api", "payload": {"event": {}}})
    deadline = time.time() + 30
    while len(call("/_emulator/socket/acks")) <= i:
        if time.time() > deadline:
            sys.exit("envelope %s was not acknowledged" % env)
        time.sleep(0.001)
PY
}

# The floor: a client that only acknowledges (bench/socket_floor.py), same envelopes.
python3 bench/socket_floor.py "$URL" "$WORK/ca.pem" xapp-test &
LISTENER=$!
wait_connected
FLOOR_RSS=$(rss_kb)
send 0 "$N"
kill -TERM $LISTENER; wait $LISTENER 2>/dev/null || true
for _ in $(seq 100); do [ "$(open_connections)" = 0 ] && break; sleep 0.05; done

# The listener, as splunkd runs it: the configuration on stdin, then stdin closed.
SPLUNK_HOME="$WORK/splunk" "$APP/bin/stackflow_slack_socket.sh" < "$WORK/input.xml" 2>"$WORK/listener.err" &
LISTENER=$!
wait_connected
IDLE_BEFORE=$(rss_kb)
send "$N" "$N"
sleep 2
IDLE_AFTER=$(rss_kb)
ACKS=$(control /_emulator/socket/acks)
# Effect latency (PRODUCT §14: an interaction's effect requested within 1 s of the click):
# EFFECTS authorised Acknowledge clicks, one at a time, each timed from the envelope's send
# to the notable update arriving at the emulated splunkd.
control /_emulator/config '{"splunk_users": {"analyst": {"email": "analyst@example.com",
  "roles": ["stackflow_responder"], "capabilities": ["stackflow_respond", "edit_notable_events"]}}}' >/dev/null
EFFECTS=$(python3 - "$URL" "$WORK/ca.pem" "${EFFECTS:-200}" <<'PY'
import json, ssl, sys, time, urllib.request
url, ca, m = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
def call(path, body=None, auth=False):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Splunk test-session-key"
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET", headers=headers)
    return json.loads(urllib.request.urlopen(req, context=ctx).read())
kv = "/servicesNS/nobody/stackflow/storage/collections/data/%s/batch_save"
call(kv % "stackflow_slack_users", [{"_key": "UBENCHOK", "splunk_user": "analyst"}], auth=True)
call(kv % "stackflow_links", [{"_key": "dkok-%d" % i, "event_id": "NE-%d" % i, "search_name": "Bench",
                               "slack_channel": "C1", "slack_ts": "3.%06d" % i, "updated": 1} for i in range(m)], auth=True)
updates = lambda: len(call("/_emulator/state?lists=0")["notable_updates"])
start = updates()
latencies = []
for i in range(m):
    payload = {"type": "block_actions", "user": {"id": "UBENCHOK", "username": "analyst"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "3.%06d" % i},
               "channel": {"id": "C1"}, "message": {"ts": "3.%06d" % i, "text": "x", "blocks": []},
               "actions": [{"action_id": "stackflow_ack", "value": "dkok-%d" % i, "type": "button", "action_ts": "4.%d" % i}]}
    t0 = time.perf_counter()
    call("/_emulator/socket/send", {"envelope_id": "effect-%d" % i, "type": "interactive", "payload": payload})
    deadline = t0 + 30
    while updates() < start + i + 1:
        if time.perf_counter() > deadline:
            sys.exit("click %d changed no notable" % i)
    latencies.append((time.perf_counter() - t0) * 1000.0)
print(json.dumps(latencies))
PY
)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM $LISTENER; wait $LISTENER || true
# The refusal path really ran: one audit receipt per interactive envelope.
RECEIPTS=$(cat "$WORK"/splunk/var/spool/splunk/*.stash_stackflow_interaction 2>/dev/null | grep -c '"outcome":"denied"' || true)
python3 - "$ACKS" "$N" "$IDLE_BEFORE" "$IDLE_AFTER" "$LOAD" "$RECEIPTS" "$FLOOR_RSS" "$EFFECTS" <<'PY'
import json, sys
acks, n, before, after, load = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
receipts, floor_rss, effects = int(sys.argv[6]), int(sys.argv[7]), sorted(json.loads(sys.argv[8]))
assert receipts == n // 2, ("refusal receipts", receipts, n // 2)
assert len(acks) == 2 * n, (len(acks), 2 * n)
def stats(part):
    lat = sorted(a["latency_us"] / 1000.0 for a in part)
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100.0 * len(lat) + 0.5)) - 1)]
    return pct(50), pct(99), lat[-1]
number = lambda a: int(a["envelope_id"].split("-")[1])
floor = stats([a for a in acks if number(a) < n])
ours = stats([a for a in acks if number(a) >= n])
print("| client | envelopes | ack p50 (ms) | ack p99 (ms) | ack max (ms) | idle RSS (MB) | RSS after the run (MB) |")
print("|---|---:|---:|---:|---:|---:|---:|")
print("| floor: ack-only Python client | %d | %.2f | %.2f | %.2f | %.1f | — |" % ((n,) + floor + (floor_rss / 1024.0,)))
print("| `stackflow slack listen` (modular input) | %d | %.2f | %.2f | %.2f | %.1f | %.1f |" % ((n,) + ours + (before / 1024.0, after / 1024.0)))
print()
pct = lambda p: effects[min(len(effects) - 1, int(round(p / 100.0 * len(effects) + 0.5)) - 1)]
print("Click to notable update (authorised Acknowledge, %d clicks one at a time): p50 %.1f ms, p99 %.1f ms, max %.1f ms"
      % (len(effects), pct(50), pct(99), effects[-1]))
print()
print("Load average (1/5/15 min) at the end of the run: %s" % load)
PY
