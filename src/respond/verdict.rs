//! What became of a click (PRODUCT §9 "Audit": the receipt's `outcome`): one [`Verdict`],
//! written to the click's record in `stackflow_interactions` and to its receipt by its text
//! form (`Display`), read back from the KV store with `FromStr` — never compared as text.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The effect happened (or was queued in the delivery layer's spool).
    Done,
    /// Refused (who may act), or a containment request denied.
    Denied,
    /// Not done; the clicker was told why.
    #[default]
    Failed,
    /// The click, or its effect, was seen before: not acted on again.
    Duplicate,
    /// A containment request waiting for a second person's decision.
    AwaitingApproval,
    /// A triage search ran out of its `timeout_s` and was cancelled (PRODUCT §16).
    TimedOut,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Done,
        Verdict::Denied,
        Verdict::Failed,
        Verdict::Duplicate,
        Verdict::AwaitingApproval,
        Verdict::TimedOut,
    ];

    /// The receipt's `outcome` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Done => "done",
            Verdict::Denied => "denied",
            Verdict::Failed => "failed",
            Verdict::Duplicate => "duplicate",
            Verdict::AwaitingApproval => "awaiting_approval",
            Verdict::TimedOut => "timeout",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(text: &str) -> Result<Verdict, String> {
        Verdict::ALL
            .into_iter()
            .find(|verdict| verdict.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not an interaction outcome"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for verdict in Verdict::ALL {
            assert_eq!(verdict.to_string().parse::<Verdict>(), Ok(verdict));
        }
        assert_eq!(Verdict::AwaitingApproval.to_string(), "awaiting_approval");
        assert!("".parse::<Verdict>().is_err() && "Done".parse::<Verdict>().is_err());
    }
}
