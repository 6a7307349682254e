//! The SCP v2 search-command driver: runs the getinfo/execute exchange with splunkd over any
//! reader/writer pair, strictly one reply per request, and hands each request to a
//! [`SearchCommand`]. It owns the protocol rules (actions, `finished` echo, error and inspector
//! shapes); framing lives in `chunked`, CSV in `splunk_csv`, and command logic in the
//! implementor, which never sees a chunk, a header or a byte length.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde_json::Value;

use super::chunked::{Chunk, read_chunk, write_chunk, write_chunk_head};
use super::splunk_csv::{
    AddedFields, ByteCount, DecodeError, FieldSlot, FieldValue, ReplySink, Table, encode_reply,
};

/// What a custom search command implements; the driver calls `getinfo` once, then `execute`
/// once per execute request (never when splunkd closes stdin right after getinfo).
pub trait SearchCommand {
    /// Validates arguments and describes the command. Must be cheap and side-effect free:
    /// splunkd spawns getinfo-only processes at parse time.
    fn getinfo(&mut self, info: &SearchInfo) -> Result<CommandConfig, CommandError>;

    /// Processes one execute request: read `chunk.table()`, set fields, push messages.
    fn execute(&mut self, chunk: &mut ExecuteChunk<'_>) -> Result<(), CommandError>;
}

/// The `searchinfo` of a getinfo request (plus its top-level `preview` flags), parsed leniently:
/// any key order, unknown keys ignored, missing keys empty, numbers accepted for strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchInfo {
    pub args: Vec<String>,
    pub raw_args: Vec<String>,
    pub dispatch_dir: String,
    pub sid: String,
    pub app: String,
    pub owner: String,
    pub username: String,
    pub session_key: SessionKey,
    pub splunkd_uri: String,
    pub splunk_version: String,
    /// Percent-encoded search string, as sent.
    pub search: String,
    pub command: String,
    pub maxresultrows: Option<u64>,
    /// Epoch seconds as sent (`"0"` when unbounded).
    pub earliest_time: String,
    pub latest_time: String,
    pub preview: bool,
    pub streaming_command_will_restart: bool,
}

/// splunkd's session token; `Debug` never prints it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn new(key: impl Into<String>) -> SessionKey {
        SessionKey(key.into())
    }

    /// The token itself, for an `Authorization: Splunk <key>` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "SessionKey(\"\")" } else { "SessionKey(***)" })
    }
}

/// The getinfo reply's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandType {
    Streaming,
    Stateful,
    Events,
    Reporting,
}

impl CommandType {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandType::Streaming => "streaming",
            CommandType::Stateful => "stateful",
            CommandType::Events => "events",
            CommandType::Reporting => "reporting",
        }
    }
}

/// What the command tells splunkd in its getinfo reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    pub command_type: CommandType,
    /// Fields splunkd should send (plus `_chunked_idx`); `None` sends all.
    pub required_fields: Option<Vec<String>>,
    pub generating: bool,
    pub streaming_preop: Option<String>,
    /// Non-terminal messages shown in Splunk Web.
    pub messages: Vec<(Level, String)>,
}

impl CommandConfig {
    pub fn new(command_type: CommandType) -> CommandConfig {
        CommandConfig {
            command_type,
            required_fields: None,
            generating: false,
            streaming_preop: None,
            messages: Vec::new(),
        }
    }
}

/// Inspector message level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A terminal error reported by the command; shown in Splunk Web as
/// `Error in '<command>' command: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    message: String,
}

impl CommandError {
    pub fn new(message: impl Into<String>) -> CommandError {
        CommandError { message: message.into() }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandError {}

/// One execute request as the command sees it: the decoded rows, splunkd's `finished` flag,
/// and the fields and messages the command adds for the reply.
#[derive(Debug)]
pub struct ExecuteChunk<'a> {
    table: &'a Table,
    finished: bool,
    added: AddedFields,
    messages: Vec<(Level, String)>,
}

impl<'a> ExecuteChunk<'a> {
    pub fn new(table: &'a Table, finished: bool) -> ExecuteChunk<'a> {
        ExecuteChunk {
            table,
            finished,
            added: AddedFields::new(table.n_rows()),
            messages: Vec::new(),
        }
    }

    pub fn table(&self) -> &'a Table {
        self.table
    }

