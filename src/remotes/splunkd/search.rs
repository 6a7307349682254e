//! One search through splunkd's `search/jobs/export` (PRODUCT §16), bounded in rows, time and
//! memory: `POST /servicesNS/nobody/stackflow/search/jobs/export` with `search`,
//! `earliest_time`, `latest_time`, `count` and `output_mode=json` (splunk-sdk-python
//! `Jobs.export`: one round trip, results streamed as they are ready, no `exec_mode`). The answer
//! is one JSON object per line (splunk-sdk-python `JSONResultsReader`: `preview`, `messages`,
//! `result` or `results`); each final row is handed to the caller as it arrives and the
//! stream is not read past `max_rows`. Export creates no job to delete: a search over its
//! budget is cancelled by closing its connection (the agent's global timeout is the budget,
//! and the deadline is checked between lines too), and reported as timed out.

use super::{APP, Splunkd};
use crate::error::{Error, Result};
use crate::net::form_encode;
use crate::net::http::{HttpClient, HttpOptions, TransportErrorKind};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

/// A line of the answer longer than this is not a row we can use: the search is failed.
const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// What to run.
#[derive(Clone, Debug)]
pub struct SearchRequest<'a> {
    pub search: &'a str,
    pub earliest: &'a str,
    pub latest: &'a str,
    pub max_rows: usize,
    pub timeout: Duration,
}

/// How a search ended (its rows went to the visitor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchEnd {
    /// splunkd sent its last row.
    Complete,
    /// `max_rows` rows were read; the rest was left unread.
    Truncated,
    /// The budget ran out: the connection was closed, which ends an export search.
    TimedOut,
}

#[derive(Clone, Debug)]
pub struct SearchRun {
    pub rows: u64,
    pub end: SearchEnd,
    /// splunkd's `messages` of type ERROR or FATAL, if any (kept short).
    pub errors: Vec<String>,
}

/// SPL sent through the REST API must start with a command: `|` or `search`, else `search `
/// goes in front (splunk-sdk-javascript docs, "Searching").
pub fn with_command(search: &str) -> String {
    let trimmed = search.trim_start();
    let first = trimmed.split_whitespace().next().unwrap_or("");
    if trimmed.starts_with('|') || first.eq_ignore_ascii_case("search") {
        trimmed.to_string()
    } else {
        format!("search {trimmed}")
    }
}

