#!/usr/bin/env bash
# Benchmark (PRODUCT §14 "Recovery"): N spooled SOAR items (default 10,000) drained by one
# scheduled `stackflow spool flush` against the loopback emulator, for each store: the file
# spool (standalone search head) and the KV store spool (search head cluster member; the
# emulator's splunkd KV store). Reports items/s; the §14 target is >= 1,000 items/s.
#
# usage: bench/spool_bench.sh [ITEMS]
# Output: a markdown table on stdout (paste into docs/benchmarks.md), with the load average
# before and after each store's run.
# Profiling: STORES="kvstore" BIN=profiling WRAP="perf record -g -o /tmp/flush.data" runs only
# the named stores, installs target/<BIN>/stackflow (`cargo build --profile profiling`), and
# runs the timed flush under WRAP (then the figures include the wrapper's overhead).
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-10000}
STORES=${STORES:-file kvstore}

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
bench_install_and_emulate spool
if [ -n "${BIN:-}" ]; then
  cp "${CARGO_TARGET_DIR:-target}/$BIN/stackflow" "$APP/linux_x86_64/bin/stackflow"
fi

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
count() { control "/_emulator/state?lists=0" "" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
soar_down_once() {
  control /_emulator/fault '{"path_prefix":"/rest/container","times":1,"fault":{"type":"status","status":503,"body":"{\"failed\":true}"}}' >/dev/null
}
echo "test-session-key" > "$WORK/session_key"
python3 bench/make_results.py "$WORK/results.csv.gz" 1
python3 - "$WORK" "$URL" > "$WORK/payload.json" <<'PY'
import json, sys
work, url = sys.argv[1:3]
print(json.dumps({"app": "search", "owner": "admin", "sid": "scheduler__admin__search__RMD5spool_at_1763750000_1",
  "search_name": "Benchmark", "results_file": "%s/results.csv.gz" % work, "results_link": "http://sh:8000/x",
  "server_uri": url, "session_key": "test-session-key", "server_host": "sh", "configuration": {"account": "default"}}))
PY

# Spools one real item (SOAR refuses the alert's only attempt), then clones it N times with
# distinct dedupe keys (and so distinct container source data identifiers and item ids).
seed() {
  control /_emulator/reset '{}' >/dev/null
  control /_emulator/secret '{"realm":"stackflow","username":"soar.default","password":"soar-token"}' >/dev/null
  rm -rf "$WORK/splunk/var/spool/stackflow"
  soar_down_once
  "$APP/bin/stackflow_soar.sh" --execute < "$WORK/payload.json" 2>/dev/null && { echo "the seed alert was not spooled" >&2; exit 1; } || true
  python3 - "$WORK/splunk/var/spool/stackflow/pending" "$ITEMS" <<'PY'
import glob, json, os, sys
pending, n = sys.argv[1], int(sys.argv[2])
[path] = glob.glob(os.path.join(pending, "*.json"))
text = open(path).read()
key = json.loads(text)["item"]["dedupe_key"]
def item_id(k):  # FNV-1a 128, as src/delivery/spool.rs item_id
    h = 0x6c62272e07bb014262b821756295c58d
    for b in k.encode():
        h ^= b
        h = (h * 0x0000000001000000000000000000013B) % (1 << 128)
    return "%032x" % h
old_id = item_id(key)
os.remove(path)
# The dedupe key is "<container source data identifier>:<batch>": clone the identifier.
sdi, batch = key.rsplit(":", 1)
for i in range(n):
    new_key = "%s-clone%d:%s" % (sdi, i, batch)
    record = json.loads(text.replace(old_id, item_id(new_key)).replace(sdi, "%s-clone%d" % (sdi, i)))
    assert record["item"]["dedupe_key"] == new_key
    record["first_attempt_unix"] += i * 0.001  # oldest first is observable
    with open(os.path.join(pending, item_id(new_key) + ".json"), "w") as f:
        json.dump(record, f)
PY
}

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
# one run drains the whole backlog, so that its rate is measured
flush_max_s = 3600
CONF
}

echo "| store | items | wall s | items/s | CPU s | peak RSS (MB) | containers at SOAR | exit | load avg before → after |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for store in $STORES; do
  # Seeded as file spool items (a KV store member's alert run would spool into the KV store).
  conf file
  seed
  conf "$store"
  if [ "$store" = kvstore ]; then
    # A first flush while SOAR still refuses moves the local items into the KV store (one probe).
    soar_down_once
    env SPLUNK_HOME="$WORK/splunk" "$APP/linux_x86_64/bin/stackflow" spool flush < "$WORK/session_key" >/dev/null 2>&1 || true
    [ -z "$(ls "$WORK/splunk/var/spool/stackflow/pending")" ] || { echo "migration left files" >&2; exit 1; }
  fi
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  # shellcheck disable=SC2086 # WRAP is a command prefix, split on purpose
  result=$(python3 bench/measure.py "$WORK/session_key" -- env SPLUNK_HOME="$WORK/splunk" ${WRAP:-} "$APP/linux_x86_64/bin/stackflow" spool flush --splunkd-uri "$URL")
  load_after=$(cut -d' ' -f1 /proc/loadavg)
  containers=$(count 's["soar"]["containers_count"]')
  python3 - "$store" "$ITEMS" "$result" "$containers" "$load_before → $load_after" <<'PY'
import json, sys
store, items, result, containers, load = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
print("| %s | %d | %.3f | %.0f | %.3f | %.1f | %s | %d | %s |" % (store, items, result["seconds"], items / result["seconds"],
      result["cpu_seconds"], result["peak_rss_mb"], containers, result["exit"], load))
PY
done