    /// `true` when splunkd will send no more rows.
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn n_rows(&self) -> usize {
        self.table.n_rows()
    }

    /// Registers an output field (new, or an input field to override) for use with [`Self::set`].
    pub fn field(&mut self, name: &str) -> FieldSlot {
        self.added.field(name)
    }

    /// Sets a field of one row in the reply.
    pub fn set(
        &mut self,
        row: usize,
        slot: FieldSlot,
        value: impl Into<FieldValue<'static>>,
    ) -> Result<(), CommandError> {
        if self.added.set(row, slot, value.into()) {
            Ok(())
        } else {
            Err(CommandError::new(format!(
                "internal error: row {row} is out of range (the chunk has {} rows)",
                self.table.n_rows()
            )))
        }
    }

    /// [`Self::field`] followed by [`Self::set`].
    pub fn set_by_name(
        &mut self,
        row: usize,
        name: &str,
        value: impl Into<FieldValue<'static>>,
    ) -> Result<(), CommandError> {
        let slot = self.added.field(name);
        self.set(row, slot, value)
    }

    /// Adds a non-terminal inspector message to this reply.
    pub fn message(&mut self, level: Level, text: impl Into<String>) {
        self.messages.push((level, text.into()));
    }
}

/// Why a run ended with an error. Each variant says what went wrong and at which request
/// (1-based) and input byte offset.
#[derive(Debug)]
pub enum ProtocolError {
    /// Input ended before any request arrived.
    NoGetinfo,
    /// A request could not be read: bad header, truncated chunk, invalid JSON metadata.
    Read { request: usize, offset: u64, source: io::Error },
    /// A well-framed request that the protocol does not allow at that point.
    Unexpected { request: usize, offset: u64, problem: String },
    /// An execute body that is not valid CSV.
    Body { request: usize, offset: u64, source: DecodeError },
    /// The command reported an error from `getinfo` or `execute`.
    Command { request: usize, action: &'static str, source: CommandError },
    /// A reply could not be written.
    Write { request: usize, source: io::Error },
}

impl ProtocolError {
    /// `true` when the command itself failed (as opposed to the protocol or I/O).
    pub fn is_command_error(&self) -> bool {
        matches!(self, ProtocolError::Command { .. })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NoGetinfo => f.write_str("input ended before the getinfo request"),
            ProtocolError::Read { request, offset, source } => {
                write!(f, "cannot read request {request} (input byte {offset}): {source}")
            }
            ProtocolError::Unexpected { request, offset, problem } => {
                write!(f, "unexpected request {request} (input byte {offset}): {problem}")
            }
            ProtocolError::Body { request, offset, source } => {
                write!(
                    f,
                    "cannot decode the body of request {request} (input byte {offset}): {source}"
                )
            }
            ProtocolError::Command { request, action, source } => {
                write!(f, "{action} failed (request {request}): {source}")
            }
            ProtocolError::Write { request, source } => {
                write!(f, "cannot write the reply to request {request}: {source}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProtocolError::NoGetinfo | ProtocolError::Unexpected { .. } => None,
            ProtocolError::Read { source, .. } | ProtocolError::Write { source, .. } => {
                Some(source)
            }
            ProtocolError::Body { source, .. } => Some(source),
            ProtocolError::Command { source, .. } => Some(source),
        }
    }
}

/// A [`ReplySink`] that passes the body on to the output in blocks; the first write error is
/// kept (and the rest of the body dropped) for the caller to report.
struct BlockWriter<'o> {
    block: Vec<u8>,
    written: usize,
    output: &'o mut dyn Write,
    error: Option<io::Error>,
}

impl BlockWriter<'_> {
    /// At least the stdout `BufWriter`'s capacity in `cmd::sync` (1 MiB), so blocks bypass its buffer.
    const BLOCK: usize = 1 << 20;

