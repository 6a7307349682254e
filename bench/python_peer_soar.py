#!/usr/bin/env python3
"""The Python peer of `stackflow alert soar`: the same job, written the way existing Splunk apps
do it (gzip + csv + json + requests, PRODUCT §8), for the benchmark in docs/benchmarks.md.

Reads the alert payload (JSON) on stdin like an alert action, streams results_file with
gzip + csv.DictReader, decodes __mv_ columns, maps the same CIM->CEF subset with cef_types,
puts unmapped fields into `data`, splits multivalue CEF fields into one artifact per value,
computes an MD5 source_data_identifier per artifact, creates one container and posts the
artifacts. `--batch 1` (default) posts one artifact per request, as Splunk's SOAR export app
does; `--batch N` posts JSON arrays of N artifacts (what stackflow does).

usage: python_peer_soar.py --url https://127.0.0.1:PORT --token T --ca CA.pem [--batch N] < payload.json
"""
import argparse
import csv
import gzip
import hashlib
import json
import sys

import requests

CIM_CEF = {
    "action": "act", "app": "app", "bytes_in": "bytesIn", "bytes_out": "bytesOut", "category": "cat",
    "dest": "destinationAddress", "dest_ip": "destinationAddress", "dest_port": "destinationPort",
    "src": "sourceAddress", "src_ip": "sourceAddress", "src_port": "sourcePort",
    "src_user": "sourceUserName", "user": "destinationUserName", "url": "requestURL",
    "file_hash": "fileHash", "file_name": "fileName", "dvc": "dvc", "protocol": "transportProtocol",
}
CONTAINS = {
    "sourceAddress": ["ip"], "destinationAddress": ["ip"], "sourcePort": ["port"], "destinationPort": ["port"],
    "sourceUserName": ["user name"], "destinationUserName": ["user name"], "requestURL": ["url"],
    "fileHash": ["hash"], "fileName": ["file name"], "dvc": ["ip"],
}
SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "high"}


def decode_mv(encoded):
    values, i = [], 0
    while i < len(encoded):
        j, value = i + 1, []
        while j < len(encoded):
            if encoded[j] == "$":
                if j + 1 < len(encoded) and encoded[j + 1] == "$":
                    value.append("$")
                    j += 2
                    continue
                break
            value.append(encoded[j])
            j += 1
        values.append("".join(value))
        i = j + 2
    return values


def rows(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for key, value in raw.items():
                if key.startswith("__mv_"):
                    continue
                mv = raw.get("__mv_" + key)
                if mv:
                    row[key] = decode_mv(mv)
                elif value != "":
                    row[key] = value
            yield row


def artifacts_of(row, severity):
    cef, data, split = {}, {}, None
    for key, value in row.items():
        cef_key = CIM_CEF.get(key)
        if cef_key is None:
            data[key] = value
        elif isinstance(value, list):
            split = (cef_key, value)
        else:
            cef[cef_key] = value
    variants = [(None, cef)] if split is None else [
        (i, dict(cef, **{split[0]: v})) for i, v in enumerate(split[1])]
    base = hashlib.md5(json.dumps(row, sort_keys=True).encode("utf-8")).hexdigest()
    for index, cef_variant in variants:
        yield {
            "label": "event", "name": "Splunk result", "severity": severity,
            "source_data_identifier": base if index is None else "%s:%d" % (base, index),
            "cef": cef_variant, "cef_types": {k: CONTAINS[k] for k in cef_variant if k in CONTAINS},
            "data": data, "run_automation": False,
        }


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--url", required=True)
    args.add_argument("--token", required=True)
    args.add_argument("--ca", required=True)
    args.add_argument("--batch", type=int, default=1)
    opts = args.parse_args()
    payload = json.load(sys.stdin)
    session = requests.Session()  # keep-alive, like a well-written peer
    session.verify = opts.ca
    session.headers.update({"ph-auth-token": opts.token, "Content-Type": "application/json"})

    def post(path, body):
        response = session.post(opts.url + path, data=json.dumps(body), timeout=30, verify=opts.ca)
        return response.status_code, response.json()

    status, answer = post("/rest/container", {
        "name": payload.get("search_name") or "Splunk alert", "label": "events", "severity": "medium",
        "sensitivity": "amber", "source_data_identifier": "peer:" + payload["sid"],
    })
    container_id = answer.get("id") or answer.get("existing_container_id")
    batch, sent = [], 0
    for row in rows(payload["results_file"]):
        severity = SEVERITY.get(str(row.get("severity", "")).lower(), "medium")
        for artifact in artifacts_of(row, severity):
            artifact["container_id"] = container_id
            batch.append(artifact)
            if len(batch) >= opts.batch:
                post("/rest/artifact", batch if opts.batch > 1 else batch[0])
                sent += len(batch)
                batch = []
    if batch:
        post("/rest/artifact", batch if opts.batch > 1 else batch[0])
        sent += len(batch)
    sys.stderr.write("INFO posted %d artifacts to container %s\n" % (sent, container_id))


if __name__ == "__main__":
    main()
