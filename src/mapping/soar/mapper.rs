//! `SoarMapper`: streams rows into SOAR delivery items — per row (`grouping=row`) or as batches
//! of one container's artifacts (`grouping=alert`) written straight into the request text,
//! with the list index the SOAR client reads instead of parsing the text again, and buffers
//! handed back for the next batches.

use super::wire::{self, ArtifactWriter};
use super::*;

fn row_ref(row: &Row) -> RowRef {
    RowRef {
        rid: row.rid.clone(),
        orig_sid: row.str("orig_sid").unwrap_or_default().to_string(),
        orig_rid: row.str("orig_rid").unwrap_or_default().to_string(),
        event_id: row.str("event_id").unwrap_or_default().to_string(),
    }
}

/// A container batch being filled (`grouping=alert`): the request's JSON text up to and
/// including the artifacts written so far.
struct Batch {
    text: Vec<u8>,
    artifacts: usize,
    context: ItemContext,
    index: u32,
    /// Where each artifact and its SDI are, for the SOAR client (`DeliveryItem::list_index`).
    list: ListIndex,
}

impl Batch {
    /// A batch written into `buffer` (one handed back by `reuse`) when there is one.
    fn new(
        container_json: &str,
        buffer: Option<Vec<u8>>,
        capacity: usize,
        context: ItemContext,
        index: u32,
    ) -> Batch {
        let text = SoarMapper::open_batch(container_json, buffer.unwrap_or_default(), capacity);
        let list = ListIndex { list: text.len()..text.len(), ..ListIndex::default() };
        Batch { text, artifacts: 0, context, index, list }
    }

    /// Indexes the artifacts `writer` just wrote, `shift` bytes further on in `text` than
    /// where it wrote them (negative when they moved back).
    fn index_written(&mut self, writer: &ArtifactWriter, shift: isize) {
        for (text, sdi) in writer.written() {
            let from = self.list.ids.len();
            self.list.ids.push_str(sdi);
            self.list.elements.push(ListElement {
                text: text.start.saturating_add_signed(shift)
                    ..text.end.saturating_add_signed(shift),
                id: from..self.list.ids.len(),
                flagged: false,
            });
        }
    }
}

/// Sent batches' buffers kept for the next ones: the delivery thread holds a few items at once.
const SPARE_BUFFERS: usize = 2;

/// `"run_automation":false}`, the end of every artifact `ArtifactWriter` writes.
const AUTOMATION_OFF: &[u8] = b"\"run_automation\":false}";

pub struct SoarMapper {
    pub(super) context: AlertContext,
    params: SoarParams,
    /// The alert's container (`grouping=alert`), set by the first row, and its JSON text.
    container: Option<(ContainerSpec, String)>,
    batch: Option<Batch>,
    next_index: u32,
    writer: ArtifactWriter,
    /// The artifact name of a row without `rule_name` (`Splunk result <rid>`), reused.
    name: String,
    /// Buffers of sent batches (`RowMapper::reuse`), at most `SPARE_BUFFERS`.
    spare: Vec<Vec<u8>>,
}

impl SoarMapper {
    pub fn new(context: AlertContext) -> Result<SoarMapper> {
        let params = SoarParams::from_context(&context)?;
        if params.grouping == Grouping::Alert && context.sid.trim().is_empty() {
            return Err(Error::Payload(
                "the payload has no sid, which names the SOAR container (grouping=alert)".into(),
            ));
        }
        let writer = ArtifactWriter::new(params.field_mapping.clone());
        Ok(SoarMapper {
            context,
            params,
            container: None,
            batch: None,
            next_index: 0,
            writer,
            name: String::new(),
            spare: Vec::new(),
        })
    }

    pub(super) fn severity(&self, row: &Row) -> String {
        match &self.params.severity {
            SeverityParam::Auto => row_severity(row),
            SeverityParam::Fixed(severity) => severity.clone(),
        }
    }

    fn container_name(&self, row: &Row) -> String {
        let rendered = self
            .params
            .container_name
            .as_deref()
            .map(|template| render_template(template, row, &self.context))
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty());
        rendered
            .or_else(|| rule_name(row).map(str::to_string))
            .or_else(|| Some(self.context.search_name.trim().to_string()).filter(|n| !n.is_empty()))
            .unwrap_or_else(|| format!("Splunk alert {}", self.context.sid))
    }

    fn container(&self, row: &Row, source_data_identifier: String) -> ContainerSpec {
        let mut data = Map::new();
        data.insert("sid".into(), Value::String(self.context.sid.clone()));
        data.insert("search_name".into(), Value::String(self.context.search_name.clone()));
        data.insert("results_link".into(), Value::String(self.context.results_link.clone()));
        ContainerSpec {
            name: self.container_name(row),
            label: self.params.label.clone(),
            severity: self.severity(row),
            sensitivity: self.params.sensitivity.clone(),
            tags: self.params.tags.clone(),
            source_data_identifier,
            description: format!(
                "From Splunk search \"{}\" (sid {}) by StackFlow for Splunk",
                self.context.search_name, self.context.sid
            ),
            data,
        }
    }

    /// A batch's text up to its first artifact: `{"container":…,"artifacts":[`.
    fn open_batch(container_json: &str, mut text: Vec<u8>, capacity: usize) -> Vec<u8> {
        text.clear();
        text.reserve(capacity);
        text.extend_from_slice(b"{\"container\":");
        text.extend_from_slice(container_json.as_bytes());
        text.extend_from_slice(b",\"artifacts\":[");
        text
    }

    /// Closes a batch's text into the item's request, as `encode_request` on the equivalent
    /// `SoarRequest` would write it (`run_automation` on its last artifact when `last`). The
    /// caller sets the dedupe key.
    fn emit(&self, batch: Batch, last: bool) -> Result<DeliveryItem> {
        let mut text = batch.text;
        let mut list = batch.list;
        if last && batch.artifacts > 0 {
            let Some(start) = text.len().checked_sub(AUTOMATION_OFF.len()) else {
                return Err(Error::Internal("a SOAR batch ends without an artifact".into()));
            };
            if &text[start..] != AUTOMATION_OFF {
                return Err(Error::Internal("a SOAR artifact ends unexpectedly".into()));
            }
            text.truncate(text.len() - b"false}".len());
            text.extend_from_slice(b"true}");
            if let Some(element) = list.elements.last_mut() {
                element.text.end = text.len();
                element.flagged = true;
            }
        }
        list.list.end = text.len();
        text.extend_from_slice(b"],\"batch\":");
        text.extend_from_slice(batch.index.to_string().as_bytes());
        text.extend_from_slice(if last {
            b",\"last_batch\":true"
        } else {
            b",\"last_batch\":false"
        });
        if let Some(playbook) = self.params.playbook.as_deref().filter(|_| last) {
            text.extend_from_slice(b",\"playbook\":");
            wire::json_str(&mut text, playbook);
        }
        text.push(b'}');
        let text = String::from_utf8(text)
            .map_err(|_| Error::Internal("a SOAR request is not UTF-8".into()))?;
        // Every piece was written by serde_json or `wire`'s JSON writer (serde_json's escaping).
        let request = RequestJson::encoded(text);
        Ok(DeliveryItem {
            target: TargetKind::Soar,
            account: self.context.account().to_string(),
            dedupe_key: String::new(),
            request,
            context: batch.context,
            list_index: Some(Arc::new(list)),
        })
    }
}