    fn flush_block(&mut self) {
        if self.error.is_none() && !self.block.is_empty() {
            match self.output.write_all(&self.block) {
                Ok(()) => self.written += self.block.len(),
                Err(error) => self.error = Some(error),
            }
        }
        self.block.clear();
    }
}

impl ReplySink for BlockWriter<'_> {
    fn put(&mut self, byte: u8) {
        self.block.push(byte);
    }

    fn put_slice(&mut self, bytes: &[u8]) {
        self.block.extend_from_slice(bytes);
        if self.block.len() >= Self::BLOCK {
            self.flush_block();
        }
    }
}

/// Runs the whole exchange: getinfo, then execute requests until splunkd closes the input.
///
/// Exactly one reply is written per request, including when the request is malformed or the
/// command fails; in that case the reply is `{"inspector":{"messages":[…,["ERROR",msg]]},
/// "finished":true,"error":msg}` and the error is returned, so the process exits non-zero.
/// Input ending right after getinfo (a parse-time spawn) is a success without any execute call.
pub fn run(
    input: impl BufRead,
    mut output: impl Write,
    command: &mut dyn SearchCommand,
) -> Result<(), ProtocolError> {
    let mut driver = Driver {
        input: CountingReader { inner: input, n_read: 0 },
        output: &mut output,
        request: 0,
    };
    driver.run(command)
}

struct Driver<'w, R> {
    input: CountingReader<R>,
    output: &'w mut dyn Write,
    /// Number of requests started so far (1-based index of the current one).
    request: usize,
}

