//! Unit tests of `search_command`.

use super::*;
use crate::splunk::chunked::write_chunk_value;
use crate::splunk::splunk_csv::tests::fixture;
use serde_json::json;

/// What the test command adds to each row.
#[derive(Clone, Copy)]
enum Adds {
    /// `word_count` = runs of word characters in `text` (countmatches `pattern="\w+" text`).
    WordCount,
    /// `n` = row index within the chunk.
    RowIndex,
    /// `added=v` and the multivalue `mv`, like the golden splunklib `addfield` command.
    AddfieldLikeSdk,
    /// Overrides `age` with twice its value (NDietrich's `doubleage`).
    DoubleAge,
    /// `accum_age` = running sum of `age` across chunks (NDietrich's `accumages`).
    AccumAge,
    Nothing,
}

struct TestCommand {
    config: CommandConfig,
    adds: Adds,
    getinfo_error: Option<&'static str>,
    execute_error: Option<&'static str>,
    warn_each_chunk: bool,
    info: Option<SearchInfo>,
    n_executes: usize,
    n_records: usize,
    finished_flags: Vec<bool>,
    running_age: i64,
}

impl TestCommand {
    fn new(command_type: CommandType, adds: Adds) -> TestCommand {
        TestCommand {
            config: CommandConfig::new(command_type),
            adds,
            getinfo_error: None,
            execute_error: None,
            warn_each_chunk: false,
            info: None,
            n_executes: 0,
            n_records: 0,
            finished_flags: Vec::new(),
            running_age: 0,
        }
    }
}

impl SearchCommand for TestCommand {
    fn getinfo(&mut self, info: &SearchInfo) -> Result<CommandConfig, CommandError> {
        self.info = Some(info.clone());
        match self.getinfo_error {
            Some(message) => Err(CommandError::new(message)),
            None => Ok(self.config.clone()),
        }
    }

    fn execute(&mut self, chunk: &mut ExecuteChunk<'_>) -> Result<(), CommandError> {
        self.n_executes += 1;
        self.n_records += chunk.n_rows();
        self.finished_flags.push(chunk.finished());
        if self.warn_each_chunk {
            chunk.message(Level::Warn, format!("saw {} rows", chunk.n_rows()));
        }
        if let Some(message) = self.execute_error {
            return Err(CommandError::new(message));
        }
        let table = chunk.table();
        match self.adds {
            Adds::WordCount => {
                let text = table.field_index("text");
                let slot = chunk.field("word_count");
                for row in 0..table.n_rows() {
                    let n_words =
                        text.map_or(0, |column| count_words(&table.cell_str(row, column)));
                    chunk.set(row, slot, n_words.to_string())?;
                }
            }
            Adds::RowIndex => {
                let slot = chunk.field("n");
                for row in 0..table.n_rows() {
                    chunk.set(row, slot, row.to_string())?;
                }
            }
            Adds::AddfieldLikeSdk => {
                for row in 0..table.n_rows() {
                    chunk.set_by_name(row, "added", "v")?;
                    let values = ["a$b", "c", "", "d,e"].map(String::from).to_vec();
                    chunk.set_by_name(row, "mv", values)?;
                }
            }
            Adds::DoubleAge | Adds::AccumAge => {
                let column = table
                    .field_index("age")
                    .ok_or_else(|| CommandError::new("the age field is missing"))?;
                for row in 0..table.n_rows() {
                    let age: i64 = table.cell_str(row, column).parse().map_err(|_| {
                        CommandError::new(format!("row {row}: age is not a number"))
                    })?;
                    if let Adds::DoubleAge = self.adds {
                        chunk.set_by_name(row, "age", (2 * age).to_string())?;
                    } else {
                        self.running_age += age;
                        chunk.set_by_name(row, "accum_age", self.running_age.to_string())?;
                    }
                }
            }
            Adds::Nothing => {}
        }
        Ok(())
    }
}

/// Runs of `\w` characters (Python 3 `re`: Unicode alphanumerics and `_`).
fn count_words(text: &str) -> usize {
    let mut n_words = 0;
    let mut in_word = false;
    for ch in text.chars() {
        let is_word = ch.is_alphanumeric() || ch == '_';
        if is_word && !in_word {
            n_words += 1;
        }
        in_word = is_word;
    }
    n_words
}

