# Shared by the bench scripts (source it from the repository root):
#   bench_venv                  the peers' Python environment (requests, splunk-sdk) in bench/.venv
#   bench_install_and_emulate   a temp SPLUNK_HOME with the app and the release binary ($WORK, $APP),
#                               and the loopback emulator running until exit ($URL, $WORK/ca.pem)
bench_venv() {
  [ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
  bench/.venv/bin/python -c 'import requests, splunklib' 2>/dev/null ||
    bench/.venv/bin/pip install -q requests==2.32.3 splunk-sdk==2.1.1
}

bench_install_and_emulate() {
  WORK=$(mktemp -d "/tmp/stackflow-$1.XXXXXX")
  trap 'exec 9>&- 2>/dev/null || true; kill $EMU_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
  # An installed app, as splunkd would have it.
  APP="$WORK/splunk/etc/apps/stackflow"
  mkdir -p "$APP/linux_x86_64/bin" "$APP/local" "$WORK/splunk/var/log/splunk" "$WORK/splunk/var/spool/splunk"
  cp -R app/stackflow/. "$APP/"
  cp "${CARGO_TARGET_DIR:-target}/release/stackflow" "$APP/linux_x86_64/bin/stackflow"
  chmod 755 "$APP"/bin/* "$APP/linux_x86_64/bin/stackflow" 2>/dev/null || true
  # The emulator runs until its stdin (fd 9) closes.
  mkfifo "$WORK/emu.in"
  "${CARGO_TARGET_DIR:-target}/release/stackflow-emulator" --no-record --ca-out "$WORK/ca.pem" < "$WORK/emu.in" > "$WORK/emu.out" 2>"$WORK/emu.err" &
  EMU_PID=$!
  exec 9>"$WORK/emu.in"
  for _ in $(seq 100); do grep -q listening "$WORK/emu.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(sed -n 's/^listening //p' "$WORK/emu.out")
}