impl<R: BufRead> Driver<'_, R> {
    fn run(&mut self, command: &mut dyn SearchCommand) -> Result<(), ProtocolError> {
        let (offset, getinfo) = match self.read_request()? {
            Some(request) => request,
            None => return Err(ProtocolError::NoGetinfo),
        };
        let action = getinfo.metadata_str("action");
        if action != Some("getinfo") {
            let problem =
                format!("expected the getinfo request first, got action {}", describe(action));
            return Err(self.fail(self.unexpected(offset, problem), Vec::new()));
        }
        if !getinfo.body.is_empty() {
            let problem = format!(
                "the getinfo request has a {}-byte body; expected none",
                getinfo.body.len()
            );
            return Err(self.fail(self.unexpected(offset, problem), Vec::new()));
        }
        let info = parse_search_info(&getinfo.metadata);
        let config = match command.getinfo(&info) {
            Ok(config) => config,
            Err(source) => {
                let err =
                    ProtocolError::Command { request: self.request, action: "getinfo", source };
                return Err(self.fail(err, Vec::new()));
            }
        };
        self.reply(&getinfo_reply_metadata(&config), b"")?;

        while let Some((offset, chunk)) = self.read_request()? {
            match chunk.metadata_str("action") {
                Some("execute") => {}
                action => {
                    let problem =
                        format!("expected an execute request, got action {}", describe(action));
                    return Err(self.fail(self.unexpected(offset, problem), Vec::new()));
                }
            }
            let finished = match chunk.metadata.get("finished") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(finished)) => *finished,
                Some(other) => {
                    let problem = format!("\"finished\" is not a boolean: {other}");
                    return Err(self.fail(self.unexpected(offset, problem), Vec::new()));
                }
            };
            let table = match Table::decode(chunk.body) {
                Ok(table) => table,
                Err(source) => {
                    let err = ProtocolError::Body { request: self.request, offset, source };
                    return Err(self.fail(err, Vec::new()));
                }
            };
            let mut execute_chunk = ExecuteChunk::new(&table, finished);
            let result = command.execute(&mut execute_chunk);
            let ExecuteChunk { added, messages, .. } = execute_chunk;
            if let Err(source) = result {
                let err =
                    ProtocolError::Command { request: self.request, action: "execute", source };
                return Err(self.fail(err, messages));
            }
            self.stream_reply(&execute_reply_metadata(finished, &messages), &table, &added)?;
        }
        Ok(())
    }

    /// Reads the next request; a read failure is answered with an error reply (a request had
    /// started arriving, so a reply is owed) and returned.
    fn read_request(&mut self) -> Result<Option<(u64, Chunk)>, ProtocolError> {
        let offset = self.input.n_read;
        let next_request = self.request + 1;
        match read_chunk(&mut self.input) {
            Ok(Some(chunk)) => {
                self.request = next_request;
                Ok(Some((offset, chunk)))
            }
            Ok(None) => Ok(None),
            Err(source) => {
                self.request = next_request;
                Err(self.fail(
                    ProtocolError::Read { request: next_request, offset, source },
                    Vec::new(),
                ))
            }
        }
    }

    fn unexpected(&self, offset: u64, problem: String) -> ProtocolError {
        ProtocolError::Unexpected { request: self.request, offset, problem }
    }

    /// Writes an execute reply without building its (possibly 20 MB) body in memory: a
    /// counting pass gives the body length for the chunk header, a second pass streams the body
    /// in blocks.
    fn stream_reply(
        &mut self,
        metadata: &str,
        table: &Table,
        added: &AddedFields,
    ) -> Result<(), ProtocolError> {
        let mut length = ByteCount::default();
        encode_reply(table, added, &mut length);
        let request = self.request;
        let write_error = |source| ProtocolError::Write { request, source };
        write_chunk_head(&mut *self.output, metadata.as_bytes(), length.0).map_err(write_error)?;
        let mut body =
            BlockWriter { block: Vec::new(), written: 0, output: &mut *self.output, error: None };
        encode_reply(table, added, &mut body);
        body.flush_block();
        if let Some(source) = body.error {
            return Err(write_error(source));
        }
        if body.written != length.0 {
            let message = format!("reply body is {} bytes, announced {}", body.written, length.0);
            return Err(write_error(io::Error::other(message)));
        }
        self.output.flush().map_err(write_error)
    }

    fn reply(&mut self, metadata: &str, body: &[u8]) -> Result<(), ProtocolError> {
        write_chunk(&mut self.output, metadata.as_bytes(), body)
            .map_err(|source| ProtocolError::Write { request: self.request, source })
    }

    /// Writes the terminal error reply (best effort: the original error matters more than a
    /// failure to report it) and gives the error back.
    fn fail(&mut self, err: ProtocolError, mut messages: Vec<(Level, String)>) -> ProtocolError {
        let text = match &err {
            ProtocolError::Command { source, .. } => source.message().to_owned(),
            other => other.to_string(),
        };
        messages.push((Level::Error, text.clone()));
        let mut metadata = JsonObject::new();
        metadata.raw("inspector", &inspector_json(&messages));
        metadata.raw("finished", "true");
        metadata.string("error", &text);
        let _ignored = write_chunk(&mut self.output, metadata.finish().as_bytes(), b"");
        err
    }
}

fn describe(action: Option<&str>) -> String {
    match action {
        Some(action) => Value::from(action).to_string(),
        None => "(none)".to_owned(),
    }
}

fn getinfo_reply_metadata(config: &CommandConfig) -> String {
    let mut metadata = JsonObject::new();
    metadata.string("type", config.command_type.as_str());
    if let Some(fields) = &config.required_fields {
        metadata.raw("required_fields", &Value::from(fields.clone()).to_string());
    }
    if config.generating {
        metadata.raw("generating", "true");
    }
    if let Some(preop) = &config.streaming_preop {
        metadata.string("streaming_preop", preop);
    }
    if !config.messages.is_empty() {
        metadata.raw("inspector", &inspector_json(&config.messages));
    }
    metadata.finish()
}

fn execute_reply_metadata(finished: bool, messages: &[(Level, String)]) -> String {
    let mut metadata = JsonObject::new();
    if !messages.is_empty() {
        metadata.raw("inspector", &inspector_json(messages));
    }
    metadata.raw("finished", if finished { "true" } else { "false" });
    metadata.finish()
}

