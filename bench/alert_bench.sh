#!/usr/bin/env bash
# Benchmark: `stackflow alert soar` vs its floor (examples/soar_floor.rs: gunzip + CSV + the same
# CEF mapping written as JSON by the action's own ArtifactWriter + TLS posts of up to 500 artifacts,
# nothing else) and a Python peer
# (gzip + csv + json + requests) on the same results file and the same loopback SOAR emulator.
# Reports wall and CPU time (user + system), peak RSS, and the ratios against floor and peer.
#
# usage: bench/alert_bench.sh [ROWS ...]        (default: 10000 100000 1000000)
#   PEER1_MAX_ROWS (default 10000): the one-artifact-per-request peer runs only up to this size
#   (it takes ~100 s per 100,000 rows).
# Output: markdown tables on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(10000 100000 1000000)
PEER1_MAX_ROWS=${PEER1_MAX_ROWS:-10000}
BIN=${CARGO_TARGET_DIR:-target}/release

cargo build --release -q -p stackflow -p stackflow-emulator
cargo build --release -q -p stackflow --example soar_floor
source bench/lib.sh
bench_venv
PY_PEER=bench/.venv/bin/python
bench_install_and_emulate bench
RESULTS="$WORK/results.jsonl"

control() { # control PATH JSON
  python3 - "$URL" "$WORK/ca.pem" "$1" "$2" <<'PY'
import json, ssl, sys, urllib.request
url, ca, path, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(url + path, data=body.encode() if body else None, method="POST" if body else "GET",
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, context=ctx).read().decode())
PY
}
artifact_count() { control "/_emulator/state?lists=0" "" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["soar"]["artifacts_count"])'; }
prepare() { control /_emulator/reset '{}' >/dev/null; control /_emulator/secret '{"realm":"stackflow","username":"soar.default","password":"soar-token"}' >/dev/null; rm -rf "$WORK/splunk/var/spool/stackflow" "$WORK/splunk/var/log/splunk"/*; }

cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem
CONF

echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| rows | implementation | wall s | CPU s | rows per CPU s | peak RSS (MB) | artifacts at SOAR |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for rows in "${ROWS[@]}"; do
  python3 bench/make_results.py "$WORK/results_$rows.csv.gz" "$rows"
  python3 - "$WORK" "$URL" "$rows" > "$WORK/payload_$rows.json" <<'PY'
import json, sys
work, url, rows = sys.argv[1:4]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5bench_at_1763750000_%s" % rows,
  "search_name": "Benchmark", "results_file": "%s/results_%s.csv.gz" % (work, rows), "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh", "configuration": {"account": "default"}}))
PY
  run() { # run KEY LABEL CMD...
    local key=$1 label=$2; shift 2
    prepare
    local result; result=$(python3 bench/measure.py "$WORK/payload_$rows.json" -- env SPLUNK_HOME="$WORK/splunk" SOAR_TOKEN=soar-token "$@")
    local count; count=$(artifact_count)
    python3 - "$rows" "$key" "$label" "$result" "$count" "$RESULTS" <<'PY'
import json, sys
rows, key, label, result, count, out = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], sys.argv[6]
ok = "" if result["exit"] == 0 else " (exit %d)" % result["exit"]
print("| %s | %s%s | %.3f | %.3f | %.0f | %.1f | %s |" % (f"{int(rows):,}", label, ok, result["seconds"],
      result["cpu_seconds"], int(rows) / max(result["cpu_seconds"], 1e-9), result["peak_rss_mb"], f"{int(count):,}"))
with open(out, "a") as f:
    f.write(json.dumps(dict(result, rows=int(rows), key=key, artifacts=int(count))) + "\n")
PY
  }
  run action "stackflow alert soar (installed app)" "$APP/bin/stackflow_soar.sh" --execute
  run floor "floor: gunzip + CSV + CEF map + JSON + TLS (examples/soar_floor.rs)" "$BIN/examples/soar_floor" "$WORK/results_$rows.csv.gz" "$URL" "$WORK/ca.pem"
  run peer500 "Python peer, 500 artifacts/request" $PY_PEER bench/python_peer_soar.py --url "$URL" --token soar-token --ca "$WORK/ca.pem" --batch 500
  if [ "$rows" -le "$PEER1_MAX_ROWS" ]; then
    run peer1 "Python peer, 1 artifact/request (export-app style)" $PY_PEER bench/python_peer_soar.py --url "$URL" --token soar-token --ca "$WORK/ca.pem" --batch 1
  fi
done
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$RESULTS" <<'PY'
import json, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["rows"], r["key"])] = r
print("| rows | action CPU / floor CPU | batched peer CPU / action CPU | export-style peer CPU / action CPU | action peak RSS (MB) |")
print("|---:|---:|---:|---:|---:|")
for rows in sorted({k[0] for k in runs}):
    a = runs[(rows, "action")]
    cell = lambda key, f: ("%.2f×" % f(runs[(rows, key)])) if (rows, key) in runs else "–"
    print("| %s | %s | %s | %s | %.1f |" % (f"{rows:,}", cell("floor", lambda r: a["cpu_seconds"] / r["cpu_seconds"]),
          cell("peer500", lambda r: r["cpu_seconds"] / a["cpu_seconds"]),
          cell("peer1", lambda r: r["cpu_seconds"] / a["cpu_seconds"]), a["peak_rss_mb"]))
PY
