//! Unit tests of `results` (the reader) and its guard.

use super::guard::{MIB, Scan};
use super::*;
use crate::splunk::conf::ConfFile;
use flate2::{Compression, write::GzEncoder};
use std::io::Write;

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap()
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stackflow-results-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.csv.gz");
    std::fs::write(&path, bytes).unwrap();
    path
}

const SAMPLE: &str = "\"_time\",src,dest,user,\"_raw\",\"__mv__time\",\"__mv_src\",\"__mv_dest\",\"__mv_user\",\"__mv__raw\"\n\
\"1700000000.123\",\"10.0.0.1\",\"10.0.0.2\",alice,\"raw line 1\",,,,,\n\
\"1700000001.000\",\"10.0.0.3\n10.0.0.4\",\"10.0.0.2\",bob,\"raw \"\"quoted\"\"\nline 2\",,\"$10.0.0.3$;$10.0.0.4$\",,,\n";

#[test]
fn reads_multivalue_and_quoted_fields() {
    let path = write_temp("sample", &gzip(SAMPLE.as_bytes()));
    assert_eq!(ResultsReader::validate(&path, Limits::default()).unwrap(), 2);
    let rows: Vec<Row> =
        ResultsReader::open(&path, None, Limits::default()).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows[0].rid, "0");
    assert_eq!(rows[0].str("user"), Some("alice"));
    assert_eq!(
        rows[1].get("src"),
        Some(&FieldValue::Multi(vec!["10.0.0.3".into(), "10.0.0.4".into()]))
    );
    assert_eq!(rows[1].str("_raw"), Some("raw \"quoted\"\nline 2"));
    assert!(rows[1].fields().all(|(name, _)| !name.starts_with("__mv_")));
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let (head, tail) = SAMPLE.split_at(SAMPLE.find("\"1700000001").unwrap());
    let mut bytes = gzip(head.as_bytes());
    bytes.extend(gzip(tail.as_bytes()));
    let path = write_temp("multi", &bytes);
    assert_eq!(ResultsReader::validate(&path, Limits::default()).unwrap(), 2);
    assert_eq!(ResultsReader::open(&path, None, Limits::default()).unwrap().count(), 2);
}

#[test]
fn per_result_rows_take_the_result_id() {
    let path = write_temp("per-result", &gzip(SAMPLE.as_bytes()));
    let first =
        ResultsReader::open(&path, Some("7"), Limits::default()).unwrap().next().unwrap().unwrap();
    assert_eq!(first.rid, "7");
}

#[test]
fn damage_is_reported_with_what_and_where() {
    let good = gzip(SAMPLE.as_bytes());
    let truncated = write_temp("truncated", &good[..good.len() - 12]);
    let message = ResultsReader::validate(&truncated, Limits::default()).unwrap_err().to_string();
    assert!(message.contains("truncated"), "{message}");

    let corrupt = write_temp("corrupt", b"this is not gzip at all");
    let message = ResultsReader::validate(&corrupt, Limits::default()).unwrap_err().to_string();
    assert!(message.contains("not valid gzip"), "{message}");

    let ragged = write_temp("ragged", &gzip(b"a,b,c\n1,2,3\n4,5\n"));
    let message = ResultsReader::validate(&ragged, Limits::default()).unwrap_err().to_string();
    assert!(message.contains("row 1 has 2 fields but the header has 3"), "{message}");

    let missing =
        ResultsReader::validate(Path::new("/nonexistent/results.csv.gz"), Limits::default())
            .unwrap_err();
    assert_eq!(missing.exit_code(), crate::error::ExitCode::BadResults);
}

#[test]
fn zero_rows_and_empty_files_are_fine() {
    assert_eq!(
        ResultsReader::validate(&write_temp("header-only", &gzip(b"a,b\n")), Limits::default())
            .unwrap(),
        0
    );
    assert_eq!(
        ResultsReader::validate(&write_temp("empty", &gzip(b"")), Limits::default()).unwrap(),
        0
    );
    assert_eq!(
        ResultsReader::open(&write_temp("empty2", &gzip(b"")), None, Limits::default())
            .unwrap()
            .count(),
        0
    );
}

