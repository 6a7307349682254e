//! Splunk SCP v2 ("chunked") transport framing, and nothing else: reads and writes exactly one
//! `chunked 1.0,<meta_len>,<body_len>\n<metadata JSON><body>` chunk at a time. Lengths are
//! bytes. It knows nothing about search commands, actions or CSV; malformed input is reported as
//! `io::ErrorKind::InvalidData` with a message naming what was wrong and where (offsets are
//! relative to the start of the chunk), and it never panics on any input.

use std::io::{self, BufRead, Read, Write};

/// Largest metadata section accepted (real ones are under 1 KiB).
pub const MAX_METADATA_LEN: u64 = 16 * 1024 * 1024;
/// Largest body accepted (splunkd sends at most 50,000 rows per chunk; 16 MB was seen).
pub const MAX_BODY_LEN: u64 = 1024 * 1024 * 1024;
/// Longest header line accepted, terminator included; a real one is under 40 bytes.
const MAX_HEADER_LEN: u64 = 256;
/// Upper bound on the buffer reserved before the bytes have actually arrived.
const MAX_PREALLOC: u64 = 64 * 1024 * 1024;

macro_rules! invalid_data {
    ($($tt:tt)*) => (io::Error::new(io::ErrorKind::InvalidData, format!($($tt)*)))
}

/// One chunk: a JSON object of metadata and an opaque body.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Always a JSON object (`read_chunk` rejects anything else).
    pub metadata: serde_json::Value,
    pub body: Vec<u8>,
}

impl Chunk {
    /// The string value of a top-level metadata key, if present and a string.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(serde_json::Value::as_str)
    }
}

/// Reads one chunk. Returns `Ok(None)` on a clean end of input before any byte of a header.
///
/// The header is matched like splunklib's `chunked\s+1.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n`, so
/// spaces and a `\r\n` terminator are tolerated. The metadata must be a JSON object.
pub fn read_chunk(input: &mut impl BufRead) -> io::Result<Option<Chunk>> {
    read_chunk_dyn(input)
}

fn read_chunk_dyn(input: &mut dyn BufRead) -> io::Result<Option<Chunk>> {
    let mut header_line = Vec::with_capacity(64);
    input.take(MAX_HEADER_LEN).read_until(b'\n', &mut header_line)?;
    if header_line.is_empty() {
        return Ok(None);
    }
    if header_line.last() != Some(&b'\n') {
        if header_line.len() as u64 >= MAX_HEADER_LEN {
            return Err(invalid_data!(
                "malformed chunk header: no newline within the first {MAX_HEADER_LEN} bytes \
                 (starts with {:?})",
                preview(&header_line)
            ));
        }
        return Err(invalid_data!(
            "end of input inside the chunk header after {} bytes: {:?}",
            header_line.len(),
            preview(&header_line)
        ));
    }
    let (metadata_len, body_len) = parse_header(&header_line).ok_or_else(|| {
        invalid_data!(
            "malformed chunk header {:?}: expected \"chunked 1.0,<metadata_length>,<body_length>\"",
            preview(&header_line)
        )
    })?;
    if metadata_len > MAX_METADATA_LEN {
        return Err(invalid_data!(
            "chunk header declares {metadata_len} bytes of metadata, more than the \
             {MAX_METADATA_LEN}-byte limit"
        ));
    }
    if body_len > MAX_BODY_LEN {
        return Err(invalid_data!(
            "chunk header declares a {body_len}-byte body, more than the {MAX_BODY_LEN}-byte limit"
        ));
    }
    let header_len = header_line.len() as u64;

    let metadata_bytes = read_exactly(input, metadata_len).map_err(|(n_read, err)| {
        with_context(
            err,
            format!(
                "chunk metadata truncated at byte {} of the chunk: got {n_read} of \
                 {metadata_len} bytes",
                header_len + n_read
            ),
        )
    })?;
    let metadata: serde_json::Value = serde_json::from_slice(&metadata_bytes).map_err(|err| {
        invalid_data!(
            "chunk metadata is not valid JSON ({err}; metadata starts at byte {header_len} \
             of the chunk): {:?}",
            preview(&metadata_bytes)
        )
    })?;
    if !metadata.is_object() {
        return Err(invalid_data!(
            "chunk metadata is not a JSON object (metadata starts at byte {header_len} of the \
             chunk): {:?}",
            preview(&metadata_bytes)
        ));
    }

    let body_start = header_len + metadata_len;
    let body = read_exactly(input, body_len).map_err(|(n_read, err)| {
        with_context(
            err,
            format!(
                "chunk body truncated at byte {} of the chunk: got {n_read} of {body_len} bytes",
                body_start + n_read
            ),
        )
    })?;
    Ok(Some(Chunk { metadata, body }))
}

