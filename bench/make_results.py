#!/usr/bin/env python3
"""Write a Splunk-style results.csv.gz for benchmarks: N rows x ~20 fields.

Splunk's serializer: header of all fields then one __mv_<field> column each, a cell quoted iff it
holds a character outside [A-Za-z0-9], LF line ends, multivalue cells as "a\nb" + "$a$;$b$".
Every 10th row has a two-valued `src` (so the SOAR mapping splits it into two artifacts).

usage: make_results.py OUT.csv.gz [ROWS]
"""
import gzip
import random
import re
import sys

FIELDS = ["_time", "src", "dest", "user", "src_user", "action", "app", "bytes_in", "bytes_out",
          "dest_port", "src_port", "protocol", "url", "file_hash", "file_name", "dvc", "signature",
          "severity", "category", "vendor_field"]
PLAIN = re.compile(r"^[A-Za-z0-9]*$")


def quote(value):
    if PLAIN.match(value):
        return value
    return '"' + value.replace('"', '""') + '"'


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    rnd = random.Random(42)
    with gzip.open(out, "wt", encoding="utf-8", newline="") as f:
        f.write(",".join([quote(n) for n in FIELDS] + [quote("__mv_" + n) for n in FIELDS]) + "\n")
        for i in range(rows):
            values = {
                "_time": "%d.%03d" % (1763750000 + i, i % 1000),
                "src": "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)),
                "dest": "192.168.%d.%d" % (rnd.randrange(256), rnd.randrange(256)),
                "user": "user%d" % rnd.randrange(5000),
                "src_user": "svc_%d" % rnd.randrange(100),
                "action": rnd.choice(["allowed", "blocked"]),
                "app": rnd.choice(["ssh", "https", "rdp"]),
                "bytes_in": str(rnd.randrange(10 ** 6)),
                "bytes_out": str(rnd.randrange(10 ** 6)),
                "dest_port": str(rnd.choice([22, 443, 3389])),
                "src_port": str(rnd.randrange(1024, 65535)),
                "protocol": "tcp",
                "url": "https://example.com/path/%d?q=%d" % (i, rnd.randrange(1000)),
                "file_hash": "%032x" % rnd.getrandbits(128),
                "file_name": "file_%d.exe" % i,
                "dvc": "fw-%d" % (i % 7),
                "signature": "Brute force attempt #%d, \"quoted\"" % i,
                "severity": rnd.choice(["low", "medium", "high", "critical"]),
                "category": "authentication",
                "vendor_field": "x" * rnd.randrange(5, 40),
            }
            mv = {n: "" for n in FIELDS}
            if i % 10 == 0:
                second = "172.16.%d.%d" % (rnd.randrange(256), rnd.randrange(256))
                mv["src"] = "$%s$;$%s$" % (values["src"], second)
                values["src"] = values["src"] + "\n" + second
            f.write(",".join([quote(values[n]) for n in FIELDS] + [quote(mv[n]) for n in FIELDS]) + "\n")


if __name__ == "__main__":
    main()
