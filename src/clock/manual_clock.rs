use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::{Clock, Wake};

/// A clock that moves only when told to.
///
/// Clones share one time: advance any clone and every holder sees it. Threads
/// blocked in [`Clock::wait_until`] on a `ManualClock` are woken by
/// [`advance`](ManualClock::advance) and [`set`](ManualClock::set), so the
/// background scheduler runs on virtual time without real sleeping.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(Duration::from_secs(1_000));
/// let view = clock.clone();
/// clock.advance(Duration::from_millis(1_500));
/// assert_eq!(view.now(), Duration::from_millis(1_001_500));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    nanos: AtomicU64,
    waiters: Mutex<Vec<Weak<Wake>>>,
}

impl Default for ManualClock {
    /// A clock at 2024-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(Duration::from_secs(1_704_067_200))
    }
}

impl ManualClock {
    /// A clock showing `start` (a duration since the UNIX epoch).
    pub fn new(start: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                nanos: AtomicU64::new(to_nanos(start)),
                waiters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves time forward by `by` (saturating at the largest time it can
    /// show) and wakes waiting threads.
    pub fn advance(&self, by: Duration) {
        let by = to_nanos(by);
        // `fetch_add` would wrap around and move time backwards.
        let _ = self
            .inner
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
        self.wake_waiters();
    }

    /// Sets the time to `to` (which may be earlier: wall clocks jump) and wakes waiting threads.
    pub fn set(&self, to: Duration) {
        self.inner.nanos.store(to_nanos(to), Ordering::SeqCst);
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        let mut waiters = self.inner.waiters.lock();
        waiters.retain(|w| match w.upgrade() {
            Some(wake) => {
                wake.notify();
                true
            }
            None => false,
        });
    }

    /// Registers `wake` to be notified on every change of time, for as long as it lives.
    fn subscribe(&self, wake: &Arc<Wake>) {
        let mut waiters = self.inner.waiters.lock();
        if !waiters.iter().any(|w| w.as_ptr() == Arc::as_ptr(wake)) {
            waiters.push(Arc::downgrade(wake));
        }
    }
}

fn to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.nanos.load(Ordering::SeqCst))
    }

    fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>) {
        self.subscribe(wake);
        if self.now() >= deadline {
            return;
        }
        // Advancing the clock notifies subscribed wakes; the bounded real wait
        // only guards against a wake that was never subscribed.
        wake.wait_for(Duration::from_millis(50));
    }
}
