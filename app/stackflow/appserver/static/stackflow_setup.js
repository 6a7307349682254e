/*
 * The StackFlow setup page (view stackflow_setup, app.conf [ui] setup_view): lists the SOAR,
 * StackFlow and Slack accounts of stackflow.conf, adds, edits and deletes them, stores their
 * secrets write-only in storage/passwords (realm "stackflow"), tests an account with
 * "| stackflowcheck account=<name> kind=<kind>", and marks the app configured on save.
 *
 * Plain JavaScript (no Python, no Mako, no Splunk JS libraries): every call goes to splunkd
 * through Splunk Web's /splunkd/__raw/ proxy with the X-Splunk-Form-Key header taken from the
 * splunkweb_csrf_token_<port> cookie (Splunk Web's CSRF protection; the pattern of Splunk's own
 * Slack alerts app). Secrets travel only in POST bodies, never in a URL, and are never shown:
 * the page says "stored" or "not set". Values from splunkd are put into the page as text,
 * never as HTML. URL rules are the binary's (src/remotes/url.rs): https, or http only to
 * 127.0.0.1 or [::1]; no user info, no '#', no query.
 */
(function () {
    "use strict";

    var APP = "stackflow";
    var REALM = "stackflow";
    var C = window.$C || {};
    var ROOT = (C.MRSPARKLE_ROOT_PATH || "") + "/" + (C.LOCALE || "en-US") + "/splunkd/__raw";

    /* The fields of each account kind (README/stackflow.conf.spec) and its secrets (PRODUCT §3). */
    var KINDS = {
        soar: {
            label: "Splunk SOAR",
            fields: [
                { key: "url", label: "SOAR base URL", type: "url", required: true, help: "e.g. https://soar.example.com (the REST API lives under /rest/)" },
                { key: "label", label: "Container label", type: "text", help: "must exist on SOAR; default events" },
                { key: "verify_ssl", label: "Verify TLS certificates", type: "bool" },
                { key: "ca_file", label: "CA bundle (PEM path on the search head)", type: "path", help: "optional, for a private CA" }
            ],
            secrets: [{ prefix: "soar", label: "Automation token (ph-auth-token)" }]
        },
        stackflow: {
            label: "StackFlow ITSM",
            fields: [
                { key: "webhook_url", label: "Inbound webhook URL", type: "url", help: "e.g. https://acme.stackflow-tech.com/prod/api/webhooks/inbound/splunk" },
                { key: "api_url", label: "API URL (read-back)", type: "url", help: "e.g. https://acme.stackflow-tech.com/prod/api" },
                { key: "verify_ssl", label: "Verify TLS certificates", type: "bool" },
                { key: "ca_file", label: "CA bundle (PEM path on the search head)", type: "path", help: "optional" }
            ],
            secrets: [
                { prefix: "stackflow", label: "Webhook secret (X-StackFlow-Secret)" },
                { prefix: "stackflow_api", label: "API token (Bearer, read-back)" }
            ],
            atLeastOne: ["webhook_url", "api_url"]
        },
        slack: {
            label: "Slack",
            fields: [
                { key: "api_url", label: "Slack Web API URL", type: "url", help: "default https://slack.com/api" },
                { key: "channel", label: "Default channel", type: "channel", help: "e.g. #soc-alerts" },
                { key: "verify_ssl", label: "Verify TLS certificates", type: "bool" },
                { key: "ca_file", label: "CA bundle (PEM path on the search head)", type: "path", help: "optional" }
            ],
            secrets: [
                { prefix: "slack", label: "Bot token (xoxb-…)" },
                { prefix: "slack_app", label: "App-level token for the buttons (xapp-…, Socket Mode)" }
            ]
        }
    };

    var state = { stanzas: {}, stored: {}, editing: null };

    /* ---- splunkd through Splunk Web ------------------------------------------------------ */

    function cookie(name) {
        var parts = document.cookie ? document.cookie.split(";") : [];
        for (var i = 0; i < parts.length; i++) {
            var kv = parts[i].replace(/^\s+/, "");
            if (kv.indexOf(name + "=") === 0) {
                return decodeURIComponent(kv.substring(name.length + 1));
            }
        }
        return "";
    }

    function formKey() {
        return cookie("splunkweb_csrf_token_" + (C.MRSPARKLE_PORT_NUMBER || window.location.port || "8000"));
    }

    function form(pairs) {
        return pairs.map(function (p) {
            return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
        }).join("&");
    }

    /* One call; resolves with {status, json}; rejects with an Error carrying splunkd's message. */
    function call(method, path, pairs, okStatuses) {
        var url = ROOT + path + (path.indexOf("?") < 0 ? "?" : "&") + "output_mode=json";
        var init = {
            method: method,
            credentials: "same-origin",
            headers: {
                "X-Splunk-Form-Key": formKey(),
                "X-Requested-With": "XMLHttpRequest"
            }
        };
        if (pairs) {
            init.headers["Content-Type"] = "application/x-www-form-urlencoded";
            init.body = form(pairs);
        }
        return window.fetch(url, init).then(function (response) {
            return response.text().then(function (text) {
                var json = null;
                try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
                var ok = response.ok || (okStatuses || []).indexOf(response.status) >= 0;
                if (!ok) {
                    var message = "HTTP " + response.status;
                    if (json && json.messages && json.messages.length) {
                        message += ": " + json.messages.map(function (m) { return m.text; }).join("; ");
                    }
                    var error = new Error(method + " " + path.split("?")[0] + " failed: " + message);
                    error.status = response.status;
                    throw error;
                }
                return { status: response.status, json: json };
            });
        });
    }

    var NS = "/servicesNS/nobody/" + APP;

    function loadAccounts() {
        return call("GET", NS + "/configs/conf-stackflow?count=0").then(function (r) {
            var stanzas = {};
            ((r.json && r.json.entry) || []).forEach(function (entry) {
                var parts = String(entry.name).split(":");
                if (parts.length === 2 && KINDS[parts[0]] && parts[1]) {
                    stanzas[entry.name] = { kind: parts[0], account: parts[1], content: entry.content || {} };
                }
            });
            state.stanzas = stanzas;
        });
    }

    /* Which secret user names are stored; the answer's values are never read. */
    function loadSecrets() {
        return call("GET", NS + "/storage/passwords?count=0&search=" + encodeURIComponent("realm=" + REALM)).then(function (r) {
            var stored = {};
            ((r.json && r.json.entry) || []).forEach(function (entry) {
                var content = entry.content || {};
                if (content.realm === REALM && content.username) {
                    stored[content.username] = true;
                }
            });
            state.stored = stored;
        });
    }

    function secretPath(user) {
        return NS + "/storage/passwords/" + encodeURIComponent(REALM) + ":" + encodeURIComponent(user) + ":";
    }

    /* Create the secret; when it exists (409), update it. The value goes in the body only. */
    function storeSecret(user, value) {
        return call("POST", NS + "/storage/passwords", [["name", user], ["realm", REALM], ["password", value]], [409])
            .then(function (r) {
                if (r.status === 409) {
                    return call("POST", secretPath(user), [["password", value]]);
                }
                return r;
            });
    }

    function deleteSecret(user) {
        return call("DELETE", secretPath(user), null, [404]);
    }

    function saveStanza(name, pairs, exists) {
        if (exists) {
            return call("POST", NS + "/configs/conf-stackflow/" + encodeURIComponent(name), pairs);
        }
        return call("POST", NS + "/configs/conf-stackflow", [["name", name]].concat(pairs));
    }

    function markConfigured() {
        return call("POST", NS + "/configs/conf-app/install", [["is_configured", "1"]]);
    }

    function runCheck(kind, account) {
        var search = "| stackflowcheck account=" + account + " kind=" + kind;
        return call("POST", "/services/search/jobs", [["search", search], ["exec_mode", "oneshot"], ["count", "0"]])
            .then(function (r) { return (r.json && r.json.results) || []; });
    }

    /* ---- validation (the binary's rules) ------------------------------------------------- */

    function urlProblem(value, required) {
        if (!value) { return required ? "required" : ""; }
        if (value.indexOf("#") >= 0) { return "contains '#': .conf files have no trailing comments"; }
        if (/\s/.test(value)) { return "contains whitespace"; }
        if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) { return "not an absolute URL (expected https://<host>[/path])"; }
        var u;
        try { u = new URL(value); } catch (e) { return "not a valid URL"; }
        if (u.username || u.password || /^[^:]+:\/\/[^/]*@/.test(value)) {
            return "contains user info (user:password@host): credentials never go into URLs";
        }
        if (value.indexOf("?") >= 0) { return "must be a base URL without ?query"; }
        if (!u.hostname) { return "has no host"; }
        if (u.protocol === "https:") { return ""; }
        if (u.protocol === "http:") {
            return (u.hostname === "127.0.0.1" || u.hostname === "[::1]") ? "" :
                "plain http is only allowed to 127.0.0.1 or [::1]; use https://";
        }
        return "must start with https:// (or http:// to 127.0.0.1 or [::1])";
    }

    function fieldProblem(field, value) {
        if (field.type === "url") { return urlProblem(value, field.required); }
        if (field.type === "channel" && value && /\s/.test(value)) { return "a channel name has no spaces"; }
        if (field.type === "path" && /[\r\n]/.test(value)) { return "one line only"; }
        return "";
    }

    function accountProblem(account, kind, isNew) {
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(account)) {
            return "1-64 letters, digits, '_', '-' or '.'";
        }
        if (isNew && state.stanzas[kind + ":" + account]) { return "[" + kind + ":" + account + "] already exists"; }
        return "";
    }

    /* ---- rendering ----------------------------------------------------------------------- */

    function el(tag, attrs, children) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (k) {
            if (k === "text") { node.textContent = attrs[k]; } else if (k === "class") { node.className = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
        });
        (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
        return node;
    }

    function root() { return document.getElementById("stackflow_setup"); }

    function banner(text, bad) {
        var node = document.getElementById("sf-banner");
        if (node) {
            node.textContent = text;
            node.className = "sf-banner" + (bad ? " sf-bad" : "");
            node.style.display = text ? "" : "none";
        }
    }

    function secretUsers(kind, account) {
        return KINDS[kind].secrets.map(function (s) { return { user: s.prefix + "." + account, label: s.label }; });
    }

    function render() {
        var top = root();
        top.textContent = "";
        top.appendChild(el("h2", { text: "StackFlow for Splunk: accounts and secrets" }));
        top.appendChild(el("p", { class: "sf-help", text: "Settings go to stackflow.conf; secrets go to Splunk's credential store (storage/passwords, realm stackflow) and are never shown again. Test runs | stackflowcheck for the account." }));
        top.appendChild(el("div", { id: "sf-banner", class: "sf-banner", style: "display:none" }));
        var names = Object.keys(state.stanzas).sort();
        var table = el("table", { id: "sf-accounts" }, [el("tr", {}, ["Kind", "Account", "Endpoint", "Secrets", ""].map(function (h) { return el("th", { text: h }); }))]);
        names.forEach(function (name) {
            var s = state.stanzas[name];
            var endpoint = s.content.url || s.content.webhook_url || s.content.api_url || "(not set)";
            var secrets = el("td", {}, secretUsers(s.kind, s.account).map(function (u) {
                var stored = !!state.stored[u.user];
                return el("div", { class: stored ? "sf-stored" : "sf-missing", "data-secret": u.user, text: u.user + ": " + (stored ? "stored" : "not set") });
            }));
            var actions = el("td", {}, [
                button("Edit", "sf-edit-" + s.kind + "-" + s.account, function () { openForm(s.kind, s.account); }),
                button("Test", "sf-test-" + s.kind + "-" + s.account, function () { test(s.kind, s.account); }),
                button("Delete", "sf-delete-" + s.kind + "-" + s.account, function () { remove(s.kind, s.account); })
            ]);
            table.appendChild(el("tr", { "data-stanza": name }, [el("td", { text: KINDS[s.kind].label }), el("td", { text: s.account }), el("td", { text: endpoint }), secrets, actions]));
        });
        if (!names.length) {
            table.appendChild(el("tr", {}, [el("td", { colspan: "5", text: "No account yet: add one below." })]));
        }
        top.appendChild(table);
        var kindSelect = el("select", { id: "sf-new-kind" }, Object.keys(KINDS).map(function (k) { return el("option", { value: k, text: KINDS[k].label }); }));
        top.appendChild(el("div", {}, [el("span", { text: "Add an account: " }), kindSelect, button("Add", "sf-add", function () { openForm(kindSelect.value, null); })]));
        top.appendChild(el("div", { id: "sf-form" }));
        top.appendChild(el("div", { id: "sf-test" }));
    }

    function button(text, id, onClick) {
        var b = el("button", { type: "button", id: id, text: text });
        b.addEventListener("click", onClick);
        return b;
    }

    function openForm(kind, account) {
        var isNew = account === null;
        var content = isNew ? {} : state.stanzas[kind + ":" + account].content;
        var box = document.getElementById("sf-form");
        box.textContent = "";
        box.appendChild(el("h3", { text: (isNew ? "New " : "Edit ") + KINDS[kind].label + " account" + (isNew ? "" : " \"" + account + "\"") }));
        var inputs = {};
        function row(id, labelText, input, help) {
            var error = el("div", { class: "sf-error", id: id + "-error" });
            box.appendChild(el("div", { class: "sf-field" }, [el("label", { for: id, text: labelText }), input, help ? el("div", { class: "sf-help", text: help }) : null, error]));
        }
        if (kind === "slack") {
            /* PRODUCT §15: the Slack app is created from the manifest the app ships, which asks
               for exactly the scopes StackFlow uses (appserver/static/slack_app_manifest.json). */
            var manifest = (C.MRSPARKLE_ROOT_PATH || "") + "/" + (C.LOCALE || "en-US") + "/static/app/" + APP + "/slack_app_manifest.json";
            box.appendChild(el("div", { class: "sf-help", id: "sf-slack-manifest" }, [
                el("span", { text: "No Slack app yet? " }),
                el("a", { id: "sf-slack-manifest-link", href: manifest, download: "stackflow_slack_app_manifest.json", text: "Download the Slack app manifest" }),
                el("span", { text: ", then at api.slack.com/apps choose Create New App, From an app manifest, paste it and install the app. Store its Bot User OAuth Token (xoxb-…) below, and for the buttons an app-level token with connections:write (xapp-…)." })
            ]));
        }
        var nameInput = el("input", { type: "text", id: "sf-field-account", value: isNew ? "" : account });
        if (!isNew) { nameInput.setAttribute("disabled", "disabled"); }
        row("sf-field-account", "Account name", nameInput, "alerts pick it with their account parameter (default: default)");
        KINDS[kind].fields.forEach(function (f) {
            var id = "sf-field-" + f.key;
            var input;
            if (f.type === "bool") {
                input = el("select", { id: id }, [el("option", { value: "true", text: "yes" }), el("option", { value: "false", text: "no" })]);
                input.value = (content[f.key] === "false" || content[f.key] === "0") ? "false" : "true";
            } else {
                input = el("input", { type: "text", id: id, value: content[f.key] || "" });
            }
            inputs[f.key] = input;
            row(id, f.label, input, f.help);
        });
        var secretInputs = {};
        secretUsers(kind, isNew ? "<account>" : account).forEach(function (u, i) {
            var prefix = KINDS[kind].secrets[i].prefix;
            var id = "sf-secret-" + prefix;
            var stored = !isNew && state.stored[u.user];
            var input = el("input", { type: "password", id: id, autocomplete: "new-password", placeholder: stored ? "stored: leave empty to keep it" : "not set" });
            secretInputs[prefix] = input;
            row(id, u.label + " (" + u.user + ")", input, "write-only: the stored value is never shown");
        });
        box.appendChild(el("div", {}, [
            button("Save", "sf-save", function () { save(kind, isNew, nameInput, inputs, secretInputs); }),
            button("Cancel", "sf-cancel", function () { box.textContent = ""; })
        ]));
    }

    function showError(id, text) {
        var node = document.getElementById(id + "-error");
        var input = document.getElementById(id);
        if (node) { node.textContent = text; }
        if (input) { input.className = text ? "sf-invalid" : ""; }
        return !!text;
    }

    function save(kind, isNew, nameInput, inputs, secretInputs) {
        var account = nameInput.value.trim();
        var bad = showError("sf-field-account", accountProblem(account, kind, isNew));
        var pairs = [];
        KINDS[kind].fields.forEach(function (f) {
            var value = inputs[f.key].value.trim();
            bad = showError("sf-field-" + f.key, fieldProblem(f, value)) || bad;
            pairs.push([f.key, value]);
        });
        var need = KINDS[kind].atLeastOne;
        if (need && need.every(function (k) { return !inputs[k].value.trim(); })) {
            bad = showError("sf-field-" + need[0], "set the webhook URL, the API URL, or both") || bad;
        }
        var secrets = KINDS[kind].secrets.map(function (s) {
            var value = secretInputs[s.prefix].value;
            bad = showError("sf-secret-" + s.prefix, /[\r\n]/.test(value) ? "one line only" : "") || bad;
            return { user: s.prefix + "." + account, value: value };
        }).filter(function (s) { return s.value !== ""; });
        if (bad) {
            banner("Not saved: fix the fields marked in red.", true);
            return;
        }
        var name = kind + ":" + account;
        banner("Saving [" + name + "]…");
        var chain = saveStanza(name, pairs, !isNew);
        secrets.forEach(function (s) { chain = chain.then(function () { return storeSecret(s.user, s.value); }); });
        chain.then(markConfigured).then(refresh).then(function () {
            banner("Saved [" + name + "]" + (secrets.length ? " and " + secrets.length + " secret(s)" : "") + "; the app is marked configured.");
        }).catch(function (e) { banner(e.message, true); });
    }

    function remove(kind, account) {
        var name = kind + ":" + account;
        if (!window.confirm("Delete [" + name + "] and its stored secrets?")) { return; }
        var chain = call("DELETE", NS + "/configs/conf-stackflow/" + encodeURIComponent(name));
        secretUsers(kind, account).forEach(function (u) {
            if (state.stored[u.user]) { chain = chain.then(function () { return deleteSecret(u.user); }); }
        });
        chain.then(refresh).then(function () { banner("Deleted [" + name + "]."); })
            .catch(function (e) { banner(e.message, true); });
    }

    function test(kind, account) {
        var box = document.getElementById("sf-test");
        box.textContent = "";
        box.appendChild(el("h3", { text: "Test of [" + kind + ":" + account + "]: | stackflowcheck account=" + account + " kind=" + kind }));
        var note = el("p", { text: "Running…" });
        box.appendChild(note);
        runCheck(kind, account).then(function (rows) {
            note.textContent = rows.length + " check(s)";
            var columns = ["kind", "account", "check", "status", "detail", "remedy"];
            var table = el("table", { id: "sf-test-results" }, [el("tr", {}, columns.map(function (c) { return el("th", { text: c }); }))]);
            rows.forEach(function (r) {
                table.appendChild(el("tr", {}, columns.map(function (c) {
                    var value = r[c] === undefined ? "" : String(r[c]);
                    return el("td", { class: c === "status" ? "sf-status-" + value : "", text: value });
                })));
            });
            box.appendChild(table);
        }).catch(function (e) { note.textContent = e.message; });
    }

    function refresh() {
        return Promise.all([loadAccounts(), loadSecrets()]).then(render);
    }

    /* Splunk Web may run this script before it has rendered the dashboard's <html> panel:
       wait for the panel (up to 30 s) rather than depend on Splunk's JS libraries. */
    function start(attempt) {
        attempt = attempt || 0;
        if (!root()) {
            if (attempt < 300) { window.setTimeout(function () { start(attempt + 1); }, 100); }
            return;
        }
        refresh().catch(function (e) {
            root().textContent = "The StackFlow setup page could not read the configuration: " + e.message;
        });
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", function () { start(0); });
    } else {
        start(0);
    }
}());
