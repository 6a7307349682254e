//! Minimal HTTP/1.1 wire handling: request parsing (Content-Length and chunked bodies),
//! response serialisation, and URL/form decoding helpers shared by every API module.

use std::io::{self, BufRead, Read, Write};

/// One parsed request.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_form(self.query.as_bytes())
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// A response to serialise.
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A slow or streamed answer (splunkd searches), written by `crate::stream`.
    pub stream: Option<crate::stream::Streamed>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::raw(status, serde_json::to_vec(value).unwrap_or_default())
    }
    pub fn raw(status: u16, body: Vec<u8>) -> Response {
        let headers = vec![("Content-Type".into(), "application/json".into())];
        Response { status, headers, body, stream: None }
    }
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line(r: &mut impl BufRead, limit: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.take(limit as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads the request head (body left empty); `Ok(None)` on a clean EOF between requests.
pub(crate) fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Request>> {
    let mut line = match read_line(r, 16 * 1024)? {
        Some(l) => l,
        None => return Ok(None),
    };
    while line.is_empty() {
        line = match read_line(r, 16 * 1024)? {
            Some(l) => l,
            None => return Ok(None),
        };
    }
    let mut parts = line.split_whitespace();
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) => (m.to_string(), t.to_string(), v.to_string()),
        _ => return Err(bad("bad request line")),
    };
    let mut headers = Vec::new();
    loop {
        let l = read_line(r, 64 * 1024)?.ok_or_else(|| bad("eof in headers"))?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let conn = header(&headers, "connection").map(str::to_ascii_lowercase).unwrap_or_default();
    let keep_alive =
        if version == "HTTP/1.0" { conn.contains("keep-alive") } else { !conn.contains("close") };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Ok(Some(Request { method, path, query, headers, body: Vec::new(), keep_alive }))
}

/// Whether the client waits for an interim `100 Continue` before sending the body.
pub(crate) fn expects_continue(req: &Request) -> bool {
    req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// Reads the body announced by the head (Content-Length or chunked).
pub(crate) fn read_body<R: BufRead>(r: &mut R, req: &mut Request) -> io::Result<()> {
    let chunked =
        req.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    req.body = if chunked {
        read_chunked(r)?
    } else {
        let len: usize = req
            .header("content-length")
            .map(|v| v.parse().map_err(|_| bad("content-length")))
            .transpose()?
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        body
    };
    Ok(())
}

pub(crate) fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let l = read_line(r, 4096)?.ok_or_else(|| bad("eof in chunk size"))?;
        let size = usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        if size == 0 {
            while read_line(r, 64 * 1024)?.is_some_and(|t| !t.is_empty()) {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r, 16)?;
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Serialises the head (with Content-Length) and body in one write.
pub(crate) fn write_response(
    w: &mut impl Write,
    resp: &Response,
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).into_bytes();
    for (k, v) in &resp.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let conn = if keep_alive { "keep-alive" } else { "close" };
    out.extend_from_slice(
        format!("Content-Length: {}\r\nConnection: {conn}\r\n\r\n", resp.body.len()).as_bytes(),
    );
    out.extend_from_slice(&resp.body);
    w.write_all(&out)?;
    w.flush()
}

/// Percent-decoding; `plus` also turns `+` into a space (form encoding).
pub(crate) fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap_or(0) * 16 + hex(b[i + 2]).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `application/x-www-form-urlencoded` data (also used for query strings).
pub(crate) fn parse_form(data: &[u8]) -> Vec<(String, String)> {
    let s = String::from_utf8_lossy(data);
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}
