//! Rows → StackFlow inbound-webhook incidents (priority, notable mapping, dedupe key).

use super::{AlertContext, RowMapper};
use crate::delivery::DeliveryItem;
use crate::error::{Error, Result};
use crate::splunk::results::Row;

pub struct IncidentMapper {
    _context: AlertContext,
}

impl IncidentMapper {
    pub fn new(context: AlertContext) -> Result<IncidentMapper> {
        Ok(IncidentMapper { _context: context })
    }
}

impl RowMapper for IncidentMapper {
    fn push(&mut self, _row: &Row) -> Result<Vec<DeliveryItem>> {
        Err(Error::Internal("the StackFlow mapping is not built yet".into()))
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        Ok(Vec::new())
    }
}