/// Writes one chunk: header, metadata and body with one `write_all` each, then flushes.
pub fn write_chunk(output: &mut impl Write, metadata: &[u8], body: &[u8]) -> io::Result<()> {
    write_chunk_dyn(output, metadata, body)
}

/// Like [`write_chunk`], serialising the metadata compactly first.
pub fn write_chunk_value(
    output: &mut impl Write,
    metadata: &serde_json::Value,
    body: &[u8],
) -> io::Result<()> {
    let metadata_bytes = serde_json::to_vec(metadata)?;
    write_chunk_dyn(output, &metadata_bytes, body)
}

fn write_chunk_dyn(output: &mut dyn Write, metadata: &[u8], body: &[u8]) -> io::Result<()> {
    write_chunk_head(output, metadata, body.len())?;
    output.write_all(body)?;
    output.flush()
}

/// Writes a chunk's header and metadata only; the caller then writes exactly `body_len` bytes
/// of body (and flushes). Lets a large reply body be streamed instead of built in memory.
pub fn write_chunk_head(
    output: &mut dyn Write,
    metadata: &[u8],
    body_len: usize,
) -> io::Result<()> {
    let header = format!("chunked 1.0,{},{body_len}\n", metadata.len());
    output.write_all(header.as_bytes())?;
    output.write_all(metadata)
}

/// Parses `chunked\s+1.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n` (the line ends with `\n`).
fn parse_header(line: &[u8]) -> Option<(u64, u64)> {
    let rest = line.strip_prefix(b"chunked")?;
    let trimmed = trim_start(rest);
    if trimmed.len() == rest.len() {
        return None;
    }
    let rest = trim_start(trimmed.strip_prefix(b"1.0")?);
    let rest = trim_start(rest.strip_prefix(b",")?);
    let (metadata_len, rest) = parse_decimal(rest)?;
    let rest = trim_start(rest);
    let rest = trim_start(rest.strip_prefix(b",")?);
    let (body_len, rest) = parse_decimal(rest)?;
    // The rest is `\s*\n`; `\s` covers the `\r` of a CRLF terminator.
    if rest.iter().all(u8::is_ascii_whitespace) { Some((metadata_len, body_len)) } else { None }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n_spaces = bytes.iter().take_while(|b| b.is_ascii_whitespace() && **b != b'\n').count();
    &bytes[n_spaces..]
}

fn parse_decimal(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let n_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if n_digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for digit in &bytes[..n_digits] {
        // Overflow means an absurd length; saturate so the caller's limit check rejects it.
        value = value.saturating_mul(10).saturating_add(u64::from(digit - b'0'));
    }
    Some((value, &bytes[n_digits..]))
}

/// Reads exactly `len` bytes, looping over short reads. On failure returns how many bytes
/// arrived and the error (end of input becomes `InvalidData`).
fn read_exactly(input: &mut dyn BufRead, len: u64) -> Result<Vec<u8>, (u64, io::Error)> {
    let capacity = usize::try_from(len.min(MAX_PREALLOC)).unwrap_or(0);
    let mut buf = Vec::with_capacity(capacity);
    match input.take(len).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 == len => Ok(buf),
        Ok(_) => Err((buf.len() as u64, invalid_data!("end of input"))),
        Err(err) => Err((buf.len() as u64, err)),
    }
}

fn with_context(err: io::Error, context: String) -> io::Error {
    let kind = match err.kind() {
        io::ErrorKind::UnexpectedEof => io::ErrorKind::InvalidData,
        kind => kind,
    };
    io::Error::new(kind, format!("{context} ({err})"))
}