fn chunks(bytes: &[u8]) -> Vec<Chunk> {
    let mut input = bytes;
    let mut res = Vec::new();
    while let Some(chunk) = read_chunk(&mut input).expect("our output is always well-framed") {
        res.push(chunk);
    }
    res
}

/// Reads an SDK `.output` file; like the SDK's own comparer it skips the stray newlines
/// the 6.3 files have after the getinfo metadata.
fn sdk_chunks(bytes: &[u8]) -> Vec<Chunk> {
    let mut input = bytes;
    let mut res = Vec::new();
    loop {
        while let [b'\n', rest @ ..] = input {
            input = rest;
        }
        match read_chunk(&mut input).unwrap() {
            Some(chunk) => res.push(chunk),
            None => return res,
        }
    }
}

fn run_bytes(
    input: &[u8],
    command: &mut TestCommand,
) -> (Result<(), ProtocolError>, Vec<Chunk>, Vec<u8>) {
    let mut output = Vec::new();
    let res = run(input, &mut output, command);
    (res, chunks(&output), output)
}

fn stream(requests: &[(Value, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (metadata, body) in requests {
        write_chunk_value(&mut out, metadata, body.as_bytes()).unwrap();
    }
    out
}

/// A getinfo request shaped like splunkd 8.2.1's (key order and types as captured by
/// NDietrich), with neutral values.
fn getinfo_821(command: &str, args: &[&str]) -> Value {
    json!({
        "action": "getinfo", "preview": false, "streaming_command_will_restart": false,
        "searchinfo": {
            "args": args, "raw_args": args, "dispatch_dir": "/opt/splunk/var/run/splunk/dispatch/1629786023.114",
            "sid": "1629786023.114", "app": "search", "owner": "admin", "username": "admin",
            "session_key": "SECRET-TOKEN", "splunkd_uri": "https://127.0.0.1:8089",
            "splunk_version": "8.2.1",
            "search": "litsearch%20index%3Dbeetles%20%7C%20doubleage", "command": command,
            "maxresultrows": 50000, "earliest_time": "0", "latest_time": "0"
        }
    })
}

fn execute(finished: bool) -> Value {
    json!({"action": "execute", "finished": finished})
}

fn assert_same_input_cells(input: &Table, output: &Table) {
    assert_eq!(output.n_rows(), input.n_rows());
    assert_eq!(&output.header()[..input.n_columns()], input.header());
    for row in 0..input.n_rows() {
        for column in 0..input.n_columns() {
            assert_eq!(
                output.cell(row, column),
                input.cell(row, column),
                "row {row} column {column}"
            );
        }
    }
}

fn error_reply(message: &str) -> Value {
    json!({"inspector": {"messages": [["ERROR", message]]}, "finished": true, "error": message})
}

#[test]
fn countmatches_recording_is_answered_byte_exactly() {
    let input = fixture("countmatches.input.gz");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::WordCount);
    let (res, replies, output) = run_bytes(&input, &mut command);
    res.unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(command.n_executes, 1);
    assert_eq!(command.n_records, 500);
    assert_eq!(command.finished_flags, [true]);

    // Framing: re-serialising what we parsed reproduces our output byte for byte.
    let mut reframed = Vec::new();
    for reply in &replies {
        write_chunk_value(&mut reframed, &reply.metadata, &reply.body).unwrap();
    }
    assert_eq!(reframed, output);

    let info = command.info.unwrap();
    assert_eq!(info.args, ["fieldname=word_count", "pattern=\\w+", "text"]);
    assert_eq!(info.raw_args[1], "pattern=\"\\w+\"");
    assert_eq!(info.sid, "1433261372.158");
    assert_eq!(info.splunk_version, "20150522");
    assert_eq!(info.maxresultrows, None);
    assert!(!info.session_key.is_empty());

    let expected = chunks(&fixture("countmatches.sdk211.output"));
    assert_eq!(replies[0].metadata, expected[0].metadata);
    assert_eq!(replies[1].metadata, expected[1].metadata);

    let request_body = crate::splunk::splunk_csv::tests::chunk_body(&input, 1);
    let input_table = Table::decode(request_body.as_slice()).unwrap();
    let output_table = Table::decode(replies[1].body.as_slice()).unwrap();
    assert_same_input_cells(&input_table, &output_table);
    let text = output_table.field_index("text").unwrap();
    assert_eq!(output_table.cell_str(1, text), "Tú novia te ama mucho");
    assert!(std::str::from_utf8(&replies[1].body).is_ok());

    // Semantically equal to splunklib's reply (it interleaves `__mv_` columns, we append).
    // Word counts are compared on ASCII text only: Rust's `is_alphanumeric` counts combining
    // marks (e.g. Thai vowel signs) as letters, Python's `\w` does not.
    let sdk_table = Table::decode(expected[1].body.as_slice()).unwrap();
    assert_eq!(sdk_table.n_rows(), output_table.n_rows());
    let mut n_compared_counts = 0;
    for row in 0..sdk_table.n_rows() {
        for name in ["_serial", "_time", "text"] {
            assert_eq!(
                output_table.value_by_name(row, name),
                sdk_table.value_by_name(row, name),
                "row {row} {name}"
            );
        }
        if output_table.cell_str(row, text).is_ascii() {
            n_compared_counts += 1;
            let ours = output_table.value_by_name(row, "word_count");
            assert_eq!(ours, sdk_table.value_by_name(row, "word_count"), "row {row}");
        }
    }
    assert!(n_compared_counts > 200, "{n_compared_counts}");
}

#[test]
fn sum_map_recording_passes_50000_rows_through() {
    let input = fixture("sum.map.input.gz");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::RowIndex);
    let started = std::time::Instant::now();
    let mut output = Vec::new();
    let res = run(&input[..], &mut output, &mut command);
    eprintln!("sum.map: whole run() (read, decode, add n, encode, write) {:?}", started.elapsed());
    res.unwrap();
    let replies = chunks(&output);
    assert_eq!(replies.len(), 2);
    assert_eq!(command.n_records, 50_000);
    let expected = sdk_chunks(&fixture("sum.map.output"));
    assert_eq!(replies[0].metadata, expected[0].metadata);
    assert_eq!(replies[1].metadata, json!({"finished": true}));
    let info = command.info.unwrap();
    assert_eq!(info.args, ["total=total", "value1", "phase=map"]);

    let request_body = crate::splunk::splunk_csv::tests::chunk_body(&input, 1);
    let input_table = Table::decode(request_body.as_slice()).unwrap();
    let output_table = Table::decode(replies[1].body.as_slice()).unwrap();
    assert_same_input_cells(&input_table, &output_table);
    assert!(input_table.field_index("_raw").is_some());
    let n = output_table.field_index("n").unwrap();
    assert_eq!(n, input_table.n_columns());
    assert_eq!(output_table.cell_str(49_999, n), "49999");
}

