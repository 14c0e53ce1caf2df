use std::time::Duration;

/// The answer to [`StateBackend::try_lock`](super::StateBackend::try_lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller holds the lock, and the "last computed" marker now reads
    /// the backend's current time.
    Acquired {
        /// The fencing generation of this acquisition: larger than that of
        /// every earlier acquisition of the same scope, so a sink can refuse
        /// a composite written by a holder that was overtaken (see
        /// [`Metric::generation`](crate::Metric::generation)).
        generation: u64,
    },
    /// Another holder's lease is running.
    Held {
        /// How long ago, by the backend's time, the last calculation started.
        since_last: Option<Duration>,
    },
    /// A calculation started less than `min_interval` ago.
    TooSoon {
        /// How long ago, by the backend's time, it started.
        since_last: Duration,
    },
    /// Only from [`try_lock_if_dirty`](super::StateBackend::try_lock_if_dirty):
    /// the last composite read of the scope saw every event recorded in it,
    /// so a calculation now would read nothing new.
    Clean {
        /// How long ago, by the backend's time, the last calculation started.
        since_last: Option<Duration>,
    },
}

impl LockOutcome {
    /// How long ago the last calculation started, when the backend said.
    pub fn since_last(&self) -> Option<Duration> {
        match *self {
            LockOutcome::Acquired { .. } => Some(Duration::ZERO),
            LockOutcome::Held { since_last } => since_last,
            LockOutcome::TooSoon { since_last } => Some(since_last),
            LockOutcome::Clean { since_last } => since_last,
        }
    }

    /// The fencing generation, when the lock was acquired.
    pub fn generation(&self) -> Option<u64> {
        match *self {
            LockOutcome::Acquired { generation } => Some(generation),
            _ => None,
        }
    }

    /// Whether the caller now holds the lock.
    pub fn is_acquired(&self) -> bool {
        matches!(self, LockOutcome::Acquired { .. })
    }
}

/// The next fencing generation after `previous`, at backend time `now`: the
/// larger of `previous + 1` and `now` in microseconds, so generations keep
/// growing even when the stored one was lost (an expired session, a restart
/// without persistence) as long as the backend's clock does not step back.
pub(crate) fn next_generation(previous: u64, now: Duration) -> u64 {
    let now_us = u64::try_from(now.as_micros()).unwrap_or(u64::MAX);
    previous.saturating_add(1).max(now_us)
}
