//! The SCP v2 search-command driver: runs the getinfo/execute exchange with splunkd over any
//! reader/writer pair, strictly one reply per request, and hands each request to a
//! [`SearchCommand`]. It owns the protocol rules (actions, `finished` echo, error and inspector
//! shapes); framing lives in `chunked`, CSV in `splunk_csv`, and command logic in the
//! implementor, which never sees a chunk, a header or a byte length.
//!
//! (About 700 lines with its docs: one job, the protocol driver; its tests live in
//! `search_command/tests.rs`.)

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
    /// A generating command's output, replacing the (empty) input table in the reply.
    generated: Option<Table>,
}

impl<'a> ExecuteChunk<'a> {
    pub fn new(table: &'a Table, finished: bool) -> ExecuteChunk<'a> {
        ExecuteChunk {
            table,
            finished,
            added: AddedFields::new(table.n_rows()),
            messages: Vec::new(),
            generated: None,
        }
    }

    /// For a generating command: the rows to answer with (all of them, in this one reply,
    /// which then says `finished: true`; splunkd sends a generating command an empty or
    /// header-only execute request). Fields set with [`Self::set`] are ignored then.
    pub fn generate(&mut self, header: &[&str], rows: &[Vec<String>]) -> Result<(), CommandError> {
        let failed = |error: &dyn fmt::Display| {
            CommandError::new(format!("internal error: cannot encode the generated rows: {error}"))
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(header).map_err(|e| failed(&e))?;
        for row in rows {
            writer.write_record(row).map_err(|e| failed(&e))?;
        }
        let body = writer.into_inner().map_err(|e| failed(&e))?;
        self.generated = Some(Table::decode(body).map_err(|e| failed(&e))?);
        Ok(())
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
            let ExecuteChunk { added, messages, generated, .. } = execute_chunk;
            if let Err(source) = result {
                let err =
                    ProtocolError::Command { request: self.request, action: "execute", source };
                return Err(self.fail(err, messages));
            }
            match generated {
                Some(rows) => {
                    let none = AddedFields::new(rows.n_rows());
                    self.stream_reply(&execute_reply_metadata(true, &messages), &rows, &none)?;
                }
                None => {
                    self.stream_reply(&execute_reply_metadata(finished, &messages), &table, &added)?
                }
            }
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
mod tests;
