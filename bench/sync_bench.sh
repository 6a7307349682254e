#!/usr/bin/env bash
# Benchmark: `| stackflowsync target=soar` — `stackflow sync` (Rust) vs a splunklib
# StreamingCommand peer (bench/splunklib_peer/stackflowsync_peer.py) on the same SCP v2 input
# stream and the same loopback emulator (splunkd KV store + SOAR), against the floor (gunzip +
# csv-crate parse of the same execute body). PRODUCT §8: ≥ 20× splunklib's records/s and
# within 2× of the floor.
#
# Input: the Splunk 6.3 `sum.map` recording (getinfo + one execute chunk, 50,000 records × 48
# columns, 16 MB) with getinfo rewritten for stackflowsync and an `event_id` column (E1…E50000)
# appended; every 10th event id is a SOAR container (5,000 seeded), so each run sends real
# batched lookups (KV store links, containers by source_data_identifier, playbook runs).
#
# usage: bench/sync_bench.sh [REPEATS]     (default 3; the table shows the best run of each)
# Output: progress on stderr, a markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}

cargo build --release -q -p stackflow -p stackflow-emulator
cargo build --release -q --example csv_floor
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q splunk-sdk
fi
WORK=$(mktemp -d /tmp/stackflow-syncbench.XXXXXX)
trap 'exec 9>&- 2>/dev/null || true; kill $EMU_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# An installed app, as splunkd would have it.
APP="$WORK/splunk/etc/apps/stackflow"
mkdir -p "$APP/linux_x86_64/bin" "$APP/local" "$WORK/splunk/var/log/splunk" "$WORK/splunk/var/spool/splunk"
cp -R app/stackflow/. "$APP/"
cp target/release/stackflow "$APP/linux_x86_64/bin/stackflow"
chmod 755 "$APP"/bin/* "$APP/linux_x86_64/bin/stackflow" 2>/dev/null || true

# The emulator runs until its stdin (fd 9) closes.
mkfifo "$WORK/emu.in"
target/release/stackflow-emulator --no-record --ca-out "$WORK/ca.pem" < "$WORK/emu.in" > "$WORK/emu.out" 2>"$WORK/emu.err" &
EMU_PID=$!
exec 9>"$WORK/emu.in"
for _ in $(seq 100); do grep -q listening "$WORK/emu.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^listening //p' "$WORK/emu.out")

cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem
CONF

# The input stream and the seeded SOAR state.
ROWS=$(python3 bench/make_sync_stream.py tests/fixtures/scpv2/sum.map.input.gz "$WORK/stream" "$URL" \
  '["target=soar"]' "$WORK/seeds.txt")
gzip -1 -c "$WORK/stream" > "$WORK/stream.gz"
python3 - "$URL" "$WORK/ca.pem" "$WORK/seeds.txt" <<'PY'
import http.client, json, ssl, sys, urllib.parse
url, ca, seeds = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca))
def post(path, body, headers={}):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    r = conn.getresponse(); text = r.read()
    if r.status != 200: sys.exit("%s: HTTP %d %s" % (path, r.status, text[:200]))
    return json.loads(text)
post("/_emulator/reset", {})
post("/_emulator/secret", {"realm": "stackflow", "username": "soar.default", "password": "soar-token"})
post("/_emulator/secret", {"realm": "stackflow", "username": "stackflow_api.default", "password": "api-token"})
statuses, severities = ["new", "open", "closed"], ["low", "medium", "high"]
for n, sdi in enumerate(open(seeds).read().split()):
    created = post("/rest/container", {"name": "Notable %s" % sdi, "label": "notable", "source_data_identifier": sdi,
                   "status": statuses[n % 3], "severity": severities[n % 3], "owner_name": "analyst%d" % (n % 7)},
                   {"ph-auth-token": "soar-token"})
    if n % 4 == 0:
        post("/rest/playbook_run", {"container_id": created["id"], "playbook_id": "local/triage", "scope": "new", "run": True},
             {"ph-auth-token": "soar-token"})
PY
echo "input: $ROWS records, $(wc -c < "$WORK/stream") bytes; $(wc -l < "$WORK/seeds.txt") SOAR containers; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# CPU time (ticks) the emulator used so far: the remote side's share of each run.
emu_cpu() { awk '{print $14 + $15}' "/proc/$EMU_PID/stat"; }

# run LABEL CMD... : REPEATS runs (stdin = the stream, stdout = a file, as splunkd would), the
# output checked each time; prints the best {"seconds","peak_rss_mb"} as JSON.
run() {
  local label=$1; shift
  local best=""
  for i in $(seq "$REPEATS"); do
    local result check emu_before
    emu_before=$(emu_cpu)
    result=$(python3 bench/measure.py "$WORK/stream" --stdout "$WORK/out" -- env SPLUNK_HOME="$WORK/splunk" "$@")
    check=$(python3 bench/check_sync_output.py "$WORK/out" "$WORK/seeds.txt" "$ROWS") || {
      echo "$label: output check failed: $check" >&2; exit 1; }
    echo "$label run $i: $result $check (emulator CPU $(python3 -c "print(round(($(emu_cpu) - $emu_before) / 100, 2))") s; load $(cut -d' ' -f1 /proc/loadavg))" >&2
    best=$(python3 -c 'import json,sys; a=[json.loads(x) for x in sys.argv[1:] if x]; print(json.dumps(min(a, key=lambda r: r["seconds"])))' "$result" "$best")
  done
  echo "$best"
}

RUST=$(run "stackflow sync" "$APP/linux_x86_64/bin/stackflow" sync)
PEER=$(run "splunklib peer" bench/.venv/bin/python bench/splunklib_peer/stackflowsync_peer.py)
FLOOR=$(target/release/examples/csv_floor "$WORK/stream.gz" "$REPEATS")
echo "floor: $FLOOR" >&2

python3 - "$ROWS" "$RUST" "$PEER" "$FLOOR" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
rows = int(sys.argv[1])
rust, peer, floor = (json.loads(x) for x in sys.argv[2:5])
floor_s = floor["gunzip_parse_seconds"]
lines = [
    ("`stackflow sync` (Rust, installed binary)", rust["seconds"], rust["peak_rss_mb"]),
    ("splunklib 2.1.1 StreamingCommand peer", peer["seconds"], peer["peak_rss_mb"]),
    ("floor: gunzip + csv-crate parse (in process)", floor_s, None),
    ("floor: csv-crate parse only (in process)", floor["parse_seconds"], None),
    ("SCP module decode + add field + encode (in process)", floor["scp_roundtrip_seconds"], None),
]
print("| implementation | seconds | records/s | peak RSS (MB) | vs splunklib | vs floor |")
print("|---|---:|---:|---:|---:|---:|")
for label, seconds, rss in lines:
    print("| %s | %.3f | %.0f | %s | %.1f× | %.2f× |" % (
        label, seconds, rows / seconds, "%.1f" % rss if rss is not None else "–",
        peer["seconds"] / seconds, seconds / floor_s))
print()
print("%d records; best of runs; load average at the end: %s" % (rows, sys.argv[5]))
PY
