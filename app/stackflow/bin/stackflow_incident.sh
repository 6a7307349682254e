#!/bin/sh
# StackFlow for Splunk: alert action stackflow_incident. splunkd runs this file (found by the
# stanza name, no alert.execute.cmd) with --execute and the JSON payload on stdin.
exec "$(dirname -- "$0")/stackflow" alert incident "$@"