impl Splunkd {
    /// Runs `request` and hands each final row to `visit`, within `max_rows` and `timeout`.
    /// A refusal (bad SPL, 4xx) is `Rejected`, splunkd away `Unavailable`; running out of
    /// time is not an error but `SearchEnd::TimedOut` with the rows read until then.
    pub fn export(
        &self,
        request: &SearchRequest<'_>,
        visit: &mut dyn FnMut(&Value),
    ) -> Result<SearchRun> {
        let started = Instant::now();
        let options = HttpOptions { timeout: request.timeout, ..self.options.clone() };
        let http = HttpClient::new(&options, "splunkd")?;
        let count = request.max_rows.to_string();
        let search = with_command(request.search);
        let body = form_encode(&[
            ("search", search.as_str()),
            ("earliest_time", request.earliest),
            ("latest_time", request.latest),
            ("count", count.as_str()),
            ("output_mode", "json"),
        ]);
        let url = format!("{}/servicesNS/nobody/{APP}/search/jobs/export", self.base);
        let auth = self.auth_header();
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        let what = "splunkd POST search/jobs/export";
        let mut response = match http.post_streamed(&url, &headers, body.as_bytes()) {
            Ok(response) => response,
            Err(error) if error.kind == TransportErrorKind::Timeout => {
                return Ok(SearchRun { rows: 0, end: SearchEnd::TimedOut, errors: Vec::new() });
            }
            Err(error) => return Err(self.failure(Err(error), what)),
        };
        if !(200..300).contains(&response.status) {
            return Err(self.failure(response.into_response(), what));
        }
        let mut run = SearchRun { rows: 0, end: SearchEnd::Complete, errors: Vec::new() };
        let mut reader = BufReader::with_capacity(64 * 1024, response.body());
        let mut line = Vec::new();
        loop {
            if run.rows >= request.max_rows as u64 {
                run.end = SearchEnd::Truncated;
                break;
            }
            if started.elapsed() >= request.timeout {
                run.end = SearchEnd::TimedOut;
                break;
            }
            line.clear();
            let read = Read::take(&mut reader, MAX_LINE_BYTES).read_until(b'\n', &mut line);
            match read {
                Ok(0) => break,
                Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_LINE_BYTES => {
                    return Err(Error::Rejected(format!(
                        "{what}: an answer line is longer than {MAX_LINE_BYTES} bytes"
                    )));
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) || started.elapsed() >= request.timeout =>
                {
                    run.end = SearchEnd::TimedOut;
                    break;
                }
                Err(error) => {
                    return Err(Error::Unavailable(format!(
                        "{what}: the answer broke off after {} rows: {error}",
                        run.rows
                    )));
                }
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let Ok(parsed) = serde_json::from_slice::<Value>(text) else {
                return Err(Error::Rejected(format!("{what}: an answer line is not JSON")));
            };
            self::take_line(&parsed, request.max_rows, &mut run, visit);
        }
        // Dropping the reader closes the connection: an export search left unread ends.
        Ok(run)
    }
}

impl Splunkd {
    /// The error a failed answer stands for (`checked`'s classification).
    fn failure(
        &self,
        answer: std::result::Result<
            crate::net::http::HttpResponse,
            crate::net::http::TransportError,
        >,
        what: &str,
    ) -> Error {
        match self.checked(answer, what) {
            Err(error) => error,
            Ok(answer) => Error::Rejected(format!("{what}: HTTP {}", answer.status)),
        }
    }
}

/// One line of an export answer: its messages, and its rows unless it is a preview.
fn take_line(line: &Value, max_rows: usize, run: &mut SearchRun, visit: &mut dyn FnMut(&Value)) {
    for message in line.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let kind = message.get("type").and_then(Value::as_str).unwrap_or("");
        if matches!(kind, "ERROR" | "FATAL") && run.errors.len() < 5 {
            let text = message.get("text").and_then(Value::as_str).unwrap_or("");
            run.errors.push(crate::mapping::slack::truncate(text, 300));
        }
    }
    // Preview rows are superseded by the final ones (a reporting search previews its table).
    if line.get("preview").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let rows = line.get("result").into_iter().chain(
        line.get("results").and_then(Value::as_array).map(|rows| rows.as_slice()).unwrap_or(&[]),
    );
    for row in rows {
        if run.rows >= max_rows as u64 {
            run.end = SearchEnd::Truncated;
            return;
        }
        run.rows += 1;
        visit(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_search_starts_with_a_command() {
        assert_eq!(with_command("index=main user=\"a\""), "search index=main user=\"a\"");
        assert_eq!(with_command("  search index=main"), "search index=main");
        assert_eq!(with_command("| tstats count"), "| tstats count");
        assert_eq!(with_command("searchindex=x"), "search searchindex=x");
    }

    #[test]
    fn lines_give_final_rows_up_to_the_bound_and_their_errors() {
        let mut run = SearchRun { rows: 0, end: SearchEnd::Complete, errors: Vec::new() };
        let mut seen = Vec::new();
        let mut visit = |row: &Value| seen.push(row["n"].clone());
        take_line(&json!({"preview": true, "result": {"n": 0}}), 2, &mut run, &mut visit);
        take_line(&json!({"preview": false, "result": {"n": 1}}), 2, &mut run, &mut visit);
        take_line(
            &json!({"messages": [{"type": "FATAL", "text": "bad"}], "results": [{"n": 2}, {"n": 3}]}),
            2,
            &mut run,
            &mut visit,
        );
        assert_eq!(seen, [json!(1), json!(2)]);
        assert_eq!((run.rows, run.end), (2, SearchEnd::Truncated));
        assert_eq!(run.errors, ["bad"]);
    }
}
