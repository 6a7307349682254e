#!/usr/bin/env python3
"""Seeds the loopback emulator for bench/sync_bench.sh.

usage: seed_sync_emulator.py URL CA_FILE SEED_IDS
Resets the emulator, stores the secrets `soar.default` (token `soar-token`) and
`stackflow_api.default` in realm `stackflow`, and creates one SOAR container per line of
SEED_IDS (source_data_identifier = the event id; statuses, severities and owners rotate), with a
playbook run on every 4th. Containers go through SOAR's own `POST /rest/container` over one
keep-alive connection.
"""
import http.client, json, ssl, sys, urllib.parse
url, ca, seeds = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca))
def post(path, body, headers={}):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    r = conn.getresponse(); text = r.read()
    if r.status != 200: sys.exit("%s: HTTP %d %s" % (path, r.status, text[:200]))
    return json.loads(text)
post("/_emulator/reset", {})
post("/_emulator/secret", {"realm": "stackflow", "username": "soar.default", "password": "soar-token"})
post("/_emulator/secret", {"realm": "stackflow", "username": "stackflow_api.default", "password": "api-token"})
statuses, severities = ["new", "open", "closed"], ["low", "medium", "high"]
for n, sdi in enumerate(open(seeds).read().split()):
    created = post("/rest/container", {"name": "Notable %s" % sdi, "label": "notable", "source_data_identifier": sdi,
                   "status": statuses[n % 3], "severity": severities[n % 3], "owner_name": "analyst%d" % (n % 7)},
                   {"ph-auth-token": "soar-token"})
    if n % 4 == 0:
        post("/rest/playbook_run", {"container_id": created["id"], "playbook_id": "local/triage", "scope": "new", "run": True},
             {"ph-auth-token": "soar-token"})
