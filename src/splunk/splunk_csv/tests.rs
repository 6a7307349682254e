//! Unit tests of `splunk_csv`.

use super::*;
use std::io::Read;

/// Gunzips a fixture from `tests/fixtures/scpv2/`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/scpv2/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    if !name.ends_with(".gz") {
        return raw;
    }
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text).unwrap();
    text
}

/// The body of the `n`th chunk of a recorded stream.
pub(crate) fn chunk_body(stream: &[u8], n: usize) -> Vec<u8> {
    let mut input = stream;
    let mut chunk = None;
    for _ in 0..=n {
        chunk = crate::splunk::chunked::read_chunk(&mut input).unwrap();
    }
    chunk.unwrap().body
}

fn single(text: &str) -> FieldValue<'static> {
    FieldValue::from(text)
}

fn multi(values: &[&str]) -> FieldValue<'static> {
    FieldValue::Multi(values.iter().map(|v| v.to_string()).collect())
}

#[test]
fn decodes_splunk_style_body_with_multivalues() {
    let body = b"\"_raw\",x,\"_chunked_idx\",\"__mv__raw\",\"__mv_x\",\"__mv__chunked_idx\"\n\
        \"hello, world\",1,0,,,\n\"multi\nline\",\"a\nb\",1,,\"$a$;$b$$c$\",\n";
    let table = Table::decode(body).unwrap();
    assert_eq!(table.n_rows(), 2);
    assert_eq!(table.header()[2], "_chunked_idx");
    let x = table.field_index("x").unwrap();
    assert_eq!(table.value(0, x), single("1"));
    assert_eq!(table.value(1, x), multi(&["a", "b$c"]));
    assert_eq!(table.value_by_name(1, "_raw"), Some(single("multi\nline")));
    assert_eq!(table.value_by_name(0, "nope"), None);
    // An `__mv_` column is only a companion when its plain column exists.
    let lone = Table::decode(b"__mv_y\n$a$;$b$\n").unwrap();
    assert_eq!(lone.value(0, 0), single("$a$;$b$"));
}

#[test]
fn multivalue_codec_matches_splunklib() {
    let values: Vec<String> = ["a$b", "c", "", "d,e"].iter().map(|v| v.to_string()).collect();
    let mut encoded = String::new();
    encode_multivalue(&values, &mut encoded);
    assert_eq!(encoded, "$a$$b$;$c$;$$;$d,e$");
    assert_eq!(decode_multivalue(encoded.as_bytes()), Some(values));
    assert_eq!(decode_multivalue(b"$$;$$"), Some(vec![String::new(), String::new()]));
    assert_eq!(decode_multivalue(b"$a$b"), None);
    assert_eq!(decode_multivalue(b"a"), None);
    assert_eq!(decode_multivalue(b"$a"), None);
    // A malformed companion falls back to the plain column.
    let table = Table::decode(b"x,__mv_x\nplain,$broken\n").unwrap();
    assert_eq!(table.value(0, 0), single("plain"));
}

#[test]
fn invalid_utf8_is_replaced_when_read_and_passed_through_when_encoded() {
    let body = b"a\nx\xffy\n";
    let table = Table::decode(body).unwrap();
    assert_eq!(table.value(0, 0), single("x\u{fffd}y"));
    let mut out = Vec::new();
    encode_reply(&table, &AddedFields::new(1), &mut out);
    assert_eq!(out, body);
}

#[test]
fn empty_and_header_only_bodies_round_trip() {
    let mut out = Vec::new();
    encode_reply(&Table::decode(b"").unwrap(), &AddedFields::new(0), &mut out);
    assert!(out.is_empty());
    let table = Table::decode(b"age,\"_chunked_idx\",\"__mv_age\"\r\n").unwrap();
    assert!(table.has_header());
    assert_eq!(table.n_rows(), 0);
    let mut added = AddedFields::new(0);
    added.field("new");
    encode_reply(&table, &added, &mut out);
    assert_eq!(out, b"age,_chunked_idx,__mv_age,new\n");
}

#[test]
fn unequal_rows_are_rejected_with_position() {
    let err = Table::decode(b"a,b\n1,2\n3\n").unwrap_err();
    assert_eq!(err.to_string(), "csv record 3 (byte 8) has 1 fields but the header has 2");
}

#[test]
fn encoder_quotes_minimally_and_adds_union_of_fields() {
    let table = Table::decode(b"a,b\n1,2\n3,4\n5,6\n").unwrap();
    let mut added = AddedFields::new(3);
    let late = added.field("late");
    let first = added.field("first");
    assert!(added.set(0, first, single("x,y")));
    assert!(added.set(1, first, single(" lead")));
    assert!(added.set(2, late, multi(&["p$", "q"])));
    assert!(added.set(2, first, FieldValue::Multi(vec!["only".into()])));
    assert!(!added.set(3, first, single("out of range")));
    let mut out = Vec::new();
    encode_reply(&table, &added, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a,b,late,__mv_late,first\n1,2,,,\"x,y\"\n3,4,,,\" lead\"\n5,6,\"p$\nq\",$p$$$;$q$,only\n"
    );
}

