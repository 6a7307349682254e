#!/usr/bin/env bash
# Benchmark (PRODUCT §15 "Checkpoints never trust the remote's clock blindly"): peak RSS of one
# `stackflow_state` poll (the modular input as splunkd starts it) when SOAR answers the
# container query with a page far larger than asked for: the emulator puts N unrelated
# containers (default 100,000) in front of the linked one (`soar_page_padding`). The target is
# a peak RSS under 64 MB whatever a page holds; the figure is `/usr/bin/time -v`'s "Maximum
# resident set size" (VmHWM) of the input process.
#
# usage: bench/state_page_bench.sh [N]
# Output: a markdown table on stdout (paste into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PADDING=${1:-100000}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time) for the peak RSS" >&2; exit 1; }

cargo build --release -q -p stackflow -p stackflow-emulator
source bench/lib.sh
bench_install_and_emulate state

call() { # call METHOD PATH JSON [HEADER]: the emulator's own APIs
  python3 - "$URL" "$WORK/ca.pem" "$@" <<'PY'
import ssl, sys, urllib.request
url, ca, method, path, body = sys.argv[1:6]
headers = {"Content-Type": "application/json"}
for header in sys.argv[6:]:
    name, value = header.split(": ", 1)
    headers[name] = value
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(url + path, data=body.encode() if body else None, method=method, headers=headers)
print(urllib.request.urlopen(req, context=ctx).read().decode())
PY
}

cat > "$APP/local/stackflow.conf" <<CONF
[soar:default]
url = $URL
ca_file = $WORK/ca.pem
CONF
call POST /_emulator/secret '{"realm":"stackflow","username":"soar.default","password":"soar-token"}' >/dev/null
CONTAINER=$(call POST /rest/container '{"name":"linked","label":"events","source_data_identifier":"bench-1"}' "ph-auth-token: soar-token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
NOW=$(date +%s)
call POST /servicesNS/nobody/stackflow/storage/collections/data/stackflow_links \
  "{\"_key\":\"k1\",\"event_id\":\"e1\",\"soar_container_id\":$CONTAINER,\"updated\":$NOW}" \
  "Authorization: Splunk test-session-key" >/dev/null

CHECKPOINTS="$WORK/checkpoints"
poll() { # poll PADDING: one run on a fresh checkpoint; prints "peak_kB events seconds"
  call POST /_emulator/config "{\"soar_page_padding\": $1}" >/dev/null
  rm -rf "$CHECKPOINTS" && mkdir -p "$CHECKPOINTS"
  cat > "$WORK/input.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<input><server_host>sh</server_host><server_uri>$URL</server_uri><session_key>test-session-key</session_key>
<checkpoint_dir>$CHECKPOINTS</checkpoint_dir><configuration><stanza name="stackflow_state://default" app="stackflow">
<param name="interval">300</param><param name="index">stackflow</param></stanza></configuration></input>
XML
  SPLUNK_HOME="$WORK/splunk" /usr/bin/time -v "$APP/bin/stackflow_state.sh" < "$WORK/input.xml" \
    > "$WORK/events.xml" 2> "$WORK/time.txt"
  local peak seconds events
  peak=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
  seconds=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
  events=$(grep -o '<event ' "$WORK/events.xml" | wc -l)
  echo "$peak $events $seconds"
}

echo "| containers in the page | peak RSS | events | wall time |"
echo "|---:|---:|---:|---:|"
for padding in 0 "$PADDING"; do
  read -r peak events seconds < <(poll "$padding")
  printf '| %s | %.1f MB | %s | %s |\n' "$((padding + 1))" "$(echo "$peak / 1024" | bc -l)" "$events" "$seconds"
done