#[test]
fn sum_reduce_recording_matches_sdk_output() {
    let input = fixture("sum.reduce.input.gz");
    let mut command = TestCommand::new(CommandType::Reporting, Adds::Nothing);
    command.config.streaming_preop = Some("sum phase=\"map\" total=\"total\" value1".to_owned());
    let (res, replies, output) = run_bytes(&input, &mut command);
    res.unwrap();
    let expected = sdk_chunks(&fixture("sum.reduce.output"));
    assert_eq!(replies[0].metadata, expected[0].metadata);
    assert_eq!(replies[1].metadata, expected[1].metadata);
    assert!(output.starts_with(b"chunked 1.0,81,0\n{\"type\":\"reporting\",\"streaming_preop\":"));
    let ours = Table::decode(replies[1].body.as_slice()).unwrap();
    let sdk = Table::decode(expected[1].body.as_slice()).unwrap();
    assert_eq!(ours.header(), sdk.header());
    assert_eq!(ours.value(0, 0), sdk.value(0, 0));
    // Unchanged rows keep splunkd's quoting; the header is re-encoded with minimal quoting.
    assert_eq!(replies[1].body, b"total,__mv_total\n\"2147943.07811\",\n");
}

#[test]
fn streaming_flow_like_splunk_821_doubleage() {
    let header = "age,\"_chunked_idx\",\"__mv_age\",\"__mv__chunked_idx\"\n";
    let rows = "66,0,,\n18,1,,\n25,2,,\n96,3,,\n52,4,,\n";
    let input = stream(&[
        (getinfo_821("doubleage", &[]), ""),
        (execute(false), &format!("{header}{rows}")),
        (execute(true), header),
    ]);
    let mut command = TestCommand::new(CommandType::Streaming, Adds::DoubleAge);
    command.config.required_fields = Some(vec!["age".to_owned()]);
    let (res, replies, output) = run_bytes(&input, &mut command);
    res.unwrap();
    assert!(output.starts_with(
        b"chunked 1.0,46,0\n{\"type\":\"streaming\",\"required_fields\":[\"age\"]}chunked 1.0,18,"
    ));
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[1].metadata, json!({"finished": false}));
    assert_eq!(
        replies[1].body,
        b"age,_chunked_idx,__mv_age,__mv__chunked_idx\n132,0,,\n36,1,,\n50,2,,\n192,3,,\n104,4,,\n"
    );
    assert_eq!(replies[2].metadata, json!({"finished": true}));
    assert_eq!(replies[2].body, b"age,_chunked_idx,__mv_age,__mv__chunked_idx\n");

    let info = command.info.unwrap();
    assert_eq!(info.command, "doubleage");
    assert_eq!(info.maxresultrows, Some(50_000));
    assert_eq!(info.earliest_time, "0");
    assert_eq!(info.session_key.expose(), "SECRET-TOKEN");
    assert!(!format!("{info:?}").contains("SECRET-TOKEN"));
}

