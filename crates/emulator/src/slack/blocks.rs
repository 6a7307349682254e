//! Block Kit limits for `chat.postMessage` / `chat.update` (including the checks slack_sdk
//! misses): block counts, text lengths and button fields, as Slack's Block Kit reference
//! documents them; a message over a limit is answered `invalid_blocks`.

use serde_json::Value;

fn text_len(obj: &Value) -> usize {
    obj.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn str_len(v: &Value, k: &str) -> usize {
    v.get(k).and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

fn validate_element(e: &Value) -> Result<(), String> {
    if e.get("type").and_then(Value::as_str) != Some("button") {
        return Ok(());
    }
    let text = e.get("text").ok_or("button without text")?;
    check(text_len(text) <= 75, "button text must be at most 75 characters")?;
    check(str_len(e, "value") <= 2000, "button value must be at most 2000 characters")?;
    check(str_len(e, "url") <= 3000, "button url must be at most 3000 characters")?;
    check(str_len(e, "action_id") <= 255, "action_id must be at most 255 characters")?;
    let style = e.get("style").and_then(Value::as_str);
    check(
        style.is_none_or(|s| s == "primary" || s == "danger"),
        "button style must be primary or danger",
    )?;
    if let Some(c) = e.get("confirm") {
        let lens = [("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)];
        for (k, max) in lens {
            check(
                c.get(k).map_or(0, text_len) <= max,
                &format!("confirm {k} must be at most {max} characters"),
            )?;
        }
    }
    Ok(())
}

/// Block Kit limits for messages (including the checks slack_sdk misses).
pub(super) fn validate_blocks(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks must be an array")?;
    check(blocks.len() <= 50, "no more than 50 blocks per message")?;
    for (i, b) in blocks.iter().enumerate() {
        let at = |m: &str| format!("{m} [json-pointer:/blocks/{i}]");
        check(str_len(b, "block_id") <= 255, &at("block_id must be at most 255 characters"))?;
        let elements =
            b.get("elements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        match b.get("type").and_then(Value::as_str) {
            Some("header") => check(
                b.get("text").is_some_and(|t| text_len(t) <= 150),
                &at("header text required, at most 150 characters"),
            )?,
            Some("section") => {
                let fields = b.get("fields").and_then(Value::as_array);
                check(
                    b.get("text").is_some() || fields.is_some(),
                    &at("section needs text or fields"),
                )?;
                check(
                    b.get("text").is_none_or(|t| text_len(t) <= 3000),
                    &at("section text must be at most 3000 characters"),
                )?;
                check(fields.is_none_or(|f| f.len() <= 10), &at("no more than 10 fields"))?;
                check(
                    fields.is_none_or(|f| f.iter().all(|x| text_len(x) <= 2000)),
                    &at("field text must be at most 2000 characters"),
                )?;
                b.get("accessory").map_or(Ok(()), validate_element).map_err(|m| at(&m))?;
            }
            Some("actions") => {
                check(
                    !elements.is_empty() && elements.len() <= 25,
                    &at("actions needs 1 to 25 elements"),
                )?;
                elements.iter().try_for_each(validate_element).map_err(|m| at(&m))?;
            }
            Some("context") => check(
                !elements.is_empty() && elements.len() <= 10,
                &at("context needs 1 to 10 elements"),
            )?,
            Some("divider" | "image" | "input" | "rich_text" | "markdown" | "file" | "video") => {}
            other => return Err(at(&format!("unsupported block type {other:?}"))),
        }
    }
    Ok(())
}
