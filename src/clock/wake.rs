use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A wake-up signal for a thread waiting in [`Clock::wait_until`](super::Clock::wait_until).
///
/// A `Wake` is raised with [`notify`](Wake::notify) (for example by a shutdown
/// request, or by a [`ManualClock`](super::ManualClock) that was advanced) and
/// consumed by the waiter.
#[derive(Debug, Default)]
pub struct Wake {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    /// A new, lowered signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the signal and wakes every waiter.
    pub fn notify(&self) {
        *self.raised.lock() = true;
        self.cond.notify_all();
    }

    /// Waits at most `timeout` for the signal, then lowers it.
    /// Returns `true` if the signal was raised.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        let mut raised = self.raised.lock();
        if !*raised {
            let _ = self.cond.wait_for(&mut raised, timeout);
        }
        std::mem::replace(&mut *raised, false)
    }
}
