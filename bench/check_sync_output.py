#!/usr/bin/env python3
"""Checks the output of a `| stackflowsync` run (SCP v2 replies, as splunkd would read them).

usage: check_sync_output.py OUTPUT SEED_IDS EXPECTED_ROWS
Prints {"replies", "rows", "with_soar", "ok", "problems"} as JSON: every reply chunk parses, the
rows of the execute replies add up to EXPECTED_ROWS, every row whose event_id is in SEED_IDS
carries soar_container_id, soar_status and soar_url with sync_action=unchanged, and every other
row has sync_action=not_found and no soar_container_id. SEED_IDS `-`: the rows have no event_id
(pass-through run): every row must be not_found, soar_* columns are not required.
Exit status 1 when not ok.
"""
import csv
import io
import json
import sys


def replies(data):
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        if not header.startswith("chunked 1.0,"):
            raise ValueError("bad reply header at byte %d: %r" % (pos, header[:80]))
        mlen, blen = (int(x) for x in header[len("chunked 1.0,"):].split(","))
        meta = json.loads(data[end + 1:end + 1 + mlen])
        body = data[end + 1 + mlen:end + 1 + mlen + blen]
        if len(body) != blen:
            raise ValueError("truncated reply at byte %d" % pos)
        pos = end + 1 + mlen + blen
        yield meta, body


def main():
    output, seeds_path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    plain = seeds_path == "-"
    seeds = set() if plain else set(open(seeds_path).read().split())
    n_replies = n_rows = with_soar = 0
    problems = []
    for meta, body in replies(open(output, "rb").read()):
        n_replies += 1
        if meta.get("error"):
            problems.append("error reply: %s" % meta["error"])
        if not body:
            continue
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        required = ("sync_action", "sync_message") if plain else (
            "event_id", "sync_action", "sync_message", "soar_container_id", "soar_status", "soar_url")
        for name in required:
            if name not in col:
                problems.append("no column %s" % name)
                return finish(n_replies, n_rows, with_soar, expected, problems)
        for row in reader:
            n_rows += 1
            if plain:
                if row[col["sync_action"]] != "not_found" and len(problems) < 5:
                    problems.append("row %d: sync_action=%s" % (n_rows, row[col["sync_action"]]))
                continue
            event_id = row[col["event_id"]]
            seeded = event_id in seeds
            has = bool(row[col["soar_container_id"]] and row[col["soar_status"]] and row[col["soar_url"]])
            with_soar += has
            action = row[col["sync_action"]]
            if seeded != has or action != ("unchanged" if seeded else "not_found"):
                if len(problems) < 5:
                    problems.append("row %s: seeded=%s soar fields=%s sync_action=%s" % (event_id, seeded, has, action))
    finish(n_replies, n_rows, with_soar, expected, problems)


def finish(n_replies, n_rows, with_soar, expected, problems):
    if n_rows != expected:
        problems.append("%d rows, expected %d" % (n_rows, expected))
    ok = not problems
    print(json.dumps({"replies": n_replies, "rows": n_rows, "with_soar": with_soar, "ok": ok, "problems": problems}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
