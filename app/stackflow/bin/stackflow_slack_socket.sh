#!/bin/sh
# StackFlow for Splunk: modular input stackflow_slack_socket (README/inputs.conf.spec). splunkd
# runs this file by the scheme's name with --scheme, --validate-arguments or no argument, and
# writes its XML configuration (session key, [stackflow_slack_socket://<account>]) on stdin.
exec "$(dirname -- "$0")/stackflow" slack listen "$@"
