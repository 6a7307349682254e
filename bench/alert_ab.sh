#!/usr/bin/env bash
# A/B: two (or more) builds of `stackflow` running the same SOAR alert against one emulator,
# alternately, so that the machine's drifting speed weighs on each alike. How the alert's CPU
# changes were judged (docs/benchmarks.md); bench/alert_bench.sh gives the figures against the
# floor and the peer.
#
# usage: bench/alert_ab.sh ROWS BINARY_A BINARY_B [...]      (RUNS=n rounds, default 6)
#   a binary may be prefixed with environment settings: "GLIBC_TUNABLES=...@path/to/stackflow"
# Output: one line per run (binary, CPU s = user + system, peak RSS KB), then the means.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,9p "$0"; exit 2; }
rows=$1; shift
cargo build --release -q -p stackflow-emulator
source bench/lib.sh
bench_install_and_emulate ab
cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem
CONF
python3 bench/make_results.py "$WORK/results.csv.gz" "$rows"
python3 - "$WORK" "$URL" "$rows" > "$WORK/payload.json" <<'PY'
import json, sys
work, url, rows = sys.argv[1:4]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5bench_at_1763750000_%s" % rows,
  "search_name": "Benchmark", "results_file": "%s/results.csv.gz" % work, "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh", "configuration": {"account": "default"}}))
PY
reset() {
python3 - "$URL" "$WORK/ca.pem" <<'PY'
import json, ssl, sys, urllib.request
url, ca = sys.argv[1:3]
ctx = ssl.create_default_context(cafile=ca)
for path, body in (("/_emulator/reset", {}), ("/_emulator/secret", {"realm":"stackflow","username":"soar.default","password":"soar-token"})):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, context=ctx).read()
PY
}
: > "$WORK/runs"
for _ in $(seq "${RUNS:-6}"); do
  for spec in "$@"; do
    bin=${spec##*@}; envs=${spec%@*}; [ "$envs" = "$spec" ] && envs=
    cp "$bin" "$APP/linux_x86_64/bin/stackflow"
    reset
    rm -rf "$WORK/splunk/var/spool/stackflow" "$WORK/splunk/var/log/splunk"/* "$WORK"/splunk/var/spool/splunk/*
    /usr/bin/time -o "$WORK/t" -f "%U %S %M %x" env $envs SPLUNK_HOME="$WORK/splunk" \
      "$APP/linux_x86_64/bin/stackflow" alert soar --execute < "$WORK/payload.json" >/dev/null 2>&1 || true
    line=$(awk -v name="$spec" '/^[0-9]/{printf "%s cpu %.2f rss_kb %d exit %d\n", name, $1+$2, $3, $4}' "$WORK/t")
    echo "$line"; echo "$line" >> "$WORK/runs"
  done
done
awk '{s[$1]+=$3; n[$1]++} END {for (k in s) printf "mean %s cpu %.3f over %d runs\n", k, s[k]/n[k], n[k]}' "$WORK/runs"
