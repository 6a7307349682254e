//! `summary = llm` at send time: for an item whose request carries an `llm` context (built by
//! `mapping::slack::llm_context`), redact it (`mapping::redact`), ask the account's model once
//! within its `timeout_s` (`remotes::llm`), audit the call (`audit::llm`), restore the answer's
//! placeholders and swap it for the template summary. Any failure keeps the template summary:
//! the model can neither fail nor hold the message past its budget.

use crate::item::DeliveryItem;
use crate::mapping::redact::Redactor;
use crate::mapping::slack::{SUMMARY_MAX, replace_summary, truncate};
use crate::remotes::llm::receipt::{self as audit_llm, LlmReceipt};
use crate::remotes::llm::{LlmApi, LlmOutcome};
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use serde_json::Value;
use std::collections::HashMap;

/// What the model is asked to do (no data in it).
pub const SYSTEM_PROMPT: &str = "You are a senior SOC analyst. Summarise the security alert below for \
the on-call analyst in at most three plain sentences: who, what, where, how risky, and why it is \
notable. Keep placeholders such as <USER_1> or <IP_1> exactly as written. No preamble, no markdown.";

/// What the model is asked to do with a triage search's digest (PRODUCT §16; no data in it).
pub const TRIAGE_PROMPT: &str = "You are a senior SOC analyst. Summarise the results of the triage \
search below for the analyst in at most three plain sentences: how much activity, which values \
dominate, and what looks worth a closer look. Keep placeholders such as <USER_1> or <IP_1> exactly \
as written. No preamble, no markdown.";

/// The model's summary of a triage search's digest (`llm`: `fields`, `users`), under the same
/// redaction as an alert's (`redacted_prompt`), audited as a `stackflow:llm` line; `None` (the
/// caller keeps `template`) when the account cannot be used or the model fails.
pub fn triage_summary(
    settings: &Settings,
    splunkd: &Splunkd,
    account: &str,
    title: &str,
    llm: &Value,
    template: &str,
    mut receipt: LlmReceipt,
) -> Option<String> {
    receipt.account = account.to_string();
    let audit = |receipt: &LlmReceipt| {
        audit_llm::write(settings.splunk_home.as_deref(), &settings.receipts_index(), receipt);
    };
    let api = match LlmApi::open(settings, splunkd, account) {
        Ok(api) => api,
        Err(error) => {
            log::warn!(
                "triage: summary=llm: cannot use [llm:{account}] ({error}); using the template summary"
            );
            receipt.outcome = LlmOutcome::Error.as_str().into();
            receipt.message = format!("[llm:{account}] is not usable (see the listener's log)");
            audit(&receipt);
            return None;
        }
    };
    receipt.model = api.account.model.clone();
    let (redacted, redactor) = redacted_prompt(title, llm, template, api.account.redact_ips);
    receipt.redactions = redactor.counts();
    let answer = api.complete(TRIAGE_PROMPT, &redacted);
    receipt.latency_ms = answer.latency_ms;
    receipt.prompt_tokens = answer.prompt_tokens;
    receipt.completion_tokens = answer.completion_tokens;
    receipt.outcome = answer.outcome.as_str().into();
    receipt.message = answer.reason.clone();
    audit(&receipt);
    match (answer.outcome, answer.text) {
        (LlmOutcome::Ok, Some(text)) => {
            let restored = redactor.restore(&text);
            let line = restored.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(truncate(&line, SUMMARY_MAX)).filter(|line| !line.is_empty())
        }
        (outcome, _) => {
            log::warn!(
                "triage: summary=llm: model {} ({account}) {}: {}; using the template summary",
                api.account.model,
                outcome.as_str(),
                answer.reason
            );
            None
        }
    }
}

pub struct LlmSummaries {
    settings: Settings,
    splunkd: Splunkd,
    /// Opened model connections by account (`None`: the account cannot be used in this run).
    apis: HashMap<String, Option<LlmApi>>,
    /// The summary chosen per dedupe key (`None`: the template), so that a retried post does
    /// not ask again.
    done: HashMap<String, Option<String>>,
}

