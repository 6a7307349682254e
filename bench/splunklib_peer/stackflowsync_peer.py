#!/usr/bin/env python3
"""Benchmark peer of `| stackflowsync target=soar`, written as Splunk's own SDK would have it:
a splunklib (PyPI `splunk-sdk`) StreamingCommand on the chunked protocol (SCP v2).

It sends the same requests as `stackflow sync` for each chunk Splunk hands over — one KV store
query of `stackflow_links` per ~5 KB of event ids, one SOAR container query by
`source_data_identifier` per ~5 KB of filter text, one playbook-run query for the containers
found — over keep-alive HTTPS connections that verify the CA file, and adds the same fields.
Records arrive one by one through `stream(records)`; the peer buffers the chunk's records,
looks them up in batches, then yields them (the SDK calls `stream` once per chunk).

Configuration as the Rust command reads it: `$SPLUNK_HOME/etc/apps/stackflow/local/stackflow.conf`
`[soar:default] url, ca_file`; the SOAR token `soar.default` from splunkd's storage/passwords
(splunkd = the search's `splunkd_uri`, authenticated with its session key).
"""
import configparser
import http.client
import json
import os
import ssl
import sys
import urllib.parse

from splunklib.searchcommands import Configuration, Option, StreamingCommand, dispatch

MAX_FILTER_BYTES = 5000
MAX_KV_QUERY_BYTES = 5000
SOAR_FIELDS = ("soar_container_id", "soar_status", "soar_severity", "soar_owner",
               "soar_close_time", "soar_playbook_status", "soar_url")


def quote(text):
    return urllib.parse.quote(text, safe="-_.~")


class Http:
    """One keep-alive HTTPS connection to one origin."""

    def __init__(self, base, cafile):
        url = urllib.parse.urlsplit(base)
        self.prefix = url.path.rstrip("/")
        context = ssl.create_default_context(cafile=cafile)
        self.conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=30)

    def get_json(self, path, headers):
        self.conn.request("GET", self.prefix + path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status >= 300:
            raise RuntimeError("GET %s: HTTP %d" % (path.split("?")[0], response.status))
        return json.loads(body)


def python_string(text):
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def filter_batches(literals):
    """`[a,b,...]` lists whose URL-encoded form stays under MAX_FILTER_BYTES (as the Rust command)."""
    batches, current, encoded = [], [], 6
    for literal in literals:
        cost = len(quote(literal)) + 3
        if current and encoded + cost > MAX_FILTER_BYTES:
            batches.append(current)
            current, encoded = [], 6
        current.append(literal)
        encoded += cost
    if current:
        batches.append(current)
    return batches


@Configuration()
class StackflowSyncPeer(StreamingCommand):
    target = Option(require=False, default="all")
    account = Option(require=False, default="default")

    def prepare(self):
        self._splunkd = None
        self._soar = None

    def _open(self):
        info = self._metadata.searchinfo
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(os.path.join(os.environ["SPLUNK_HOME"], "etc/apps/stackflow/local/stackflow.conf"))
        section = conf["soar:%s" % self.account]
        self._soar_base = section["url"].rstrip("/")
        cafile = section.get("ca_file")
        self._splunkd = Http(info.splunkd_uri, cafile)
        self._splunkd_headers = {"Authorization": "Splunk %s" % info.session_key}
        name = quote("stackflow:soar.%s:" % self.account)
        secret = self._splunkd.get_json(
            "/servicesNS/nobody/stackflow/storage/passwords/%s?output_mode=json" % name, self._splunkd_headers)
        token = secret["entry"][0]["content"]["clear_password"]
        self._soar = Http(self._soar_base, cafile)
        self._soar_headers = {"ph-auth-token": token, "Accept": "application/json"}

    def _links(self, event_ids):
        links = {}
        start = 0
        while start < len(event_ids):
            end, size = start, 0
            while end < len(event_ids):
                cost = len(quote(event_ids[end])) + 9
                if end > start and size + cost > MAX_KV_QUERY_BYTES:
                    break
                size += cost
                end += 1
            query = json.dumps({"event_id": {"$in": event_ids[start:end]}})
            records = self._splunkd.get_json(
                "/servicesNS/nobody/stackflow/storage/collections/data/stackflow_links"
                "?output_mode=json&query=%s" % quote(query), self._splunkd_headers)
            for record in records:
                if record.get("soar_container_id"):
                    links[record["event_id"]] = int(record["soar_container_id"])
            start = end
        return links

    def _soar_list(self, kind, query):
        items, page = [], 0
        while True:
            answer = self._soar.get_json("/rest/%s?%s&page=%d" % (kind, query, page), self._soar_headers)
            items.extend(answer["data"])
            page += 1
            if page >= answer.get("num_pages", 1) or not answer["data"] or "page_size=0" in query:
                return items

    def stream(self, records):
        records = list(records)
        event_ids = list(dict.fromkeys(r["event_id"] for r in records if r.get("event_id")))
        if event_ids and self._soar is None:
            self._open()
        links = self._links(event_ids)
        by_id, by_sdi = {}, {}
        ids = sorted(set(links.values()))
        for batch in filter_batches([str(i) for i in ids]):
            for c in self._soar_list("container", "_filter_id__in=%s&page_size=%d"
                                     % (quote("[%s]" % ",".join(batch)), len(batch))):
                by_id[c["id"]] = c
        sdis = [python_string(e) for e in event_ids if e not in links]
        for batch in filter_batches(sdis):
            for c in self._soar_list("container", "_filter_source_data_identifier__in=%s&page_size=%d"
                                     % (quote("[%s]" % ",".join(batch)), len(batch))):
                by_id[c["id"]] = c
                by_sdi[c["source_data_identifier"]] = c["id"]
        runs = {}
        for batch in filter_batches([str(i) for i in by_id]):
            for run in self._soar_list("playbook_run", "_filter_container__in=%s&sort=id&order=desc&page_size=0"
                                       % quote("[%s]" % ",".join(batch))):
                newest = runs.get(run["container"])
                if newest is None or newest[0] < run["id"]:
                    runs[run["container"]] = (run["id"], run.get("status") or "")
        for record in records:
            event_id = record.get("event_id")
            cid = links.get(event_id) or by_sdi.get(event_id)
            container = by_id.get(cid)
            # splunklib takes the output header from the first record: when the chunk has any
            # container, every record gets every soar_* field (the Rust command adds them to the
            # chunk's header on first use, i.e. only when a container was found).
            if container is None:
                if by_id:
                    for field in SOAR_FIELDS:
                        record[field] = ""
                record["sync_action"] = "not_found"
                record["sync_message"] = ("no SOAR container for event_id %s" % event_id if event_id else
                                          "the row has no soar_container_id, stackflow_incident_id, "
                                          "receipt remote_id or event_id")
                yield record
                continue
            url = "%s/mission/%d" % (self._soar_base, container["id"])
            record["soar_container_id"] = str(container["id"])
            record["soar_status"] = container.get("status") or ""
            record["soar_severity"] = container.get("severity") or ""
            record["soar_owner"] = str(container.get("owner_name") or container.get("owner") or "")
            record["soar_close_time"] = container.get("close_time") or ""
            record["soar_playbook_status"] = runs.get(container["id"], (0, ""))[1]
            record["soar_url"] = url
            record["sync_action"] = "unchanged"
            record["sync_message"] = "SOAR container %d is %s \u2014 %s" % (
                container["id"], container.get("status") or "without status", url)
            yield record


dispatch(StackflowSyncPeer, sys.argv, sys.stdin, sys.stdout, __name__)