/// What the `csv` crate (configured as `open_csv` does, but flexible) makes of `body`:
/// the number of records, and the most fields, value bytes and record bytes in one.
fn csv_crate_shape(body: &[u8]) -> (u64, u64, u64, u64) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut record = csv::ByteRecord::new();
    let (mut records, mut fields, mut field_bytes, mut record_bytes) = (0, 0, 0, 0);
    while reader.read_byte_record(&mut record).unwrap() {
        records += 1;
        fields = fields.max(record.len() as u64);
        field_bytes = field_bytes.max(record.iter().map(|f| f.len() as u64).max().unwrap());
        record_bytes = record_bytes.max(record.as_slice().len() as u64);
    }
    (records, fields, field_bytes, record_bytes)
}

/// Reads `body` through a `Guard`, `chunk` bytes per read; the refusal, if any.
fn guard_outcome(body: &[u8], limits: Limits, chunk: usize) -> Option<Refusal> {
    guard_records(body, limits, chunk).err()
}

/// The number of records the guard saw in `body`, or its refusal.
fn guard_records(body: &[u8], limits: Limits, chunk: usize) -> Result<u64, Refusal> {
    let mut guard = Guard::new(body, limits);
    let mut buf = vec![0; chunk];
    loop {
        match guard.read(&mut buf) {
            Ok(0) => return Ok(guard.record + u64::from(guard.state != Scan::StartRecord)),
            Ok(_) => {}
            Err(error) => {
                return Err(error.get_ref().unwrap().downcast_ref::<Refusal>().unwrap().clone());
            }
        }
    }
}

/// Every string of up to 5 bytes over `a , " CR LF`, and some longer ones (the cases of
/// `splunk_csv`'s tokenizer test, which are aimed at the same grammar): the guard's fields, values and
/// records are the `csv` crate's (a limit equal to the largest passes, one less refuses),
/// and it refuses exactly the inputs that end inside a quoted value, which the `csv` crate
/// would accept (oracle: appending `\nZ` then starts no new record).
#[test]
fn the_guard_agrees_with_the_csv_crate_on_every_small_input() {
    let alphabet = [b'a', b',', b'"', b'\r', b'\n'];
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    let mut last = vec![Vec::new()];
    for _ in 0..5 {
        last = last
            .iter()
            .flat_map(|prefix| {
                alphabet.iter().map(move |&byte| {
                    let mut next: Vec<u8> = prefix.clone();
                    next.push(byte);
                    next
                })
            })
            .collect();
        inputs.extend(last.iter().cloned());
    }
    for longer in [
        &b"a,b\r\n1,2\r\n"[..],
        b"a,b\n\n\n1,2\n\r\n3,4\n",
        b"a,b\n\"x,\"\"y\"\"\",\"multi\nline\r\nz\"\n",
        b"a,b\n\"ab\"cd,e\"f\n",
        b"a,b\n\"\"\"\",\"x\"\"\"\n",
        b"a,b\n1,\"unterminated\n2,3",
        b"\"h,1\",\"h\"\"2\"\n1,2\n",
        "a\n\"T\u{fa} \u{1f440}\"\n".as_bytes(),
    ] {
        inputs.push(longer.to_vec());
    }
    let unlimited = Limits {
        max_results_bytes: u64::MAX,
        max_record_bytes: u64::MAX,
        max_field_bytes: u64::MAX,
        max_fields: u64::MAX,
    };
    for body in &inputs {
        let (records, fields, field_bytes, record_bytes) = csv_crate_shape(body);
        let extended = [body.as_slice(), b"\nZ"].concat();
        let unclosed = csv_crate_shape(&extended).0 == records;
        let exact = Limits {
            max_results_bytes: body.len() as u64,
            max_record_bytes: record_bytes.max(1),
            max_field_bytes: field_bytes.max(1),
            max_fields: fields.max(1),
        };
        let shown = String::from_utf8_lossy(body);
        for chunk in [1, 3, 64] {
            let outcome = guard_outcome(body, exact, chunk);
            if unclosed {
                assert!(
                    matches!(outcome, Some(Refusal::Unclosed { .. })),
                    "{shown:?} by {chunk}: {outcome:?}"
                );
                continue;
            }
            assert_eq!(outcome, None, "{shown:?} by {chunk}");
            assert_eq!(guard_records(body, unlimited, chunk), Ok(records), "{shown:?}");
            if fields > 1 {
                let limits = Limits { max_fields: fields - 1, ..exact };
                let outcome = guard_outcome(body, limits, chunk);
                assert!(matches!(outcome, Some(Refusal::Fields { .. })), "{shown:?}: {outcome:?}");
            }
            if field_bytes > 1 {
                let limits = Limits { max_field_bytes: field_bytes - 1, ..exact };
                let outcome = guard_outcome(body, limits, chunk);
                assert!(
                    matches!(outcome, Some(Refusal::FieldBytes { .. })),
                    "{shown:?}: {outcome:?}"
                );
            }
            if record_bytes > 1 && record_bytes > field_bytes {
                let limits = Limits { max_record_bytes: record_bytes - 1, ..exact };
                let outcome = guard_outcome(body, limits, chunk);
                assert!(
                    matches!(outcome, Some(Refusal::RecordBytes { .. })),
                    "{shown:?}: {outcome:?}"
                );
            }
            if !body.is_empty() {
                let limits = Limits { max_results_bytes: body.len() as u64 - 1, ..exact };
                let outcome = guard_outcome(body, limits, chunk);
                assert!(
                    matches!(outcome, Some(Refusal::ResultsBytes { .. })),
                    "{shown:?}: {outcome:?}"
                );
            }
        }
    }
}

