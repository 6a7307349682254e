//! Rows → SOAR containers and CEF artifacts (grouping, SDIs, severity, field mapping).

use super::{AlertContext, RowMapper};
use crate::delivery::DeliveryItem;
use crate::error::{Error, Result};
use crate::splunk::results::Row;

pub struct SoarMapper {
    _context: AlertContext,
}

impl SoarMapper {
    pub fn new(context: AlertContext) -> Result<SoarMapper> {
        Ok(SoarMapper { _context: context })
    }
}

impl RowMapper for SoarMapper {
    fn push(&mut self, _row: &Row) -> Result<Vec<DeliveryItem>> {
        Err(Error::Internal("the SOAR mapping is not built yet".into()))
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        Ok(Vec::new())
    }
}
