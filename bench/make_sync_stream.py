#!/usr/bin/env python3
"""Builds the `| stackflowsync` benchmark input from the Splunk 6.3 `sum.map` recording.

usage: make_sync_stream.py RECORDING.gz OUT_STREAM SPLUNKD_URI ARGS_JSON OUT_SEED_IDS

* The getinfo chunk keeps the recording's searchinfo (splunk_version, sid, ...) but gets the
  command's arguments (ARGS_JSON, e.g. '["target=soar"]'), the emulator as `splunkd_uri`, the
  emulator's session key and app/owner of an ordinary search; its length is recomputed.
* Every record of every execute chunk gets one more column, `event_id` = `E<n>` (n counts the
  records from 1), appended byte-wise: all other bytes of the body stay exactly as splunkd sent
  them (Splunk-style quoting, embedded newlines). The chunk lengths are recomputed.
* OUT_SEED_IDS gets every 10th event id (E10, E20, ...), one a line: the SOAR containers to
  seed with that `source_data_identifier`.
* OUT_SEED_IDS `-`: no `event_id` column (the recording's rows as they are: no row names a remote
  object, so the command is pure pass-through + field addition, without any request).
"""
import gzip
import json
import re
import sys

# One CSV record (quoted fields may hold commas, quotes as "" and newlines) and its LF.
RECORD = re.compile(rb'(?:"(?:[^"]|"")*"|[^,"\n]*)(?:,(?:"(?:[^"]|"")*"|[^,"\n]*))*\n')


def chunks(data):
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        assert header.startswith("chunked 1.0,"), header
        mlen, blen = (int(x) for x in header[len("chunked 1.0,"):].split(","))
        meta = data[end + 1:end + 1 + mlen]
        body = data[end + 1 + mlen:end + 1 + mlen + blen]
        pos = end + 1 + mlen + blen
        yield json.loads(meta), body


def chunk(meta, body):
    meta = json.dumps(meta).encode() if not isinstance(meta, bytes) else meta
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def add_event_ids(body, first):
    """Appends `,event_id` to the header and `,E<n>` to every record; returns (body, n_records)."""
    out = []
    pos = 0
    n = 0
    for match in RECORD.finditer(body):
        assert match.start() == pos, "CSV record boundary lost at byte %d" % pos
        record = match.group(0)[:-1]
        out.append(record + (b",event_id\n" if pos == 0 else b",E%d\n" % (first + n)))
        if pos != 0:
            n += 1
        pos = match.end()
    assert pos == len(body), "trailing bytes after the last record"
    return b"".join(out), n


def main():
    recording, out_path, splunkd_uri, args_json, seeds_path = sys.argv[1:6]
    args = json.loads(args_json)
    data = gzip.open(recording).read()
    parts = []
    n_records = 0
    for meta, body in chunks(data):
        if meta.get("action") == "getinfo":
            info = meta["searchinfo"]
            info.update({
                "args": args,
                "raw_args": args,
                "search": "%60notable%60%20%7C%20stackflowsync%20" + "%20".join(args),
                "splunkd_uri": splunkd_uri,
                "session_key": "test-session-key",
                "app": "search",
                "owner": "admin",
                "username": "admin",
            })
            parts.append(chunk(meta, b""))
        else:
            if body and seeds_path != "-":
                body, n = add_event_ids(body, n_records + 1)
                n_records += n
            elif body:
                n_records += sum(1 for _ in RECORD.finditer(body)) - 1
            parts.append(chunk(json.dumps(meta, separators=(",", ":")).encode(), body))
    with open(out_path, "wb") as out:
        out.write(b"".join(parts))
    if seeds_path != "-":
        with open(seeds_path, "w") as seeds:
            for n in range(10, n_records + 1, 10):
                seeds.write("E%d\n" % n)
    print(n_records)


if __name__ == "__main__":
    main()
