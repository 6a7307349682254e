//! The StackFlow client: item → requests → outcome.

use crate::delivery::{DeliveryItem, Outcome, RejectClass, Target};
use crate::error::Result;
use crate::settings::Settings;
use crate::splunk::rest::Splunkd;

pub struct StackflowTarget;

impl StackflowTarget {
    pub fn open(
        _account: &str,
        _settings: &Settings,
        _splunkd: &Splunkd,
    ) -> Result<StackflowTarget> {
        Ok(StackflowTarget)
    }
}

impl Target for StackflowTarget {
    fn attempt(&mut self, _item: &DeliveryItem) -> Outcome {
        Outcome::rejected(RejectClass::Configuration, "the StackFlow client is not built yet")
    }
}
