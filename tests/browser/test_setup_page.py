"""The setup page in a real headless browser (Debian's chromium, driven by Playwright): served by
the Splunk Web + splunkd emulator (splunk_web.py) from an installed copy of the app, against the
loopback SOAR emulator (`stackflow-emulator --plain`). An admin adds a SOAR account (after a
validation error), stores its token, runs Test (the installed binary's `| stackflowcheck`),
edits the account and deletes it; the test asserts what the emulator stored at every step, that
the secret never appears in the page or in a URL, that every call carried the CSRF header, and
saves a screenshot to docs/setup-page.png.

usage: tests/browser/run   (builds the binaries, then runs this file with the browser venv)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from playwright.sync_api import sync_playwright

import splunk_web

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TOKEN = "soar-token"  # what the SOAR emulator accepts by default
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def install(home):
    app = os.path.join(home, "etc", "apps", "stackflow")
    shutil.copytree(os.path.join(ROOT, "app", "stackflow"), app)
    bin_dir = os.path.join(app, "linux_x86_64", "bin")
    os.makedirs(bin_dir)
    shutil.copy(os.path.join(TARGET, "debug", "stackflow"), os.path.join(bin_dir, "stackflow"))
    os.chmod(os.path.join(bin_dir, "stackflow"), 0o755)
    return app


def start_soar():
    proc = subprocess.Popen([os.path.join(TARGET, "debug", "stackflow-emulator"), "--plain"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening "), line
    return proc, line.split()[1]


def soar_requests(url):
    with urllib.request.urlopen(url + "/_emulator/requests") as r:
        return json.load(r)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    home = tempfile.mkdtemp(prefix="stackflow-browser-")
    app = install(home)
    soar, soar_url = start_soar()
    server = splunk_web.start(app)
    st = server.state
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: d.accept())
            page.goto(f"{base}/en-US/app/stackflow/stackflow_setup")
            page.wait_for_selector("#sf-accounts")
            # The shipped, empty default accounts are listed with their secrets not set.
            check(page.locator("tr[data-stanza='soar:default']").count() == 1, "soar:default not listed")
            check("soar.default: not set" in page.inner_text("#sf-accounts"), "secret state not shown")

            # A Slack account's form offers the shipped Slack app manifest (PRODUCT §15), and
            # the link serves it: a Slack app manifest with Socket Mode and the bot scopes.
            page.select_option("#sf-new-kind", "slack")
            page.click("#sf-add")
            href = page.get_attribute("#sf-slack-manifest-link", "href")
            check(href == "/en-US/static/app/stackflow/slack_app_manifest.json", f"manifest link: {href!r}")
            manifest = json.loads(page.evaluate("(u) => fetch(u).then(r => r.text())", href))
            check(manifest["settings"]["socket_mode_enabled"] is True, f"manifest: {manifest}")
            check("chat:write" in manifest["oauth_config"]["scopes"]["bot"], f"manifest: {manifest}")
            check(page.locator("#sf-secret-slack_signing").count() == 0, "a secret the product never uses is asked for")
            page.click("#sf-cancel")

            # Add a SOAR account: a plain-http URL to a non-loopback host is refused in the field.
            page.select_option("#sf-new-kind", "soar")
            page.click("#sf-add")
            page.fill("#sf-field-account", "prod")
            page.fill("#sf-field-url", "http://soar.example.com")
            page.fill("#sf-secret-soar", TOKEN)
            page.click("#sf-save")
            error = page.inner_text("#sf-field-url-error")
            check("plain http is only allowed to 127.0.0.1" in error, f"url error: {error!r}")
            page.fill("#sf-field-url", "https://user:pw@soar.example.com")
            page.click("#sf-save")
            check("user info" in page.inner_text("#sf-field-url-error"), "user info accepted")
            page.fill("#sf-field-account", "bad name")
            page.click("#sf-save")
            check("letters, digits" in page.inner_text("#sf-field-account-error"), "account name accepted")
            check(not [r for r in st.requests if r[0] != "GET"], f"an invalid form was sent: {st.requests}")

            page.fill("#sf-field-account", "prod")
            page.fill("#sf-field-url", soar_url)
            page.fill("#sf-field-label", "events")
            page.click("#sf-save")
            page.wait_for_selector("text=Saved [soar:prod]")
            check(st.local.get("soar:prod", {}).get("url") == soar_url, f"stored conf: {st.local}")
            check(st.local["soar:prod"].get("label") == "events", f"{st.local}")
            check(st.passwords.get("stackflow:soar.prod:") == ("stackflow", "soar.prod", TOKEN), f"{st.passwords}")
            check(st.app_install.get("is_configured") == "1", f"is_configured: {st.app_install}")
            with open(os.path.join(app, "local", "stackflow.conf")) as f:
                check(f"url = {soar_url}" in f.read(), "local/stackflow.conf not written")
            check("soar.prod: stored" in page.inner_text("#sf-accounts"), "stored state not shown")

            # Test runs | stackflowcheck for the account through the search jobs API.
            page.click("#sf-test-soar-prod")
            page.wait_for_selector("#sf-test-results")
            rows = page.locator("#sf-test-results tr").all_inner_texts()
            endpoint = [r for r in rows if "soar\tprod\tendpoint" in r]
            check(endpoint and "\tOK\t" in endpoint[0], f"test rows: {rows}")
            check(st.searches == ["| stackflowcheck account=prod kind=soar"], f"{st.searches}")
            tokens = [r for r in soar_requests(soar_url) if r["path"].startswith("/rest/")]
            check(tokens and all(dict((k.lower(), v) for k, v in r["headers"]).get("ph-auth-token") == TOKEN
                                 for r in tokens), f"SOAR requests: {tokens}")
            page.screenshot(path=os.path.join(ROOT, "docs", "setup-page.png"), full_page=True)

            # Edit: a new label, the secret left empty (kept, not re-sent).
            writes_before = [r for r in st.requests if "storage/passwords" in r[1] and r[0] != "GET"]
            page.click("#sf-edit-soar-prod")
            check(page.input_value("#sf-secret-soar") == "", "a secret was put back into the form")
            check("stored" in page.get_attribute("#sf-secret-soar", "placeholder"), "placeholder")
            page.fill("#sf-field-label", "phishing")
            page.select_option("#sf-field-verify_ssl", "false")
            page.click("#sf-save")
            page.wait_for_function("document.body.innerText.includes('Saved [soar:prod];')")
            check(st.local["soar:prod"]["label"] == "phishing", f"{st.local}")
            check(st.local["soar:prod"]["verify_ssl"] == "false", f"{st.local}")
            writes_after = [r for r in st.requests if "storage/passwords" in r[1] and r[0] != "GET"]
            check(writes_after == writes_before, "an empty secret field changed the stored secret")
            check(st.passwords["stackflow:soar.prod:"][2] == TOKEN, "secret changed")

            # Nothing on the page, and no URL, ever held the secret; every call had the CSRF key.
            check(TOKEN not in page.content(), "the secret is in the page")
            check(all(TOKEN not in r[1] and TOKEN not in r[2] for r in st.requests), "the secret was in a URL")
            check(not st.csrf_failures, f"calls without the CSRF header: {st.csrf_failures}")
            # A call without the header is refused (the emulator checks it like Splunk Web).
            status = page.evaluate("""() => fetch('/en-US/splunkd/__raw/servicesNS/nobody/stackflow/configs/conf-stackflow',
                {method: 'POST', body: 'name=soar:evil', headers: {'Content-Type': 'application/x-www-form-urlencoded'}})
                .then(r => r.status)""")
            check(status == 401 and "soar:evil" not in st.local, f"CSRF not enforced: {status}")
            st.csrf_failures.clear()

            # Delete: the stanza and its secret are gone.
            page.click("#sf-delete-soar-prod")
            page.wait_for_selector("text=Deleted [soar:prod].")
            check("soar:prod" not in st.stanzas(), f"{st.stanzas()}")
            check("stackflow:soar.prod:" not in st.passwords, f"{st.passwords}")
            check(page.locator("tr[data-stanza='soar:prod']").count() == 0, "still listed")
            check(not st.csrf_failures, f"{st.csrf_failures}")
            check(not errors, f"JavaScript errors: {errors}")
            browser.close()
    finally:
        server.shutdown()
        soar.stdin.close()
        soar.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
    print("browser test: setup page add / secret / Test / edit / delete OK; screenshot docs/setup-page.png")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