#[test]
fn encoder_overrides_input_fields_and_their_mv_companions() {
    let table = Table::decode(b"age,b,__mv_age\n66,\"say \"\"hi\"\"\",\n18,z,\n").unwrap();
    let mut added = AddedFields::new(2);
    let age = added.field("age");
    let b = added.field("b");
    added.set(0, age, single("132"));
    added.set(1, age, multi(&["36", "37"]));
    added.set(1, b, multi(&["m", "n"]));
    let mut out = Vec::new();
    encode_reply(&table, &added, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "age,b,__mv_age,__mv_b\n132,\"say \"\"hi\"\"\",,\n\"36\n37\",\"m\nn\",$36$;$37$,$m$;$n$\n"
    );
    let decoded = Table::decode(text.as_bytes()).unwrap();
    assert_eq!(decoded.value(0, 1), single("say \"hi\""));
    assert_eq!(decoded.value(1, 0), multi(&["36", "37"]));
    assert_eq!(decoded.value(1, 1), multi(&["m", "n"]));
}

/// Our tokenizer must split exactly like the `csv` crate (the reference reader).
fn assert_same_cells_as_csv_crate(body: &[u8]) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let records: Vec<csv::ByteRecord> = reader.byte_records().map(Result::unwrap).collect();
    let what = String::from_utf8_lossy(body);
    let Ok(table) = Table::decode(body) else {
        let widths: Vec<usize> = records.iter().map(csv::ByteRecord::len).collect();
        assert!(widths.windows(2).any(|pair| pair[0] != pair[1]), "{what:?}");
        return;
    };
    assert_eq!(table.has_header(), !records.is_empty(), "{what:?}");
    let Some((header, rows)) = records.split_first() else { return };
    let header: Vec<String> =
        header.iter().map(|name| String::from_utf8_lossy(name).into_owned()).collect();
    assert_eq!(table.header(), header, "{what:?}");
    assert_eq!(table.n_rows(), rows.len(), "{what:?}");
    for (row, record) in rows.iter().enumerate() {
        for (column, cell) in record.iter().enumerate() {
            assert_eq!(table.cell(row, column), cell, "{what:?} row {row} column {column}");
        }
        // The raw row, re-encoded verbatim in replies, holds exactly these cells.
        let raw = table.raw_row(row);
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(raw);
        match reader.byte_records().next() {
            Some(again) => {
                assert!(again.unwrap().iter().eq(record.iter()), "{what:?} row {row}")
            }
            None => assert!(record.iter().all(<[u8]>::is_empty), "{what:?} row {row}"),
        }
    }
}

#[test]
fn tokenizer_agrees_with_the_csv_crate() {
    let cases: &[&[u8]] = &[
        b"",
        b"\n\n",
        b"a",
        b"a,b\n1,2",
        b"a,b\r\n1,2\r\n",
        b"a,b\r1,2\r",
        b"a,b\n\n\n1,2\n\r\n3,4\n",
        b"a,b\n,\n",
        b"a,b\n\"\",\"\"\n",
        b"a,b\n\"x,\"\"y\"\"\",\"multi\nline\r\nz\"\n",
        b"a,b\n\"ab\"cd,e\"f\n",
        b"a,b\n\"\"\"\",\"x\"\"\"\n",
        b"a,b\n1,\"unterminated\n2,3",
        b"\"h,1\",\"h\"\"2\"\n1,2\n",
        b"a,b\n1,2,3\n",
        b"a,b\n1\n",
        "a\n\"Tú 👀\"\n".as_bytes(),
        b"a\nx\xffy\n",
    ];
    for body in cases {
        assert_same_cells_as_csv_crate(body);
    }
    for name in ["countmatches.input.gz", "sum.map.input.gz", "sum.reduce.input.gz"] {
        assert_same_cells_as_csv_crate(&chunk_body(&fixture(name), 1));
    }
    assert_same_cells_as_csv_crate(&chunk_body(&fixture("stream_multi.input"), 1));
}

/// The fastest of `n_runs` runs of `f`, each given a fresh copy of `input` (copied outside
/// the timing).
fn fastest(n_runs: usize, input: &[u8], mut f: impl FnMut(Vec<u8>)) -> std::time::Duration {
    (0..n_runs)
        .map(|_| {
            let input = input.to_vec();
            let started = std::time::Instant::now();
            f(input);
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn sum_map_chunk_round_trips_and_reports_timing() {
    let raw = std::fs::read(format!(
        "{}/tests/fixtures/scpv2/sum.map.input.gz",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let gunzip = fastest(3, &raw, |raw| {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text).unwrap();
    });
    let stream = fixture("sum.map.input.gz");
    let body = chunk_body(&stream, 1);
    let mut n_records = 0;
    let csv_parse_only = fastest(5, &body, |body| {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[..]);
        let mut record = csv::ByteRecord::new();
        n_records = 0;
        while reader.read_byte_record(&mut record).unwrap() {
            n_records += 1;
        }
    });
    let mut out = Vec::new();
    let mut n_rows = 0;
    let roundtrip = fastest(5, &body, |body| {
        out = Vec::new();
        n_rows = bench_roundtrip(body, &mut out).unwrap();
    });
    eprintln!(
        "sum.map: {} bytes, {n_rows} rows; fastest of several runs: gunzip {gunzip:?}, \
         csv crate parse only {csv_parse_only:?}, decode+add field+encode {roundtrip:?}",
        body.len()
    );
    assert_eq!(n_records, 50_001);
    assert_eq!(n_rows, 50_000);

    let input = Table::decode(body.as_slice()).unwrap();
    let output = Table::decode(out.as_slice()).unwrap();
    assert_eq!(output.n_rows(), 50_000);
    assert_eq!(&output.header()[..input.n_columns()], input.header());
    assert_eq!(output.header().last().map(String::as_str), Some("n"));
    for row in 0..input.n_rows() {
        for column in 0..input.n_columns() {
            assert_eq!(output.cell(row, column), input.cell(row, column), "row {row}");
        }
        assert_eq!(output.cell_str(row, input.n_columns()), row.to_string());
    }
}
