use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Clock, Wake};

/// The operating system's wall clock.
///
/// # Example
///
/// ```
/// use composite_metrics::clock::{Clock, SystemClock};
///
/// let now = SystemClock.now();
/// assert!(now.as_secs() > 1_600_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock set before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }

    fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>) {
        let now = self.now();
        if deadline > now {
            wake.wait_for(deadline - now);
        }
    }
}