#[test]
fn stateful_flow_like_splunk_821_accumages() {
    let header = "age,\"accum_age\",\"_chunked_idx\",\"__mv_age\",\"__mv_accum_age\",\"__mv__chunked_idx\"\n";
    let rows = "66,,0,,,\n18,,1,,,\n25,,2,,,\n96,,3,,,\n52,,4,,,\n";
    let input = stream(&[
        (getinfo_821("accumages", &[]), ""),
        (execute(false), &format!("{header}{rows}")),
        (execute(false), header),
        (execute(true), header),
    ]);
    let mut command = TestCommand::new(CommandType::Stateful, Adds::AccumAge);
    command.config.required_fields = Some(vec!["age".to_owned(), "accum_age".to_owned()]);
    let (res, replies, _) = run_bytes(&input, &mut command);
    res.unwrap();
    assert_eq!(
        replies[0].metadata,
        json!({"type": "stateful", "required_fields": ["age", "accum_age"]})
    );
    let finished: Vec<Value> =
        replies[1..].iter().map(|reply| reply.metadata["finished"].clone()).collect();
    assert_eq!(finished, [json!(false), json!(false), json!(true)]);
    assert_eq!(
        replies[1].body,
        b"age,accum_age,_chunked_idx,__mv_age,__mv_accum_age,__mv__chunked_idx\n\
          66,66,0,,,\n18,84,1,,,\n25,109,2,,,\n96,205,3,,,\n52,257,4,,,\n"
    );
    assert_eq!(
        replies[2].body,
        b"age,accum_age,_chunked_idx,__mv_age,__mv_accum_age,__mv__chunked_idx\n"
    );
    assert_eq!(command.n_executes, 3);
    assert_eq!(command.finished_flags, [false, false, true]);
}

