//! The SOAR client: item → requests → outcome.

use crate::delivery::{DeliveryItem, Outcome, RejectClass, Target};
use crate::error::Result;
use crate::settings::Settings;
use crate::splunk::rest::Splunkd;

pub struct SoarTarget;

impl SoarTarget {
    pub fn open(_account: &str, _settings: &Settings, _splunkd: &Splunkd) -> Result<SoarTarget> {
        Ok(SoarTarget)
    }
}

impl Target for SoarTarget {
    fn attempt(&mut self, _item: &DeliveryItem) -> Outcome {
        Outcome::rejected(RejectClass::Configuration, "the SOAR client is not built yet")
    }
}