/// Counts the bytes taken from an endless source.
struct Counted<R> {
    inner: R,
    taken: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn an_endless_value_is_refused_after_the_limit_not_at_the_end() {
    let limits = Limits { max_field_bytes: 1 << 20, ..Limits::default() };
    for (start, quoted) in [(&b"a,b\n1,\""[..], true), (&b"a,b\n1,"[..], false)] {
        let taken = std::rc::Rc::new(std::cell::Cell::new(0));
        let endless = Counted { inner: start.chain(std::io::repeat(b'A')), taken: taken.clone() };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_reader(Guard::new(endless, limits));
        let mut record = csv::ByteRecord::new();
        assert!(reader.read_byte_record(&mut record).unwrap(), "the header");
        let header = record.clone();
        let error = reader.read_byte_record(&mut record).unwrap_err();
        let message =
            describe_csv_error(Path::new("r.csv.gz"), error, 0, Some(&header)).to_string();
        assert!(
            message.contains(
                "row 0, column 2 (\"b\"): a value exceeds the limit of 1048576 bytes (1 MiB) set by stackflow.conf [limits] max_field_bytes"
            ),
            "quoted {quoted}: {message}"
        );
        // The parser held at most the limit plus its buffer: the source was not drained.
        assert!(taken.get() <= (1 << 20) + 2 * 256 * 1024, "took {}", taken.get());
    }
}

#[test]
fn limits_name_the_key_the_value_and_the_place() {
    let fail = |name: &str, limits: Limits, text: &[u8]| {
        let path = write_temp(name, &gzip(text));
        let error = ResultsReader::validate(&path, limits).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::ExitCode::BadResults);
        error.to_string()
    };
    let small = Limits {
        max_results_bytes: 3 * MIB,
        max_record_bytes: 30,
        max_field_bytes: 10,
        max_fields: 4,
    };
    let message = fail("field", small, b"a,_raw\n1,2\n3,\"0123456789x\"\n");
    assert!(
        message.ends_with(
            "row 1, column 2 (\"_raw\"): a value exceeds the limit of 10 bytes set by stackflow.conf [limits] max_field_bytes"
        ),
        "{message}"
    );
    let message = fail("record", small, b"a,b,c,d\n0123456789,0123456789,0123456789,x\n");
    assert!(
        message.ends_with(
            "row 0 exceeds the limit of 30 bytes set by stackflow.conf [limits] max_record_bytes"
        ),
        "{message}"
    );
    let message = fail("fields", small, b"a,b,c,d,e\n");
    assert!(
        message.ends_with(
            "the header has more than 4 fields, the limit set by stackflow.conf [limits] max_fields"
        ),
        "{message}"
    );
    let big = "x\n".repeat(2 * MIB as usize);
    let message = fail("total", small, format!("a\n{big}").as_bytes());
    assert!(
        message.contains(
            "the decompressed CSV exceeds the limit of 3145728 bytes (3 MiB) set by stackflow.conf [limits] max_results_bytes (reached in row "
        ),
        "{message}"
    );
    let message = fail("unclosed", Limits::default(), b"a,b\n1,2\n3,\"4\n5,6\n");
    assert!(
        message.ends_with(
            "row 1, column 2 (\"b\"): a quoted field is not closed before the end of the file (truncated or malformed CSV)"
        ),
        "{message}"
    );
    // The second pass reports the same way.
    let path = write_temp("unclosed-open", &gzip(b"a,b\n1,2\n3,\"4\n"));
    let mut rows = ResultsReader::open(&path, None, Limits::default()).unwrap();
    assert!(rows.next().unwrap().is_ok());
    let message = rows.next().unwrap().unwrap_err().to_string();
    assert!(message.contains("row 1, column 2 (\"b\"): a quoted field is not closed"), "{message}");
    assert!(rows.next().is_none());
}