/// The user message: the alert's name and the row's fields, one `name: value` a line, then the
/// template summary as a draft. Redacted as a whole by [`redacted_prompt`].
fn prompt(search_name: &str, llm: &Value, template: &str) -> String {
    let mut text = format!("Alert: {search_name}\nFields:\n");
    if let Some(fields) = llm.get("fields").and_then(Value::as_object) {
        for (name, value) in fields {
            if let Some(value) = value.as_str() {
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
    }
    text.push_str(&format!("Draft summary: {template}\n"));
    text
}

/// The only text that may leave for a model: the prompt with PII replaced by placeholders
/// (user names from the item's user-type fields), and the redactor that can restore them.
pub fn redacted_prompt(
    search_name: &str,
    llm: &Value,
    template: &str,
    redact_ips: bool,
) -> (String, Redactor) {
    let mut redactor = Redactor::new(redact_ips);
    for user in llm.get("users").and_then(Value::as_array).into_iter().flatten() {
        if let Some(user) = user.as_str() {
            redactor.add_user(user);
        }
    }
    let redacted = redactor.redact(&prompt(search_name, llm, template));
    (redacted, redactor)
}

impl LlmSummaries {
    pub fn new(settings: &Settings, splunkd: &Splunkd) -> LlmSummaries {
        LlmSummaries {
            settings: settings.clone(),
            splunkd: splunkd.clone(),
            apis: HashMap::new(),
            done: HashMap::new(),
        }
    }

    /// Swaps the model's summary into `request` when it asks for one and the model answers.
    pub fn apply(&mut self, item: &DeliveryItem, request: &mut Value) {
        let Some(llm) = request.get("llm").cloned() else { return };
        let template = llm.get("summary").and_then(Value::as_str).unwrap_or("").to_string();
        let summary = match self.done.get(&item.dedupe_key) {
            Some(summary) => summary.clone(),
            None => {
                let summary = self.ask(item, &llm, &template);
                self.done.insert(item.dedupe_key.clone(), summary.clone());
                summary
            }
        };
        if let Some(summary) = summary
            && !replace_summary(request, &template, &summary)
        {
            log::warn!(
                "stackflow_slack: the model's summary could not be placed; the template summary stays"
            );
        }
    }

    fn ask(&mut self, item: &DeliveryItem, llm: &Value, template: &str) -> Option<String> {
        let account = llm.get("account").and_then(Value::as_str).unwrap_or("default").to_string();
        let mut receipt = LlmReceipt {
            action: item.context.action.clone(),
            account: account.clone(),
            sid: item.context.sid.clone(),
            rid: item.context.rid.clone(),
            search_name: item.context.search_name.clone(),
            dedupe_key: item.dedupe_key.clone(),
            ..LlmReceipt::default()
        };
        if !self.apis.contains_key(&account) {
            let api = match LlmApi::open(&self.settings, &self.splunkd, &account) {
                Ok(api) => Some(api),
                Err(error) => {
                    log::warn!(
                        "stackflow_slack: summary=llm: cannot use [llm:{account}] ({error}); using the template summary"
                    );
                    None
                }
            };
            self.apis.insert(account.clone(), api);
        }
        let Some(api) = self.apis.get(&account).and_then(Option::as_ref) else {
            receipt.outcome = LlmOutcome::Error.as_str().into();
            receipt.message = format!("[llm:{account}] is not usable (see the alert's log)");
            self.audit(&receipt);
            return None;
        };
        receipt.model = api.account.model.clone();
        let (redacted, redactor) =
            redacted_prompt(&item.context.search_name, llm, template, api.account.redact_ips);
        receipt.redactions = redactor.counts();
        let answer = api.complete(SYSTEM_PROMPT, &redacted);
        receipt.latency_ms = answer.latency_ms;
        receipt.prompt_tokens = answer.prompt_tokens;
        receipt.completion_tokens = answer.completion_tokens;
        receipt.outcome = answer.outcome.as_str().into();
        receipt.message = answer.reason.clone();
        self.audit(&receipt);
        match (answer.outcome, answer.text) {
            (LlmOutcome::Ok, Some(text)) => {
                let restored = redactor.restore(&text);
                let line = restored.split_whitespace().collect::<Vec<_>>().join(" ");
                Some(truncate(&line, SUMMARY_MAX)).filter(|line| !line.is_empty())
            }
            (outcome, _) => {
                log::warn!(
                    "stackflow_slack: summary=llm: model {} ({}) {}: {}; using the template summary",
                    api.account.model,
                    account,
                    outcome.as_str(),
                    answer.reason
                );
                None
            }
        }
    }

    fn audit(&self, receipt: &LlmReceipt) {
        audit_llm::write(
            self.settings.splunk_home.as_deref(),
            &self.settings.receipts_index(),
            receipt,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::AlertContext;
    use crate::mapping::slack::{default_summary, llm_context};
    use crate::splunk::results::{FieldValue, Row};

    /// xorshift64*: a deterministic generator, so failures repeat.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
        fn word(&mut self) -> String {
            (0..3 + self.below(6)).map(|_| (b'a' + self.below(26) as u8) as char).collect()
        }
    }

    /// Property: for generated notables, no value classed as PII (user-type field values,
    /// e-mails, addresses, phone numbers, Luhn-valid cards, tokens) appears in the text that
    /// would be sent, wherever in the row it sits (its own field, free text, the summary).
    #[test]
    fn property_no_pii_value_of_a_row_reaches_the_request_body() {
        let mut rng = Rng(0x1600_d00d_5eed_0001);
        let context = AlertContext { search_name: "Brute Force".into(), ..AlertContext::default() };
        for case in 0..500 {
            let user = format!("{}{}", rng.word(), rng.below(100));
            let email = format!("{}@{}.example", rng.word(), rng.word());
            let ip = format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254));
            let ipv6 = format!("2001:db8:{:x}::{:x}", rng.below(65536), 1 + rng.below(65535));
            let phone = format!("+44 20 {} {}", 1000 + rng.below(9000), 1000 + rng.below(9000));
            let card = ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"]
                [rng.below(3) as usize];
            let token = format!("eyJ{}.{}.{}", rng.word(), rng.word(), rng.word());
            let pii = [&user, &email, &ip, &ipv6, &phone, &card.to_string(), &token];
            let free = format!(
                "{user} from {ip} mailed {email}, called {phone}, paid {card}; auth Bearer {token}"
            );
            let pairs: Vec<(&str, FieldValue)> = vec![
                (
                    ["user", "src_user", "dest_user"][rng.below(3) as usize],
                    FieldValue::Single(user.clone()),
                ),
                ("src", FieldValue::Multi(vec![ip.clone(), ipv6.clone()])),
                ("comment", FieldValue::Single(free)),
                ("rule_name", FieldValue::Single("Brute Force".into())),
            ];
            let row = Row::from_pairs("0", &pairs);
            let template = default_summary(&row, &context);
            let llm = llm_context(&row, "default", &template);
            let (sent, redactor) = redacted_prompt("Brute Force", &llm, &template, true);
            for value in pii {
                assert!(!sent.contains(value.as_str()), "case {case}: {value:?} in {sent:?}");
            }
            assert!(redactor.total() >= 7, "case {case}: {sent}");
            let back = redactor.restore(&sent);
            assert!(back.contains(&user) && back.contains(&email) && back.contains(&ip), "{back}");
        }
    }
}