impl RowMapper for SoarMapper {
    fn push(&mut self, row: &Row) -> Result<Vec<DeliveryItem>> {
        let rule = rule_name(row);
        if rule.is_none() {
            use std::fmt::Write as _;
            self.name.clear();
            let _ = write!(self.name, "Splunk result {}", row.rid);
        }
        match self.params.grouping {
            Grouping::Row => {
                let container = self.container(row, row_container_sdi(row, &self.context.sid));
                let container_json = serde_json::to_string(&container).map_err(|error| {
                    Error::Internal(format!("cannot encode a request: {error}"))
                })?;
                let mut batch = Batch::new(
                    &container_json,
                    None,
                    container_json.len() + 4096,
                    self.context.item_context(&[row]),
                    0,
                );
                let name = rule.unwrap_or(&self.name);
                batch.artifacts =
                    self.writer.write(row, name, &container.severity, &mut batch.text, false, b"{");
                batch.index_written(&self.writer, 0);
                let mut item = self.emit(batch, true)?;
                item.dedupe_key = container.source_data_identifier;
                Ok(vec![item])
            }
            Grouping::Alert => {
                let mut ready = Vec::new();
                if self.container.is_none() {
                    let container = self.container(row, alert_container_sdi(&self.context));
                    let json = serde_json::to_string(&container).map_err(|error| {
                        Error::Internal(format!("cannot encode a request: {error}"))
                    })?;
                    self.container = Some((container, json));
                }
                let Some((container, container_json)) = self.container.as_ref() else {
                    return Err(Error::Internal("no SOAR container".into()));
                };
                let mut batch = match self.batch.take() {
                    Some(mut batch) => {
                        batch.context.rows.push(row_ref(row));
                        batch
                    }
                    None => {
                        let index = self.next_index;
                        self.next_index += 1;
                        Batch::new(
                            container_json,
                            self.spare.pop(),
                            1 << 20,
                            self.context.item_context(&[row]),
                            index,
                        )
                    }
                };
                let mark = batch.text.len();
                let name = rule.unwrap_or(&self.name);
                let added = self.writer.write(
                    row,
                    name,
                    &container.severity,
                    &mut batch.text,
                    batch.artifacts > 0,
                    b"{",
                );
                if batch.artifacts > 0 && batch.artifacts + added > BATCH_ARTIFACTS {
                    // The row does not fit: the batch goes without it, the row starts the next.
                    let moved = batch.text.split_off(mark);
                    batch.context.rows.pop();
                    let index = self.next_index;
                    self.next_index += 1;
                    let mut next = Batch::new(
                        container_json,
                        self.spare.pop(),
                        1 << 20,
                        self.context.item_context(&[row]),
                        index,
                    );
                    next.artifacts = added;
                    // Without the comma that separated it from the previous artifact.
                    let shift = next.text.len() as isize - (mark as isize + 1);
                    next.text.extend_from_slice(&moved[1..]);
                    next.index_written(&self.writer, shift);
                    let full = std::mem::replace(&mut batch, next);
                    ready.push(self.emit_alert(full, false)?);
                } else {
                    batch.artifacts += added;
                    batch.index_written(&self.writer, 0);
                }
                self.batch = Some(batch);
                Ok(ready)
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        match self.batch.take() {
            Some(batch) => Ok(vec![self.emit_alert(batch, true)?]),
            None => Ok(Vec::new()),
        }
    }

    fn reuse(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buffer);
        }
    }
}

impl SoarMapper {
    /// `emit` for `grouping=alert`: the dedupe key is the container's SDI and the batch number.
    fn emit_alert(&self, batch: Batch, last: bool) -> Result<DeliveryItem> {
        let index = batch.index;
        let mut item = self.emit(batch, last)?;
        let sdi = self
            .container
            .as_ref()
            .map(|(container, _)| container.source_data_identifier.as_str())
            .unwrap_or_default();
        item.dedupe_key = format!("{sdi}:{index}");
        Ok(item)
    }
}