#[test]
fn limits_come_from_the_limits_stanza() {
    assert_eq!(Limits::from_conf(&ConfFile::default()).unwrap(), Limits::default());
    let conf = ConfFile::parse_str("[limits]\nmax_fields = 12\nmax_field_bytes =\n");
    let limits = Limits::from_conf(&conf).unwrap();
    assert_eq!(limits.max_fields, 12);
    assert_eq!(limits.max_field_bytes, Limits::default().max_field_bytes);
    for bad in ["0", "-1", "lots", "1.5", "16MB"] {
        let conf = ConfFile::parse_str(&format!("[limits]\nmax_record_bytes = {bad}\n"));
        let error = Limits::from_conf(&conf).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
        assert!(error.to_string().contains("[limits] max_record_bytes"), "{error}");
    }
}

#[test]
fn only_regular_files_are_read() {
    let dir = write_temp("not-regular", b"").parent().unwrap().to_path_buf();
    let message = ResultsReader::validate(&dir, Limits::default()).unwrap_err().to_string();
    assert!(message.contains("not a regular file (a directory)"), "{message}");
    #[cfg(unix)]
    {
        let message = ResultsReader::validate(Path::new("/dev/null"), Limits::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("not a regular file (a device)"), "{message}");
    }
}

#[test]
fn multivalue_decoding_handles_dollars_and_rejects_junk() {
    assert_eq!(decode_multivalue("$dollar$$bill$;$bar$").unwrap(), vec!["dollar$bill", "bar"]);
    assert_eq!(decode_multivalue("$$").unwrap(), vec![""]);
    assert!(decode_multivalue("plain").is_none());
    assert!(decode_multivalue("$open").is_none());
}

/// A header of `fields` fields, each followed by its `__mv_` column, and one row.
fn wide_file(fields: usize) -> Vec<u8> {
    let mut header: Vec<String> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    for index in 0..fields {
        header.push(format!("f{index}"));
        header.push(format!("__mv_f{index}"));
        row.push(format!("v{index}"));
        row.push(String::new());
    }
    format!("{}\n{}\n", header.join(","), row.join(",")).into_bytes()
}

#[test]
fn max_fields_counts_fields_not_their_mv_columns() {
    // The default accepts 10,000 Splunk fields written with their 10,000 `__mv_` columns.
    let path = write_temp("wide-default", &gzip(&wide_file(10_000)));
    assert_eq!(ResultsReader::validate(&path, Limits::default()).unwrap(), 1);
    let rows: Vec<Row> = ResultsReader::open(&path, None, Limits::default())
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(rows[0].str("f9999"), Some("v9999"));
    // With a small limit: 3 fields and their columns pass, a fourth field does not, in the
    // header or in a row.
    let three = Limits { max_fields: 3, ..Limits::default() };
    let path = write_temp("wide-three", &gzip(&wide_file(3)));
    assert_eq!(ResultsReader::validate(&path, three).unwrap(), 1);
    let path = write_temp("wide-four", &gzip(&wide_file(4)));
    let message = ResultsReader::validate(&path, three).unwrap_err().to_string();
    assert!(
        message.ends_with(
            "the header has more than 3 fields, the limit set by stackflow.conf [limits] max_fields"
        ),
        "{message}"
    );
    let path = write_temp("wide-row", &gzip(b"a,__mv_a\n1,,2,3,4\n"));
    let message = ResultsReader::validate(&path, Limits { max_fields: 2, ..Limits::default() })
        .unwrap_err()
        .to_string();
    assert!(
        message.ends_with(
            "row 0 has more than 2 fields, the limit set by stackflow.conf [limits] max_fields"
        ),
        "{message}"
    );
    // `__mv_` columns alone are bounded too: at most one per field.
    let mv_only: String = (0..7).map(|i| format!("__mv_x{i}")).collect::<Vec<_>>().join(",");
    let path = write_temp("mv-only", &gzip(format!("{mv_only}\n").as_bytes()));
    let message = ResultsReader::validate(&path, three).unwrap_err().to_string();
    assert!(message.contains("more than 3 fields"), "{message}");
}