#[test]
fn splunklib_golden_stream_multi_round_trips_multivalues() {
    let input = fixture("stream_multi.input");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::AddfieldLikeSdk);
    command.config.required_fields = Some(vec!["x".to_owned()]);
    let (res, replies, _) = run_bytes(&input, &mut command);
    res.unwrap();
    let expected = chunks(&fixture("addfield.stream_multi.sdk211.output"));
    assert_eq!(replies.len(), 4);
    assert_eq!(expected.len(), 4);
    for (ours, sdk) in replies.iter().zip(&expected) {
        assert_eq!(ours.metadata, sdk.metadata);
    }
    let ours = Table::decode(replies[1].body.as_slice()).unwrap();
    let sdk = Table::decode(expected[1].body.as_slice()).unwrap();
    assert_eq!(ours.n_rows(), 2);
    assert_eq!(sdk.n_rows(), 2);
    for row in 0..2 {
        for name in ["_raw", "_time", "x", "_chunked_idx", "added", "mv"] {
            assert_eq!(
                ours.value_by_name(row, name),
                sdk.value_by_name(row, name),
                "row {row} {name}"
            );
        }
    }
    let x = ours.field_index("x").unwrap();
    assert_eq!(ours.value(1, x), FieldValue::Multi(vec!["a".into(), "b".into()]));
    assert_eq!(ours.value_by_name(1, "_raw"), Some(FieldValue::from("multi\nline")));
    let mv = ours.field_index("mv").unwrap();
    assert_eq!(
        ours.value(0, mv),
        FieldValue::Multi(["a$b", "c", "", "d,e"].map(String::from).to_vec())
    );
    // Header-only requests: splunklib answers with an empty body, we with the header; both
    // carry zero rows.
    for idx in 2..4 {
        assert_eq!(Table::decode(replies[idx].body.as_slice()).unwrap().n_rows(), 0);
        assert!(expected[idx].body.is_empty());
    }
}

#[test]
fn inspector_messages_precede_finished() {
    let input = fixture("stream_multi.input");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::Nothing);
    command.warn_each_chunk = true;
    command.config.messages.push((Level::Info, "configured".to_owned()));
    let (res, replies, output) = run_bytes(&input, &mut command);
    res.unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains(r#"{"type":"streaming","inspector":{"messages":[["INFO","configured"]]}}"#)
    );
    assert!(
        text.contains(r#"{"inspector":{"messages":[["WARN","saw 2 rows"]]},"finished":false}"#)
    );
    assert_eq!(
        replies[3].metadata,
        json!({"inspector": {"messages": [["WARN", "saw 0 rows"]]}, "finished": true})
    );
}

#[test]
fn getinfo_only_run_never_executes() {
    let input = stream(&[(getinfo_821("stackflowsync", &["mode=sync"]), "")]);
    let mut command = TestCommand::new(CommandType::Stateful, Adds::RowIndex);
    let (res, replies, output) = run_bytes(&input, &mut command);
    res.unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(output, b"chunked 1.0,19,0\n{\"type\":\"stateful\"}");
    assert_eq!(command.n_executes, 0);
    assert_eq!(command.info.unwrap().args, ["mode=sync"]);
}

#[test]
fn getinfo_error_is_reported_with_inspector_before_error() {
    let input = fixture("stream_multi.input");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::Nothing);
    command.getinfo_error = Some("unknown option: bogus=1");
    let (res, replies, output) = run_bytes(&input, &mut command);
    let err = res.unwrap_err();
    assert!(err.is_command_error());
    assert_eq!(err.to_string(), "getinfo failed (request 1): unknown option: bogus=1");
    assert_eq!(
        output,
        b"chunked 1.0,114,0\n{\"inspector\":{\"messages\":[[\"ERROR\",\"unknown option: bogus=1\"]]},\
          \"finished\":true,\"error\":\"unknown option: bogus=1\"}"
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(command.n_executes, 0);
}

#[test]
fn execute_error_gets_one_error_reply_and_keeps_earlier_messages() {
    let input = fixture("stream_multi.input");
    let mut command = TestCommand::new(CommandType::Streaming, Adds::Nothing);
    command.execute_error = Some("stackflow is unreachable");
    command.warn_each_chunk = true;
    let (res, replies, _) = run_bytes(&input, &mut command);
    let err = res.unwrap_err();
    assert_eq!(err.to_string(), "execute failed (request 2): stackflow is unreachable");
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[1].metadata,
        json!({"inspector": {"messages": [["WARN", "saw 2 rows"], ["ERROR", "stackflow is unreachable"]]},
               "finished": true, "error": "stackflow is unreachable"})
    );
    assert!(replies[1].body.is_empty());
    assert_eq!(command.n_executes, 1);
}

