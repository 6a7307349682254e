//! Rows → Slack Block Kit messages (context fields, summary, buttons, limits).

use super::{AlertContext, RowMapper};
use crate::delivery::DeliveryItem;
use crate::error::{Error, Result};
use crate::splunk::results::Row;

pub struct SlackMapper {
    _context: AlertContext,
}

impl SlackMapper {
    pub fn new(context: AlertContext) -> Result<SlackMapper> {
        Ok(SlackMapper { _context: context })
    }
}

impl RowMapper for SlackMapper {
    fn push(&mut self, _row: &Row) -> Result<Vec<DeliveryItem>> {
        Err(Error::Internal("the Slack mapping is not built yet".into()))
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        Ok(Vec::new())
    }
}
