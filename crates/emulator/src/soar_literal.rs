//! SOAR's `_filter_` values as SOAR reads them: Python literals (`ast.literal_eval`).

use serde_json::Value;

/// Parses a Python literal as SOAR does for `_filter_` values (`ast.literal_eval`): quoted
/// strings with Python's escapes, ints/floats, True/False/None and lists/tuples of those; a bare
/// word is taken as a string (lenient). Like Python, a raw line break inside a quoted string
/// or a NUL anywhere is a syntax error, which SOAR answers with HTTP 400 `failed`.
pub(crate) fn parse_literal(s: &str) -> Result<Value, String> {
    if s.contains('\0') {
        return Err("source code string cannot contain null bytes".into());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let value = literal(&chars, &mut pos)?;
    skip_ws(&chars, &mut pos);
    if pos != chars.len() {
        return Err(format!("invalid syntax at offset {pos}"));
    }
    Ok(value)
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
        *pos += 1;
    }
}

fn literal(chars: &[char], pos: &mut usize) -> Result<Value, String> {
    skip_ws(chars, pos);
    match chars.get(*pos) {
        Some(&open @ ('[' | '(')) => {
            let close = if open == '[' { ']' } else { ')' };
            *pos += 1;
            let mut items = Vec::new();
            loop {
                skip_ws(chars, pos);
                if chars.get(*pos) == Some(&close) {
                    *pos += 1;
                    return Ok(Value::Array(items));
                }
                items.push(literal(chars, pos)?);
                skip_ws(chars, pos);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(c) if *c == close => {}
                    _ => return Err("invalid syntax: unclosed list".into()),
                }
            }
        }
        Some(&quote @ ('\'' | '"')) => {
            *pos += 1;
            let mut out = String::new();
            loop {
                let c = *chars.get(*pos).ok_or("EOF while scanning string literal")?;
                *pos += 1;
                match c {
                    '\n' | '\r' => return Err("EOL while scanning string literal".into()),
                    c if c == quote => return Ok(Value::String(out)),
                    '\\' => {
                        let e = *chars.get(*pos).ok_or("EOF while scanning string literal")?;
                        *pos += 1;
                        let hex = |pos: &mut usize, n: usize| -> Result<char, String> {
                            let text: String = chars
                                .get(*pos..*pos + n)
                                .ok_or("truncated escape")?
                                .iter()
                                .collect();
                            *pos += n;
                            u32::from_str_radix(&text, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad escape \\{text}"))
                        };
                        out.push(match e {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            '0' => '\0',
                            'x' => hex(pos, 2)?,
                            'u' => hex(pos, 4)?,
                            other => other,
                        });
                    }
                    c => out.push(c),
                }
            }
        }
        Some(_) => {
            let start = *pos;
            while chars.get(*pos).is_some_and(|c| !matches!(c, ',' | ']' | ')')) {
                *pos += 1;
            }
            let word: String = chars[start..*pos].iter().collect();
            let word = word.trim();
            Ok(match word {
                "True" | "true" => Value::Bool(true),
                "False" | "false" => Value::Bool(false),
                "None" | "null" => Value::Null,
                _ => word
                    .parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| {
                        word.parse::<f64>()
                            .ok()
                            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                    })
                    .unwrap_or_else(|| word.into()),
            })
        }
        None => Err("invalid syntax: empty literal".into()),
    }
}
