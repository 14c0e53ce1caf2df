use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Wake;

/// A source of time for everything time-dependent in this crate.
///
/// Time is a [`Duration`] since the UNIX epoch. Windows, session expiry,
/// scheduling decisions and the background scheduler's ticks all read the
/// calculator's clock, so swapping [`SystemClock`](super::SystemClock) for a
/// [`ManualClock`](super::ManualClock) makes every rule testable without sleeping.
///
/// # Implementing a clock
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composite_metrics::clock::{Clock, Wake};
///
/// /// A clock frozen at one instant.
/// #[derive(Debug)]
/// struct Frozen(Duration);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Duration {
///         self.0
///     }
///     fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>) {
///         // Time never moves: only a wake-up can end the wait.
///         wake.wait_for(Duration::from_millis(10));
///         let _ = deadline;
///     }
/// }
///
/// assert_eq!(Frozen(Duration::from_secs(5)).now(), Duration::from_secs(5));
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, as a duration since the UNIX epoch.
    fn now(&self) -> Duration;

    /// Blocks the calling thread until `now() >= deadline` or `wake` is
    /// signalled, whichever comes first. Returning early is allowed: callers
    /// re-check their condition in a loop.
    fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>);
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn Clock> = None;

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>) {
        (**self).wait_until(deadline, wake)
    }
}
