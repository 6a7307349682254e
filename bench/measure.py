#!/usr/bin/env python3
"""Run a command (stdin from a file), report wall time and the child's peak RSS as JSON.

usage: measure.py STDIN_FILE [--stdout FILE] -- CMD ARGS...
(stdout goes to FILE when given, else it is discarded.)
Prints {"seconds": s, "cpu_seconds": c, "peak_rss_mb": m, "exit": code} (cpu = user + system time
of the child). Peak RSS comes from getrusage(RUSAGE_CHILDREN),
i.e. the largest resident set of any waited-for child (the command itself; launch scripts exec).
"""
import json
import resource
import subprocess
import sys
import time


def main():
    stdin_file = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    head = sys.argv[2:sys.argv.index("--")]
    stdout_file = head[head.index("--stdout") + 1] if "--stdout" in head else None
    with open(stdin_file, "rb") as stdin, open(stdout_file or "/dev/null", "wb") as stdout:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-4000:])
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": peak_kb / 1024.0, "exit": proc.returncode}))


if __name__ == "__main__":
    main()
