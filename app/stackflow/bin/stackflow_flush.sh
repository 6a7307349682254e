#!/bin/sh
# StackFlow for Splunk: scripted input (every 60 s) that re-sends spooled deliveries.
# splunkd writes the session key on stdin (passAuth).
exec "$(dirname -- "$0")/stackflow" spool flush "$@"
