use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::schedule::EventBased;

/// The parameters of [`EventBased`] in a configuration file
/// (`strategy = "event-based"`).
///
/// # Default
///
/// `every = 100`, as [`EventBased::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EventBasedSpec {
    /// Compute on every `every`-th event per calculator.
    #[serde(deserialize_with = "super::field::every")]
    pub every: u64,
}

impl Default for EventBasedSpec {
    fn default() -> Self {
        Self {
            every: EventBased::default().n(),
        }
    }
}

impl EventBasedSpec {
    /// The scheduler; zero is rejected.
    pub fn build(&self) -> Result<EventBased, ConfigError> {
        if self.every == 0 {
            return Err(ConfigError::Zero { field: "every" });
        }
        Ok(EventBased::every(self.every))
    }
}
