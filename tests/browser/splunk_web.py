"""A loopback Splunk Web + splunkd emulator that serves the app's setup page the way Splunk Web
would, for the browser test (tests/browser/test_setup_page.py).

- Splunk Web: `GET /en-US/app/stackflow/<view>` renders the Simple XML dashboard (version 1.1
  required, its `<html>` panel, its `script=`/`stylesheet=` files from appserver/static, served at
  `/en-US/static/app/stackflow/`) with `window.$C`, and sets the login cookies
  (`splunkd_<port>` session, `splunkweb_csrf_token_<port>`).
- `/en-US/splunkd/__raw/<splunkd path>`: the proxy to splunkd. Every call must carry the session
  cookie and the `X-Splunk-Form-Key` header equal to the CSRF cookie, else 401 (recorded in
  `csrf_failures`).
- splunkd itself (also reachable directly with `Authorization: Splunk <session key>`, which is
  how the installed binary calls it): `configs/conf-stackflow` (list, create, update, delete;
  the default layer comes from the app's default/stackflow.conf, writes go to
  local/stackflow.conf of the installed app), `configs/conf-app/install`, `storage/passwords`
  (list, create → 201/409, update, delete), `authentication/current-context`, and
  `search/jobs` with `exec_mode=oneshot` for `| stackflowcheck`, which runs the installed
  binary exactly as commands.conf says, over SCP v2 chunks, with this server as splunkd.

Facts: Splunk REST API Reference (configs/conf-*, storage/passwords, search/jobs), Splunk's Slack
alerts app setup page (CSRF header from the splunkweb_csrf_token_<port> cookie).
"""

import csv
import io
import json
import os
import re
import secrets
import shlex
import subprocess
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP = "stackflow"
REALM_USERS = re.compile(r"^(?P<realm>[^:]*):(?P<user>[^:]+):$")


def read_conf(path):
    """A .conf file as {stanza: {key: value}} (comments on their own lines only)."""
    stanzas = {}
    current = None
    if not os.path.exists(path):
        return stanzas
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = stanzas.setdefault(line[1:-1], {})
            elif "=" in line and current is not None:
                key, value = line.split("=", 1)
                current[key.strip()] = value.strip()
    return stanzas


def write_conf(path, stanzas):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for name, keys in stanzas.items():
            f.write(f"[{name}]\n")
            for key, value in keys.items():
                f.write(f"{key} = {value}\n")
            f.write("\n")


def chunk(metadata, body=b""):
    meta = json.dumps(metadata).encode()
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def read_chunks(data):
    out = []
    while data:
        head, _, rest = data.partition(b"\n")
        m = re.match(rb"chunked 1\.0,(\d+),(\d+)$", head)
        if not m:
            raise ValueError(f"bad chunk header {head!r}")
        mlen, blen = int(m.group(1)), int(m.group(2))
        out.append((json.loads(rest[:mlen]), rest[mlen:mlen + blen]))
        data = rest[mlen + blen:]
    return out


class State:
    def __init__(self, app_dir):
        self.app_dir = app_dir
        self.session_key = "web-session-" + secrets.token_hex(8)
        self.csrf = "csrf-" + secrets.token_hex(8)
        self.default = read_conf(os.path.join(app_dir, "default", "stackflow.conf"))
        self.local = read_conf(os.path.join(app_dir, "local", "stackflow.conf"))
        self.deleted = set()
        self.passwords = {}  # "realm:user:" -> (realm, user, password)
        self.app_install = {}
        self.requests = []  # (method, path, form pairs) of every /splunkd/__raw call
        self.csrf_failures = []
        self.searches = []
        self.lock = threading.Lock()

    # -- conf-stackflow: default layer + local layer, like splunkd's merged view
    def stanzas(self):
        names = [n for n in self.default if n not in self.deleted]
        names += [n for n in self.local if n not in names]
        return {n: {**self.default.get(n, {}), **self.local.get(n, {})} for n in names}

    def save_local(self):
        write_conf(os.path.join(self.app_dir, "local", "stackflow.conf"), self.local)


