//! SOAR action runs, read back as the state input reads them: `GET /rest/action_run` (the
//! generic list: `_filter_container`, `_filter_container__in`, `_filter_update_time__gt`,
//! `page_size`, `page`, `sort`, `order`), `GET /rest/action_run/<id>`, and the app runs
//! behind them (`GET /rest/app_run`, `_filter_action_run`). The objects carry the fields of
//! the "REST Run Action" request (`action`, `name`, `type`, `targets` with `app_id`,
//! `assets`, `parameters`), `container`, `playbook_run`, `status`, `message` and the times;
//! the app's name and result summary (`app`, `result_summary`) are on both the action run and
//! its app run (unverified: see docs/remote-facts-part3.md). Tests seed them with
//! `add_soar_action_run` and move them with `update_soar_action_run`; playbook runs are
//! seeded and finished with `add_soar_playbook_run` / `finish_soar_playbook_run`.

use super::{Soar, failed, list};
use crate::http::{Request, Response};
use crate::util::iso_now;
use crate::{Emulator, lock};
use serde_json::{Map, Value, json};

/// Statuses after which a run changes no more (SOAR's run statuses; `running` and
/// `pending` are not final).
fn is_final(status: &str) -> bool {
    !matches!(status, "running" | "pending" | "waiting")
}

impl Soar {
    /// Seeds an action run of `container` (any fields; defaults for the others); its id.
    pub fn add_action_run(&mut self, container: u64, fields: &Map<String, Value>) -> u64 {
        let id = self.action_runs.len() as u64 + 1;
        let now = iso_now();
        let mut run = json!({
            "id": id, "container": container, "action": "lookup ip", "name": format!("action_{id}"),
            "type": "investigate", "playbook_run": null, "playbook": null, "status": "success",
            "message": "1 action succeeded", "app": "Emulator App",
            "targets": [{"app_id": 1, "assets": ["emulator_asset"], "parameters": []}],
            "result_summary": {}, "cancelled": false, "owner": null, "effective_user": null,
            "create_time": now, "start_time": now, "end_time": null, "close_time": null,
            "update_time": now,
        });
        for (k, v) in fields.iter().filter(|(k, _)| !matches!(k.as_str(), "id" | "container")) {
            run[k] = v.clone();
        }
        if is_final(run["status"].as_str().unwrap_or("")) && run["end_time"].is_null() {
            run["end_time"] = now.clone().into();
            run["close_time"] = now.into();
        }
        self.action_runs.push(run);
        id
    }
    /// Changes an action run's fields (`update_time` moves; a final status sets `end_time`).
    pub fn update_action_run(&mut self, id: u64, fields: &Map<String, Value>) -> bool {
        let Some(run) = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.action_runs.get_mut(i))
        else {
            return false;
        };
        for (k, v) in fields.iter().filter(|(k, _)| !matches!(k.as_str(), "id" | "container")) {
            run[k] = v.clone();
        }
        let now = iso_now();
        if is_final(run["status"].as_str().unwrap_or("")) && run["end_time"].is_null() {
            run["end_time"] = now.clone().into();
            run["close_time"] = now.clone().into();
        }
        run["update_time"] = now.into();
        true
    }
    /// A playbook run seeded as SOAR would have started it (`POST /rest/playbook_run` fields).
    pub fn add_playbook_run(&mut self, container: u64, playbook: &str, status: &str) -> u64 {
        let id = self.runs.len() as u64 + 1;
        let now = iso_now();
        let end = if is_final(status) { Value::from(now.clone()) } else { Value::Null };
        self.runs.push(json!({"id": id, "status": status, "container": container,
            "playbook": playbook, "scope": "new", "message": "", "cancelled": false,
            "start_time": now, "end_time": end, "update_time": now}));
        id
    }
}

/// The app run behind an action run (one per action run here).
fn app_run(run: &Value) -> Value {
    let target = &run["targets"][0];
    json!({"id": run["id"], "action_run": run["id"], "container": run["container"],
           "app": target["app_id"], "app_name": run["app"], "asset": target["assets"][0],
           "status": run["status"], "message": run["message"],
           "result_summary": run["result_summary"], "result_data": [],
           "start_time": run["start_time"], "end_time": run["end_time"],
           "update_time": run["update_time"]})
}

/// `GET /rest/action_run[/<id>]` and `GET /rest/app_run[/<id>]`.
pub(super) fn handle(s: &Soar, req: &Request, what: &str, rest: &[&str]) -> Response {
    let one = |id: &str| {
        id.parse::<usize>().ok().and_then(|i| i.checked_sub(1)).and_then(|i| s.action_runs.get(i))
    };
    match (what, rest) {
        ("action_run", []) => list(s.action_runs.iter(), req, None, Value::clone),
        ("action_run", [id]) => match one(id) {
            Some(run) => Response::json(200, run),
            None => failed(404, "Requested item not found"),
        },
        ("app_run", []) => {
            let runs: Vec<Value> = s.action_runs.iter().map(app_run).collect();
            list(runs.iter(), req, None, Value::clone)
        }
        ("app_run", [id]) => match one(id) {
            Some(run) => Response::json(200, &app_run(run)),
            None => failed(404, "Requested item not found"),
        },
        _ => failed(404, &format!("Not found: {} {}", req.method, req.path)),
    }
}

impl Emulator {
    /// Seeds an action run of `container` (fields such as `action`, `app`, `status`,
    /// `message`, `result_summary`, `playbook_run`; defaults for the rest); returns its id.
    pub fn add_soar_action_run(&self, container: u64, fields: Value) -> u64 {
        let fields = fields.as_object().cloned().unwrap_or_default();
        lock(&self.shared.soar).add_action_run(container, &fields)
    }
    /// Changes an action run (`update_time` moves); false if there is no such run.
    pub fn update_soar_action_run(&self, id: u64, fields: Value) -> bool {
        let fields = fields.as_object().cloned().unwrap_or_default();
        lock(&self.shared.soar).update_action_run(id, &fields)
    }
    pub fn soar_action_runs(&self) -> Vec<Value> {
        lock(&self.shared.soar).action_runs.clone()
    }
    /// Seeds a playbook run of `container` with `status` (`running`, `success`, `failed`…);
    /// returns its id.
    pub fn add_soar_playbook_run(&self, container: u64, playbook: &str, status: &str) -> u64 {
        lock(&self.shared.soar).add_playbook_run(container, playbook, status)
    }
    /// Finishes (or moves) a playbook run: `status` and `message` set, `update_time` moves,
    /// a final status sets `end_time`.
    pub fn finish_soar_playbook_run(&self, run_id: u64, status: &str, message: &str) {
        let mut soar = lock(&self.shared.soar);
        soar.set_run_status(&run_id.to_string(), status);
        if let Some(run) = usize::try_from(run_id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| soar.runs.get_mut(i))
        {
            run["message"] = message.into();
        }
    }
}
