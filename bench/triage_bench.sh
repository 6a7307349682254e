#!/usr/bin/env bash
# Benchmark (PRODUCT §18): the Triage button. The installed modular input
# (bin/stackflow_slack_socket.sh, XML configuration on stdin as splunkd writes it) connects over
# TLS to the emulator's Socket Mode server; the emulated splunkd answers every search with ROWS
# generated rows (default 1,000) through search/jobs/export. CLICKS (default 20) authorised
# Triage clicks, one at a time, are each timed from the envelope's send to the thread reply
# arriving at the emulated Slack (target: within 2 s). Then, with each search taking 4 s, two
# clicks run two searches at once while the listener's VmRSS is sampled every 50 ms (target:
# under 16 MB with 2 searches running).
#
# usage: [CLICKS=20] bench/triage_bench.sh [ROWS]
# Output: a markdown table on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000}
CLICKS=${CLICKS:-20}

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
EMU_ARGS=--socket-mode bench_install_and_emulate triage

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
control /_emulator/config "{\"search_row_count\": $ROWS, \"splunk_users\": {\"analyst\": {\"email\": \"analyst@example.com\",
  \"roles\": [\"stackflow_responder\"], \"capabilities\": [\"stackflow_respond\", \"stackflow_triage\"]}}}" >/dev/null
cat > "$APP/local/stackflow.conf" <<CONF
[slack:default]
api_url = $URL/api
ca_file = $WORK/ca.pem

[splunkd]
uri = $URL

[triage:user_activity]
search = index=main user=\$user\$ | table _time host user src action row
label = User activity
max_rows = $ROWS
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
SPLUNK_HOME="$WORK/splunk" "$APP/bin/stackflow_slack_socket.sh" < "$WORK/input.xml" 2>"$WORK/listener.err" &
LISTENER=$!
for _ in $(seq 200); do [ "$(open_connections)" = 1 ] && break; sleep 0.05; done
sleep 1
IDLE=$(awk '/^VmRSS/ {print $2}' "/proc/$LISTENER/status")

RESULT=$(python3 - "$URL" "$WORK/ca.pem" "$CLICKS" "$LISTENER" <<'PY'
import json, ssl, sys, threading, time, urllib.request
url, ca, m, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
def call(path, body=None, auth=False):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Splunk test-session-key"
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET", headers=headers)
    return json.loads(urllib.request.urlopen(req, context=ctx).read())
kv = "/servicesNS/nobody/stackflow/storage/collections/data/%s/batch_save"
call(kv % "stackflow_slack_users", [{"_key": "UBENCH", "splunk_user": "analyst"}], auth=True)
call(kv % "stackflow_links", [{"_key": "dk-%d" % i, "event_id": "NE-%d" % i, "search_name": "Bench",
                               "user": "user%d" % i, "slack_channel": "C1", "slack_ts": "5.%06d" % i,
                               "updated": 1} for i in range(m + 2)], auth=True)
def replies():
    return sum(1 for msg in call("/_emulator/state?lists=0")["slack_messages"] if msg.get("thread_ts"))
def click(i):
    payload = {"type": "block_actions", "user": {"id": "UBENCH", "username": "analyst"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "5.%06d" % i},
               "channel": {"id": "C1"}, "message": {"ts": "5.%06d" % i, "text": "x", "blocks": []},
               "actions": [{"action_id": "stackflow_triage", "value": "dk-%d|user_activity" % i,
                            "type": "button", "action_ts": "6.%d" % i}]}
    call("/_emulator/socket/send", {"envelope_id": "triage-%d" % i, "type": "interactive", "payload": payload})
latencies = []
for i in range(m):
    start = replies()
    t0 = time.perf_counter()
    click(i)
    while replies() < start + 1:
        if time.perf_counter() > t0 + 30:
            sys.exit("click %d got no thread reply" % i)
        time.sleep(0.002)
    latencies.append((time.perf_counter() - t0) * 1000.0)
# Two searches at once, 4 s each: sample the listener's RSS meanwhile.
call("/_emulator/config", {"search_delay_ms": 4000})
start = replies()
click(m)
click(m + 1)
peak = 0
running_seen = 0
t0 = time.perf_counter()
while replies() < start + 2 and time.perf_counter() < t0 + 30:
    with open("/proc/%s/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS"):
                peak = max(peak, int(line.split()[1]))
    running_seen = max(running_seen, call("/_emulator/state?lists=0")["splunk_searches"]["peak_concurrent"])
    time.sleep(0.05)
print(json.dumps({"latencies": latencies, "peak_rss_kb": peak, "concurrent": running_seen}))
PY
)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM $LISTENER; wait $LISTENER || true
RECEIPTS=$(cat "$WORK"/splunk/var/spool/splunk/*.stash_stackflow_interaction 2>/dev/null | grep -c '"action":"triage"' || true)
python3 - "$RESULT" "$ROWS" "$IDLE" "$LOAD" "$RECEIPTS" "$CLICKS" <<'PY'
import json, sys
result, rows, idle, load, receipts, clicks = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
assert receipts == clicks + 2, ("triage receipts", receipts, clicks + 2)
lat = sorted(result["latencies"])
pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100.0 * len(lat) + 0.5)) - 1)]
print("| rows per search | clicks | click → thread reply p50 (ms) | p99 (ms) | max (ms) | idle RSS (MB) | peak RSS, 2 searches running (MB) | searches seen at once |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
print("| %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %d |" % (rows, len(lat), pct(50), pct(99), lat[-1], idle / 1024.0,
      result["peak_rss_kb"] / 1024.0, result["concurrent"]))
print()
print("Load average (1/5/15 min) at the end of the run: %s" % load)
PY