fn inspector_json(messages: &[(Level, String)]) -> String {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(level, text)| {
            Value::from(vec![Value::from(level.as_str()), Value::from(text.as_str())])
        })
        .collect();
    let mut inspector = JsonObject::new();
    inspector.raw("messages", &Value::from(messages).to_string());
    inspector.finish()
}

/// Compact JSON object text with keys in insertion order (splunkd wants `inspector` before
/// `error`, and `serde_json::Map` sorts keys).
struct JsonObject {
    text: String,
}

impl JsonObject {
    fn new() -> JsonObject {
        JsonObject { text: String::from("{") }
    }

    fn raw(&mut self, key: &str, raw_json: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        self.text.push_str(&Value::from(key).to_string());
        self.text.push(':');
        self.text.push_str(raw_json);
    }

    fn string(&mut self, key: &str, value: &str) {
        self.raw(key, &Value::from(value).to_string());
    }

    fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// Reads the getinfo metadata leniently; nothing here fails.
pub fn parse_search_info(metadata: &Value) -> SearchInfo {
    let empty = serde_json::Map::new();
    let searchinfo = metadata.get("searchinfo").and_then(Value::as_object).unwrap_or(&empty);
    let text = |key: &str| -> String {
        match searchinfo.get(key) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::Bool(flag)) => flag.to_string(),
            _ => String::new(),
        }
    };
    let list = |key: &str| -> Vec<String> {
        match searchinfo.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let flag = |key: &str| -> bool {
        match metadata.get(key) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => matches!(text.as_str(), "true" | "1" | "t"),
            _ => false,
        }
    };
    let maxresultrows = match searchinfo.get("maxresultrows") {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    };
    SearchInfo {
        args: list("args"),
        raw_args: list("raw_args"),
        dispatch_dir: text("dispatch_dir"),
        sid: text("sid"),
        app: text("app"),
        owner: text("owner"),
        username: text("username"),
        session_key: SessionKey(text("session_key")),
        splunkd_uri: text("splunkd_uri"),
        splunk_version: text("splunk_version"),
        search: text("search"),
        command: text("command"),
        maxresultrows,
        earliest_time: text("earliest_time"),
        latest_time: text("latest_time"),
        preview: flag("preview"),
        streaming_command_will_restart: flag("streaming_command_will_restart"),
    }
}

/// Counts bytes consumed, so errors can name the input offset of the failing request.
struct CountingReader<R> {
    inner: R,
    n_read: u64,
}

impl<R: BufRead> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n_bytes = self.inner.read(buf)?;
        self.n_read += n_bytes as u64;
        Ok(n_bytes)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.n_read += amt as u64;
    }
}

#[cfg(test)]
mod tests {
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
        eprintln!(
            "sum.map: whole run() (read, decode, add n, encode, write) {:?}",
            started.elapsed()
        );
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
        command.config.streaming_preop =
            Some("sum phase=\"map\" total=\"total\" value1".to_owned());
        let (res, replies, output) = run_bytes(&input, &mut command);
        res.unwrap();
        let expected = sdk_chunks(&fixture("sum.reduce.output"));
        assert_eq!(replies[0].metadata, expected[0].metadata);
        assert_eq!(replies[1].metadata, expected[1].metadata);
        assert!(
            output.starts_with(b"chunked 1.0,81,0\n{\"type\":\"reporting\",\"streaming_preop\":")
        );
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
        assert!(output.starts_with(b"chunked 1.0,46,0\n{\"type\":\"streaming\",\"required_fields\":[\"age\"]}chunked 1.0,18,"));
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[1].metadata, json!({"finished": false}));
        assert_eq!(replies[1].body, b"age,_chunked_idx,__mv_age,__mv__chunked_idx\n132,0,,\n36,1,,\n50,2,,\n192,3,,\n104,4,,\n");
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
            text.contains(
                r#"{"type":"streaming","inspector":{"messages":[["INFO","configured"]]}}"#
            )
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
}
