#!/usr/bin/env bash
# Benchmark: the StackFlow and Slack alert actions in `mode=row` (one request per row) against
# the loopback emulator (no rate limit: the emulator answers as fast as it can; Slack's real
# 1 message/second/channel would bound a real run at 1 row per second and channel). Slack posts
# at most `max_rows` (1..1000, here 1000) messages in mode=row and sums up the rest in one more.
# Reports wall and CPU time (user + system), CPU per item and peak RSS of the installed app's
# action, run as splunkd runs it.
#
# usage: bench/row_mode_bench.sh [ROWS]        (default: 10000)
# Output: a markdown table on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000}

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
bench_install_and_emulate rowmode

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
prepare() {
  control /_emulator/reset '{}' >/dev/null
  control /_emulator/secret '{"realm":"stackflow","username":"stackflow.default","password":"sf-secret"}' >/dev/null
  control /_emulator/secret '{"realm":"stackflow","username":"slack.default","password":"xoxb-test"}' >/dev/null
  rm -rf "$WORK/splunk/var/spool/stackflow" "$WORK/splunk/var/log/splunk"/* "$WORK/splunk/var/spool/splunk"/*
}

cat > "$APP/local/stackflow.conf" <<CONF
[stackflow:default]
webhook_url = $URL/prod/api/webhooks/inbound/splunk
api_url = $URL/prod/api
ca_file = $WORK/ca.pem

[slack:default]
api_url = $URL/api
channel = #soc
ca_file = $WORK/ca.pem
CONF

python3 bench/make_results.py "$WORK/results.csv.gz" "$ROWS"
payload() { # payload ACTION_PARAMS_JSON
  python3 - "$WORK" "$URL" "$ROWS" "$1" <<'PY'
import json, sys
work, url, rows, params = sys.argv[1:5]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5rows_at_1763750000_%s" % rows,
  "search_name": "Benchmark", "results_file": "%s/results.csv.gz" % work, "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh",
  "configuration": json.loads(params)}))
PY
}
payload '{"account": "default", "mode": "row"}' > "$WORK/payload_incident.json"
payload '{"account": "default", "mode": "row", "channel": "#soc", "max_rows": "1000"}' > "$WORK/payload_slack.json"

echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| rows | action | exit | wall s | CPU s | CPU ms per item | items per wall s | peak RSS (MB) |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for action in incident slack; do
  prepare
  result=$(python3 bench/measure.py "$WORK/payload_$action.json" -- env SPLUNK_HOME="$WORK/splunk" "$APP/bin/stackflow_$action.sh" --execute)
  python3 - "$ROWS" "$action" "$result" <<'PY'
import json, sys
rows, action, r = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
print("| %s | stackflow alert %s, mode=row | %d | %.3f | %.3f | %.3f | %.0f | %.1f |" % (f"{rows:,}", action, r["exit"],
      r["seconds"], r["cpu_seconds"], 1000 * r["cpu_seconds"] / rows, rows / r["seconds"], r["peak_rss_mb"]))
PY
done
echo
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
