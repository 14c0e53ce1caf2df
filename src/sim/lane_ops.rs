use std::time::Duration;

use super::{RunReport, SimError};
use crate::event::Event;

/// One strategy's simulation, driven event by event, so that several
/// strategies can run in lockstep over the same events.
pub(crate) trait LaneOps {
    /// Processes `event`, which arrived at offset `at` for worker `w`.
    fn event(&mut self, at: Duration, w: usize, event: &Event);

    /// Runs the remaining background ticks up to `end` and reports.
    fn finish(self: Box<Self>, end: Duration) -> Result<RunReport, SimError>;
}
