#!/usr/bin/env python3
"""Run a command (stdin from a file), report its wall time, CPU time and peak RSS as JSON, from
the command's own rusage (posix_spawn + wait4): unlike measure.py (fork + getrusage of all
children) no copy of the Python interpreter is counted, which matters for commands of a few
milliseconds (a flush while the remote is down).

usage: measure_child.py STDIN_FILE STDOUT_FILE -- CMD ARGS...
Prints {"seconds": s, "cpu_seconds": c, "peak_rss_mb": m, "hwm_mb": h, "exit": code}; the
command's stderr goes to this script's stderr. `peak_rss_mb` is wait4's ru_maxrss, which on
some kernels includes the spawning interpreter's image before exec (a floor of ~13 MB);
`hwm_mb` is the command's own VmHWM from /proc, sampled every 20 ms while it runs (0 for a
command too quick to be sampled).
"""
import json
import os
import shutil
import sys
import time


def main():
    stdin_file, stdout_file = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    path = cmd[0] if os.sep in cmd[0] else shutil.which(cmd[0])
    stdin = os.open(stdin_file, os.O_RDONLY)
    stdout = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1)]
    start = time.perf_counter()
    pid = os.posix_spawn(path, cmd, os.environ, file_actions=actions)
    hwm_kb = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        try:
            with open("/proc/%d/status" % pid) as proc:
                for line in proc:
                    if line.startswith("VmHWM:"):
                        hwm_kb = max(hwm_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024.0, "hwm_mb": hwm_kb / 1024.0,
                      "exit": os.waitstatus_to_exitcode(status)}))


if __name__ == "__main__":
    main()
