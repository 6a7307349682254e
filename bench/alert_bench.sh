#!/usr/bin/env bash
# Benchmark: `stackflow alert soar` vs a Python peer (gzip + csv + json + requests) on the same
# results file and the same loopback SOAR emulator. Reports rows/s, peak RSS and the ratios.
#
# usage: bench/alert_bench.sh [ROWS ...]        (default: 10000 100000)
# Output: a markdown table on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(10000 100000)

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
bench_venv
PY_PEER=bench/.venv/bin/python
bench_install_and_emulate bench

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
prepare() { control /_emulator/reset '{}' >/dev/null; control /_emulator/secret '{"realm":"stackflow","username":"soar.default","password":"soar-token"}' >/dev/null; rm -rf "$WORK/splunk/var/spool/stackflow"; }

cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem
CONF

echo "| rows | implementation | wall s | rows/s (wall) | CPU s | rows per CPU s | peak RSS (MB) | artifacts at SOAR |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for rows in "${ROWS[@]}"; do
  python3 bench/make_results.py "$WORK/results_$rows.csv.gz" "$rows"
  python3 - "$WORK" "$URL" "$rows" > "$WORK/payload_$rows.json" <<'PY'
import json, sys
work, url, rows = sys.argv[1:4]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5bench_at_1763750000_%s" % rows,
  "search_name": "Benchmark", "results_file": "%s/results_%s.csv.gz" % (work, rows), "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh", "configuration": {"account": "default"}}))
PY
  run() { # run LABEL CMD...
    local label=$1; shift
    prepare
    local result; result=$(python3 bench/measure.py "$WORK/payload_$rows.json" -- env SPLUNK_HOME="$WORK/splunk" "$@")
    local count; count=$(artifact_count)
    python3 - "$rows" "$label" "$result" "$count" <<'PY'
import json, sys
rows, label, result, count = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ok = "" if result["exit"] == 0 else " (exit %d)" % result["exit"]
print("| %s | %s%s | %.3f | %.0f | %.3f | %.0f | %.1f | %s |" % (rows, label, ok, result["seconds"], int(rows) / result["seconds"],
      result["cpu_seconds"], int(rows) / max(result["cpu_seconds"], 1e-9), result["peak_rss_mb"], count))
PY
  }
  run "stackflow (Rust)" "$APP/bin/stackflow_soar.sh" --execute
  run "Python peer, 1 artifact/request (export-app style)" $PY_PEER bench/python_peer_soar.py --url "$URL" --token soar-token --ca "$WORK/ca.pem" --batch 1
  run "Python peer, 500 artifacts/request" $PY_PEER bench/python_peer_soar.py --url "$URL" --token soar-token --ca "$WORK/ca.pem" --batch 500
done
