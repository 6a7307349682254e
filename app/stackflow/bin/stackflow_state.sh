#!/bin/sh
# StackFlow for Splunk: modular input stackflow_state (README/inputs.conf.spec). splunkd runs
# this file by the scheme's name with --scheme, --validate-arguments or no argument, and
# writes its XML configuration (session key, checkpoint_dir, stanzas) on stdin.
exec "$(dirname -- "$0")/stackflow" state "$@"