class Handler(BaseHTTPRequestHandler):
    server_version = "SplunkWebEmulator/1"

    def log_message(self, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def reply(self, status, body=b"", content_type="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def messages(self, status, text):
        self.reply(status, {"messages": [{"type": "ERROR", "text": text}]})

    def cookies(self):
        out = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            if "=" in part:
                k, v = part.strip().split("=", 1)
                out[k] = urllib.parse.unquote(v)
        return out

    def body_form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return urllib.parse.parse_qsl(raw, keep_blank_values=True)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        port = self.server.server_address[1]
        form = self.body_form() if method != "GET" else []
        raw_prefix = "/en-US/splunkd/__raw"
        if url.path.startswith("/en-US/app/stackflow/"):
            return self.page(url.path.rsplit("/", 1)[1], port)
        if url.path.startswith("/en-US/static/app/stackflow/"):
            return self.static(url.path[len("/en-US/static/app/stackflow/"):])
        if url.path.startswith(raw_prefix):
            cookies = self.cookies()
            with self.st.lock:
                self.st.requests.append((method, url.path[len(raw_prefix):], url.query, form))
            if cookies.get(f"splunkd_{port}") != self.st.session_key:
                return self.messages(401, "not logged in")
            key = self.headers.get("X-Splunk-Form-Key")
            if key != self.st.csrf or cookies.get(f"splunkweb_csrf_token_{port}") != self.st.csrf:
                with self.st.lock:
                    self.st.csrf_failures.append((method, url.path))
                return self.messages(401, "Splunk cannot authenticate the request. CSRF validation failed.")
            return self.splunkd(method, url.path[len(raw_prefix):], query, form)
        if self.headers.get("Authorization") == f"Splunk {self.st.session_key}":
            return self.splunkd(method, url.path, query, form)
        return self.messages(401, "call not properly authenticated")

    # -- Splunk Web
    def page(self, view, port):
        path = os.path.join(self.st.app_dir, "default", "data", "ui", "views", view + ".xml")
        if not os.path.exists(path):
            return self.reply(404, "no such view", "text/plain")
        root = ET.parse(path).getroot()
        if root.tag != "dashboard" or root.get("version") != "1.1":
            return self.reply(500, "the dashboard must be <dashboard version=\"1.1\">", "text/plain")
        panels = "".join(
            "".join(ET.tostring(child, encoding="unicode") for child in html)
            for html in root.iter("html"))
        script = root.get("script", "")
        css = root.get("stylesheet", "")
        config = {"MRSPARKLE_ROOT_PATH": "", "LOCALE": "en-US", "MRSPARKLE_PORT_NUMBER": str(port)}
        html = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{ET.tostring(root.find('label'), encoding='unicode', method='text')}</title>"
            + (f"<link rel='stylesheet' href='/en-US/static/app/stackflow/{css}'>" if css else "")
            + f"<script>window.$C = {json.dumps(config)};</script></head><body>"
            + panels
            + (f"<script src='/en-US/static/app/stackflow/{script}'></script>" if script else "")
            + "</body></html>")
        headers = [
            ("Set-Cookie", f"splunkd_{port}={self.st.session_key}; Path=/; HttpOnly"),
            ("Set-Cookie", f"splunkweb_csrf_token_{port}={self.st.csrf}; Path=/"),
        ]
        self.reply(200, html, "text/html; charset=utf-8", headers)

    def static(self, name):
        base = os.path.realpath(os.path.join(self.st.app_dir, "appserver", "static"))
        path = os.path.realpath(os.path.join(base, name))
        if not path.startswith(base + os.sep) or not os.path.isfile(path):
            return self.reply(404, "not found", "text/plain")
        kind = {"js": "application/javascript", "css": "text/css"}.get(path.rsplit(".", 1)[-1], "application/octet-stream")
        with open(path, "rb") as f:
            self.reply(200, f.read(), kind)

    # -- splunkd
    def splunkd(self, method, path, query, form):
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        st = self.st
        with st.lock:
            if segs == ["services", "authentication", "current-context"]:
                return self.reply(200, {"entry": [{"content": {"username": "admin", "capabilities": ["admin_all_objects"]}}]})
            if segs[:1] == ["servicesNS"] and len(segs) >= 4 and segs[3] == "configs":
                return self.conf(method, segs[4:], form)
            if segs[:1] == ["servicesNS"] and segs[3:5] == ["storage", "passwords"]:
                return self.passwords(method, segs[5:], dict(query), form)
            if segs[-2:] == ["search", "jobs"] and method == "POST":
                return self.oneshot(dict(form))
        return self.messages(404, f"Not Found: {path}")

    def conf(self, method, rest, form):
        st = self.st
        fields = dict(form)
        if rest == ["conf-app", "install"] and method == "POST":
            st.app_install.update(fields)
            app_conf = read_conf(os.path.join(st.app_dir, "local", "app.conf"))
            app_conf.setdefault("install", {}).update(fields)
            write_conf(os.path.join(st.app_dir, "local", "app.conf"), app_conf)
            return self.reply(200, {"entry": [{"name": "install", "content": st.app_install}]})
        if not rest or rest[0] != "conf-stackflow":
            return self.messages(404, "unknown conf")
        if len(rest) == 1 and method == "GET":
            entries = [{"name": n, "content": c} for n, c in st.stanzas().items()]
            return self.reply(200, {"entry": entries})
        if len(rest) == 1 and method == "POST":
            name = fields.pop("name", "")
            if not name:
                return self.messages(400, "name is required")
            if name in st.stanzas():
                return self.messages(409, f"An object with name={name} already exists")
            st.deleted.discard(name)
            st.local[name] = fields
            st.save_local()
            return self.reply(201, {"entry": [{"name": name, "content": fields}]})
        name = rest[1]
        if name not in st.stanzas():
            return self.messages(404, f"Could not find object id={name}")
        if method == "POST":
            st.local.setdefault(name, {}).update(fields)
            st.save_local()
            return self.reply(200, {"entry": [{"name": name, "content": st.stanzas()[name]}]})
        if method == "DELETE":
            st.local.pop(name, None)
            st.deleted.add(name)
            st.save_local()
            return self.reply(200, {"entry": []})
        return self.messages(405, "method not allowed")

    def passwords(self, method, rest, query, form):
        st = self.st
        fields = dict(form)

        def entry(name):
            realm, user, password = st.passwords[name]
            return {"name": name, "content": {"realm": realm, "username": user, "clear_password": password, "password": "********"}}

        if not rest and method == "GET":
            search = query.get("search", "")
            names = sorted(st.passwords)
            if "=" in search:
                field, value = search.split("=", 1)
                names = [n for n in names if entry(n)["content"].get(field) == value]
            return self.reply(200, {"entry": [entry(n) for n in names]})
        if not rest and method == "POST":
            if not fields.get("name") or not fields.get("password"):
                return self.messages(400, "name and password are required")
            name = f"{fields.get('realm', '')}:{fields['name']}:"
            if name in st.passwords:
                return self.messages(409, f"An object with name={name} already exists")
            st.passwords[name] = (fields.get("realm", ""), fields["name"], fields["password"])
            return self.reply(201, {"entry": [entry(name)]})
        name = rest[0] if rest else ""
        if name not in st.passwords:
            return self.messages(404, f"Could not find object id={name}")
        if method == "GET":
            return self.reply(200, {"entry": [entry(name)]})
        if method == "POST":
            realm, user, _ = st.passwords[name]
            st.passwords[name] = (realm, user, fields.get("password", ""))
            return self.reply(200, {"entry": [entry(name)]})
        if method == "DELETE":
            del st.passwords[name]
            return self.reply(200, {"entry": []})
        return self.messages(405, "method not allowed")

    def oneshot(self, fields):
        st = self.st
        if fields.get("exec_mode") != "oneshot":
            return self.messages(400, "this emulator runs oneshot searches only")
        words = shlex.split(fields.get("search", ""))
        if words[:2] != ["|", "stackflowcheck"]:
            return self.messages(400, "this emulator runs | stackflowcheck only")
        st.searches.append(fields["search"])
        commands = read_conf(os.path.join(st.app_dir, "default", "commands.conf"))["stackflowcheck"]
        exe = os.path.join(st.app_dir, "linux_x86_64", "bin", commands["filename"])
        argv = [exe] + [commands[k] for k in sorted(k for k in commands if k.startswith("command.arg."))]
        port = self.server.server_address[1]
        args = words[2:]
        info = {"args": args, "raw_args": args, "dispatch_dir": "", "sid": "1700000000.1",
                "app": APP, "owner": "admin", "username": "admin", "session_key": st.session_key,
                "splunkd_uri": f"http://127.0.0.1:{port}", "splunk_version": "9.4.1",
                "search": urllib.parse.quote(fields["search"]), "command": "stackflowcheck",
                "maxresultrows": 50000, "earliest_time": "0", "latest_time": "0"}
        frames = chunk({"action": "getinfo", "preview": False, "searchinfo": info}) + \
            chunk({"action": "execute", "finished": True})
        # Released: the binary calls back into this server (current-context, storage/passwords).
        st.lock.release()
        try:
            done = subprocess.run(argv, input=frames, capture_output=True, timeout=60,
                                  env={**os.environ, "SPLUNK_HOME": os.path.dirname(os.path.dirname(os.path.dirname(st.app_dir)))})
        finally:
            st.lock.acquire()
        replies = read_chunks(done.stdout)
        for metadata, _ in replies:
            if metadata.get("error"):
                return self.messages(400, f"Error in 'stackflowcheck' command: {metadata['error']}")
        _, body = replies[-1]
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        fields_out = list(rows[0].keys()) if rows else []
        return self.reply(200, {"results": rows, "fields": [{"name": n} for n in fields_out]})


def start(app_dir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = State(app_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