/// A short, printable prefix of untrusted bytes for error messages.
fn preview(bytes: &[u8]) -> String {
    const MAX_PREVIEW: usize = 80;
    let end = bytes.len().min(MAX_PREVIEW);
    let mut text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if bytes.len() > MAX_PREVIEW {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_all(bytes: &[u8]) -> io::Result<Vec<Chunk>> {
        let mut input = bytes;
        let mut chunks = Vec::new();
        while let Some(chunk) = read_chunk(&mut input)? {
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    fn err_text(bytes: &[u8]) -> String {
        match read_all(bytes) {
            Ok(chunks) => format!("unexpectedly ok: {chunks:?}"),
            Err(err) => {
                assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
                err.to_string()
            }
        }
    }

    #[test]
    fn round_trip_with_multibyte_body_counts_bytes() {
        let body = "text\n\"Tú novia 👀\"\n".as_bytes();
        let mut out = Vec::new();
        write_chunk_value(&mut out, &json!({"finished": true}), body).unwrap();
        let expected_header = format!("chunked 1.0,17,{}\n", body.len());
        assert!(out.starts_with(expected_header.as_bytes()));
        assert_ne!(body.len(), "text\n\"Tú novia 👀\"\n".chars().count());
        let chunks = read_all(&out).unwrap();
        assert_eq!(
            chunks,
            vec![Chunk { metadata: json!({"finished": true}), body: body.to_vec() }]
        );
    }

    #[test]
    fn consecutive_chunks_without_separators() {
        let mut out = Vec::new();
        write_chunk(&mut out, br#"{"action":"getinfo"}"#, b"").unwrap();
        write_chunk(&mut out, br#"{"action":"execute","finished":true}"#, b"a,b\n1,2\n").unwrap();
        let chunks = read_all(&out).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].metadata_str("action"), Some("getinfo"));
        assert_eq!(chunks[1].body, b"a,b\n1,2\n");
    }

    #[test]
    fn header_tolerates_spaces_and_crlf() {
        let chunks = read_all(b"chunked  1.0 , 2 ,\t3 \r\n{}abc").unwrap();
        assert_eq!(chunks[0].body, b"abc");
    }

    #[test]
    fn empty_input_is_clean_eof() {
        assert!(read_all(b"").unwrap().is_empty());
    }

    #[test]
    fn short_reads_are_looped_over() {
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        write_chunk(&mut out, br#"{"finished":false}"#, &[b'x'; 1000]).unwrap();
        let mut input = io::BufReader::with_capacity(7, Dribble(&out));
        let chunk = read_chunk(&mut input).unwrap().unwrap();
        assert_eq!(chunk.body.len(), 1000);
        assert!(read_chunk(&mut input).unwrap().is_none());
    }

    #[test]
    fn malformed_inputs_are_invalid_data_with_clear_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"chunked 2.0,2,0\n{}", "malformed chunk header"),
            (b"chunked1.0,2,0\n{}", "malformed chunk header"),
            (b"chunked 1.0,2\n{}", "malformed chunk header"),
            (b"chunked 1.0,-2,0\n{}", "malformed chunk header"),
            (b"chunked 1.0,2,0 x\n{}", "malformed chunk header"),
            (b"\n", "malformed chunk header"),
            (b"chunked 1.0,2", "end of input inside the chunk header"),
            (b"chunked 1.0,99999999999999999999999,0\n", "16777216-byte limit"),
            (b"chunked 1.0,2,2000000000\n{}", "1073741824-byte limit"),
            (b"chunked 1.0,10,0\n{}", "metadata truncated at byte 19 of the chunk: got 2 of 10"),
            (b"chunked 1.0,2,10\n{}abc", "body truncated at byte 22 of the chunk: got 3 of 10"),
            (b"chunked 1.0,2,0\n{]", "not valid JSON"),
            (b"chunked 1.0,2,0\n[]", "not a JSON object"),
        ];
        for (input, needle) in cases {
            let text = err_text(input);
            assert!(text.contains(needle), "{:?}: {text}", String::from_utf8_lossy(input));
        }
        let long_garbage = vec![b'x'; 1000];
        assert!(err_text(&long_garbage).contains("no newline within the first 256 bytes"));
    }

    #[test]
    fn every_truncation_is_an_error_or_clean_eof() {
        let mut stream = Vec::new();
        write_chunk(&mut stream, br#"{"action":"getinfo"}"#, b"").unwrap();
        write_chunk(&mut stream, br#"{"action":"execute"}"#, "a\n\"é\"\n".as_bytes()).unwrap();
        let first_len = "chunked 1.0,20,0\n".len() + 20;
        for cut in 0..stream.len() {
            let result = read_all(&stream[..cut]);
            match cut {
                0 => assert!(result.unwrap().is_empty()),
                _ if cut == first_len => assert_eq!(result.unwrap().len(), 1),
                _ => assert!(result.is_err(), "cut at {cut}"),
            }
        }
    }
}