#[test]
fn garbage_requests_get_one_error_reply_and_a_clear_error() {
    let getinfo = stream(&[(getinfo_821("stackflowsync", &[]), "")]);
    let with_getinfo = |tail: &[u8]| [getinfo.as_slice(), tail].concat();
    let cases: Vec<(&str, Vec<u8>, usize, &str)> = vec![
        (
            "bad header",
            b"chunked 9.9,2,0\n{}".to_vec(),
            1,
            "cannot read request 1 (input byte 0): malformed chunk header",
        ),
        (
            "eof mid-body",
            with_getinfo(b"chunked 1.0,36,50\n{\"action\":\"execute\",\"finished\":true}a,b\n"),
            2,
            "chunk body truncated at byte 58 of the chunk: got 4 of 50 bytes",
        ),
        (
            "invalid json",
            with_getinfo(b"chunked 1.0,5,0\n{oops"),
            2,
            "cannot read request 2 (input byte 509): chunk metadata is not valid JSON",
        ),
        ("non-object metadata", b"chunked 1.0,2,0\n[]".to_vec(), 1, "not a JSON object"),
        (
            "execute before getinfo",
            stream(&[(execute(true), "a\n1\n")]),
            1,
            "unexpected request 1 (input byte 0): expected the getinfo request first, got action \"execute\"",
        ),
        (
            "getinfo with a body",
            stream(&[(getinfo_821("x", &[]), "a\n")]),
            1,
            "the getinfo request has a 2-byte body; expected none",
        ),
        (
            "unknown action",
            with_getinfo(&stream(&[(json!({"action": "frobnicate"}), "")])),
            2,
            "expected an execute request, got action \"frobnicate\"",
        ),
        (
            "second getinfo",
            with_getinfo(&getinfo),
            2,
            "expected an execute request, got action \"getinfo\"",
        ),
        (
            "finished not a boolean",
            with_getinfo(&stream(&[(json!({"action": "execute", "finished": "yes"}), "")])),
            2,
            "\"finished\" is not a boolean",
        ),
        (
            "ragged csv",
            with_getinfo(&stream(&[(execute(true), "a,b\n1\n")])),
            2,
            "cannot decode the body of request 2 (input byte 509): csv record 2 (byte 4) has 1 fields",
        ),
    ];
    for (name, input, n_replies, needle) in cases {
        let mut command = TestCommand::new(CommandType::Streaming, Adds::RowIndex);
        let (res, replies, _) = run_bytes(&input, &mut command);
        let err = res.expect_err(name);
        let message = err.to_string();
        assert!(message.contains(needle), "{name}: {message}");
        assert!(!err.is_command_error(), "{name}");
        assert_eq!(replies.len(), n_replies, "{name}");
        assert_eq!(replies[n_replies - 1].metadata, error_reply(&message), "{name}");
        assert_eq!(command.n_executes, 0, "{name}");
    }
    let mut command = TestCommand::new(CommandType::Streaming, Adds::RowIndex);
    let (res, replies, _) = run_bytes(b"", &mut command);
    assert_eq!(res.unwrap_err().to_string(), "input ended before the getinfo request");
    assert!(replies.is_empty());
}

#[test]
fn truncation_at_every_offset_never_panics_and_replies_at_most_once_per_request() {
    let input = fixture("stream_multi.input");
    let request_ends: Vec<usize> = {
        let mut rest = &input[..];
        let mut ends = Vec::new();
        while read_chunk(&mut rest).unwrap().is_some() {
            ends.push(input.len() - rest.len());
        }
        ends
    };
    for cut in 0..=300.min(input.len()) {
        let mut command = TestCommand::new(CommandType::Streaming, Adds::AddfieldLikeSdk);
        let (res, replies, _) = run_bytes(&input[..cut], &mut command);
        let n_complete = request_ends.iter().filter(|end| **end <= cut).count();
        let at_boundary = cut == 0 || request_ends.contains(&cut);
        match (cut, at_boundary) {
            (0, _) => assert!(matches!(res, Err(ProtocolError::NoGetinfo))),
            (_, true) => assert!(res.is_ok(), "cut {cut}: {res:?}"),
            (_, false) => {
                assert!(matches!(res, Err(ProtocolError::Read { .. })), "cut {cut}: {res:?}");
                assert_eq!(replies.len(), n_complete + 1, "cut {cut}");
                assert_eq!(replies.last().unwrap().metadata["finished"], json!(true));
            }
        }
        assert!(replies.len() <= n_complete + 1);
    }
}

