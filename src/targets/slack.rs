//! The Slack client: item → requests → outcome.

use crate::delivery::{DeliveryItem, Outcome, RejectClass, Target};
use crate::error::Result;
use crate::settings::Settings;
use crate::splunk::rest::Splunkd;

pub struct SlackTarget;

impl SlackTarget {
    pub fn open(_account: &str, _settings: &Settings, _splunkd: &Splunkd) -> Result<SlackTarget> {
        Ok(SlackTarget)
    }
}

impl Target for SlackTarget {
    fn attempt(&mut self, _item: &DeliveryItem) -> Outcome {
        Outcome::rejected(RejectClass::Configuration, "the Slack client is not built yet")
    }
}
