#!/usr/bin/env bash
# Benchmark (issue 27, PRODUCT §18): a day-long SOAR outage at SOC scale, for each store (file
# spool, KV store spool on the emulator's splunkd). One `grouping=row` alert of N rows (default
# 100,000) runs while SOAR answers 503, so N items are spooled; then, SOAR still down, three
# scheduled flushes (each must probe once and read nothing else) and a `spool list`; then SOAR
# answers again and scheduled flushes run until the spool is empty. Checked at the emulator:
# every container exactly once; counted: files left under the spool root. The emulator's
# ceiling is measured in the same run (examples/soar_ceiling.rs: one keep-alive client posting
# the same container + artifact requests, nothing else), so each drain rate is also a ratio.
#
# usage: bench/backlog_bench.sh [N]        STORES="file" to run one store only
# Output: markdown tables on stdout (paste into docs/benchmarks.md). Each step is measured by
# bench/measure_child.py (the command's own rusage; peak RSS as its sampled VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
STORES=${STORES:-file kvstore}

cargo build --release -q -p stackflow -p stackflow-emulator
cargo build --release -q -p stackflow --example soar_ceiling
source bench/lib.sh
bench_install_and_emulate backlog
BIN="$APP/linux_x86_64/bin/stackflow"
SPOOL="$WORK/splunk/var/spool/stackflow"

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
soar_down() {
  control /_emulator/fault '{"path_prefix":"/rest/container","times":100000000,"fault":{"type":"status","status":503,"body":"{\"failed\":true}"}}' >/dev/null
}
echo "test-session-key" > "$WORK/session_key"
python3 bench/make_results.py "$WORK/results.csv.gz" "$N" >/dev/null
python3 - "$WORK" "$URL" > "$WORK/payload.json" <<'PY'
import json, sys
work, url = sys.argv[1:3]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5backlog_at_1763750000_1",
  "search_name": "Backlog", "results_file": "%s/results.csv.gz" % work, "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh", "configuration": {"account": "default", "grouping": "row"}}))
PY

conf() { # conf STORE
  cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem

[splunkd]
uri = $URL

[delivery]
store = $1
max_attempts = 1
CONF
}

measure() { # measure NAME STDIN STDOUT_FILE -- CMD…  → one JSON line in $WORK/m.$store
  local name=$1 in=$2 out=$3; shift 4
  python3 bench/measure_child.py "$in" "$out" -- "$@" 2>>"$WORK/stderr.$store" | python3 -c "import json,sys; d=json.load(sys.stdin); d['step']='$name'; print(json.dumps(d))" >> "$WORK/m.$store"
}

# The ceiling: the same SOAR requests from a client that does nothing else.
control /_emulator/reset '{}' >/dev/null
CEILING=$(SOAR_TOKEN=soar-token "${CARGO_TARGET_DIR:-target}/release/examples/soar_ceiling" "$N" "$URL" "$WORK/ca.pem")
echo "ceiling: $CEILING" >&2

for store in $STORES; do
  : > "$WORK/m.$store"
  control /_emulator/reset '{}' >/dev/null
  control /_emulator/secret '{"realm":"stackflow","username":"soar.default","password":"soar-token"}' >/dev/null
  rm -rf "$SPOOL"
  conf "$store"
  soar_down
  # The backlog: one alert, N rows, one container each, every send refused.
  measure alert "$WORK/payload.json" "$WORK/alert.out" -- env SPLUNK_HOME="$WORK/splunk" "$APP/bin/stackflow_soar.sh" --execute < "$WORK/payload.json" || true
  for i in 1 2 3; do
    measure "down$i" "$WORK/session_key" "$WORK/down$i.out" -- env SPLUNK_HOME="$WORK/splunk" "$BIN" spool flush --splunkd-uri "$URL"
  done
  measure list "$WORK/session_key" "$WORK/list.out" -- env SPLUNK_HOME="$WORK/splunk" "$BIN" spool list --json
  control /_emulator/clear_faults '{}' >/dev/null
  runs=0
  while :; do
    runs=$((runs + 1))
    # shellcheck disable=SC2086 # WRAP is a command prefix (e.g. "strace -c -f -o FILE"), split on purpose
    measure "drain$runs" "$WORK/session_key" "$WORK/drain$runs.out" -- env SPLUNK_HOME="$WORK/splunk" ${WRAP:-} "$BIN" spool flush --splunkd-uri "$URL"
    left=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['pending'])" "$WORK/drain$runs.out")
    [ "$left" = 0 ] && break
    [ "$runs" -ge 100 ] && { echo "the drain does not end" >&2; break; }
  done
  control "/_emulator/state?lists=1" "" > "$WORK/state.$store.json"
  find "$SPOOL" -type f | sed "s#^$SPOOL/##" | awk -F/ '{print $1}' | sort | uniq -c > "$WORK/files.$store"
  python3 - "$store" "$N" "$WORK" "$CEILING" <<'PY'
import json, sys, collections
store, n, work, ceiling = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
steps = [json.loads(l) for l in open("%s/m.%s" % (work, store))]
by = {s["step"]: s for s in steps}
state = json.load(open("%s/state.%s.json" % (work, store)))
containers = state["soar"]["containers"]
sdis = collections.Counter(c.get("source_data_identifier") for c in containers)
once = len(sdis) == n and max(sdis.values()) == 1
files = open("%s/files.%s" % (work, store)).read().split("\n")
files = ", ".join(" ".join(l.split()[::-1]) for l in files if l.strip()) or "none"
drains = [s for s in steps if s["step"].startswith("drain")]
wall = sum(s["seconds"] for s in drains); cpu = sum(s["cpu_seconds"] for s in drains)
rate = n / wall
print("#### %s store, %s items" % (store, f"{n:,}"))
print()
print("| step | wall s | CPU s | VmHWM MB (sampled) | exit |")
print("|---|---:|---:|---:|---:|")
for s in steps:
    print("| %s | %.3f | %.3f | %s | %d |" % (s["step"], s["seconds"], s["cpu_seconds"],
          "%.1f" % s["hwm_mb"] if s["hwm_mb"] else "–", s["exit"]))
print()
print("- recovery: %d flush(es), %.1f s, **%.0f items/s**, %.1f µs CPU per item, peak RSS %.1f MB" % (
    len(drains), wall, rate, cpu / n * 1e6, max(s["hwm_mb"] for s in drains)))
print("- emulator ceiling (same requests, one client): %.0f items/s → drain at **%.2f** of the ceiling" % (
    ceiling["items_per_s"], rate / ceiling["items_per_s"]))
print("- exactly once at the emulator: %s (%d containers, %d distinct)" % ("yes" if once else "NO", len(containers), len(sdis)))
print("- files left under the spool root (by folder): %s" % files)
print()
PY
done