#[test]
fn search_info_is_parsed_leniently() {
    let metadata = json!({
        "searchinfo": {"maxresultrows": "100", "earliest_time": 1627333200, "args": ["a", 1],
                       "unknown": {"nested": true}, "sid": "searchparsetmp_1"},
        "preview": true, "action": "getinfo", "extra": 1
    });
    let info = parse_search_info(&metadata);
    assert_eq!(info.maxresultrows, Some(100));
    assert_eq!(info.earliest_time, "1627333200");
    assert_eq!(info.args, ["a", "1"]);
    assert!(info.preview);
    assert!(info.session_key.is_empty());
    assert_eq!(info.dispatch_dir, "");
    assert_eq!(parse_search_info(&json!({"action": "getinfo"})), SearchInfo::default());
    assert_eq!(format!("{:?}", SessionKey::new("abc")), "SessionKey(***)");
}

#[test]
fn write_failure_is_reported() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "broken pipe"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let input = stream(&[(getinfo_821("x", &[]), "")]);
    let mut command = TestCommand::new(CommandType::Streaming, Adds::Nothing);
    let err = run(&input[..], Broken, &mut command).unwrap_err();
    assert_eq!(err.to_string(), "cannot write the reply to request 1: broken pipe");
}

#[test]
fn write_failure_in_the_middle_of_a_streamed_body_is_reported() {
    /// Accepts `budget` bytes, then fails.
    struct Budget(usize, Vec<u8>);
    impl Write for Budget {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.1.len() + bytes.len() > self.0 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "broken pipe"));
            }
            self.1.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let body = format!("a\n{}", "xyz\n".repeat(600_000));
    let input = stream(&[(getinfo_821("x", &[]), ""), (execute(true), &body)]);
    let mut command = TestCommand::new(CommandType::Streaming, Adds::Nothing);
    let mut output = Budget(1_500_000, Vec::new());
    let err = run(&input[..], &mut output, &mut command).unwrap_err();
    assert_eq!(err.to_string(), "cannot write the reply to request 2: broken pipe");
    // The announced length is the full body's; part of it got out before the failure.
    let written = String::from_utf8_lossy(&output.1).into_owned();
    assert!(written.contains(&format!(",{}\n", body.len())), "{}", &written[..200]);
    assert!(output.1.len() > 1 << 20, "{}", output.1.len());

    let mut whole = Budget(usize::MAX, Vec::new());
    run(&input[..], &mut whole, &mut command).unwrap();
    let replies = chunks(&whole.1);
    assert_eq!(replies[1].body, body.as_bytes());
}

/// A generating command that answers with two rows (one containing a comma, a quote and a
/// newline) whatever its input; later requests get the input echoed.
struct Generator;

impl SearchCommand for Generator {
    fn getinfo(&mut self, _info: &SearchInfo) -> Result<CommandConfig, CommandError> {
        let mut config = CommandConfig::new(CommandType::Stateful);
        config.generating = true;
        Ok(config)
    }
    fn execute(&mut self, chunk: &mut ExecuteChunk<'_>) -> Result<(), CommandError> {
        let rows = vec![
            vec!["1".to_string(), "plain".to_string()],
            vec!["2".to_string(), "a, \"quoted\"\nline".to_string()],
        ];
        chunk.generate(&["n", "text"], &rows)
    }
}

#[test]
fn a_generating_command_answers_a_header_only_request_with_its_rows_and_finished() {
    // splunkd 8.2.1 sends a generating+stateful command a header-only execute body.
    let input =
        stream(&[(getinfo_821("stackflowcheck", &[]), ""), (execute(false), "_chunked_idx\n")]);
    let mut output = Vec::new();
    run(input.as_slice(), &mut output, &mut Generator).unwrap();
    let replies = chunks(&output);
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].metadata, json!({"type": "stateful", "generating": true}));
    assert_eq!(replies[1].metadata, json!({"finished": true}), "all rows in one reply");
    let table = Table::decode(replies[1].body.clone()).unwrap();
    assert_eq!(table.header(), ["n", "text"]);
    assert_eq!(table.n_rows(), 2);
    assert_eq!(table.cell_str(1, 1), "a, \"quoted\"\nline");
}
