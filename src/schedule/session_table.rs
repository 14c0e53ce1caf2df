use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a session's scheduling state outlives its last event.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// Per-session scheduler state, bounded by evicting sessions idle for
/// [`SESSION_IDLE`]. Lookups of known sessions allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct SessionTable<T> {
    entries: HashMap<Arc<str>, (T, Duration)>,
    next_sweep: Duration,
}

impl<T: Default> SessionTable<T> {
    pub(crate) fn get(&mut self, session: &Arc<str>, now: Duration) -> &mut T {
        if now >= self.next_sweep {
            self.entries
                .retain(|_, (_, seen)| now.saturating_sub(*seen) < SESSION_IDLE);
            self.next_sweep = now + SESSION_IDLE / 8;
        }
        // Cloning the Arc costs a count increment, never an allocation.
        let entry = self
            .entries
            .entry(Arc::clone(session))
            .or_insert_with(|| (T::default(), now));
        entry.1 = now;
        &mut entry.0
    }
}
