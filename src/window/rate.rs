use super::RATE_SECONDS;

const SLOTS: usize = RATE_SECONDS as usize;

/// Counts events per whole second over the last [`RATE_SECONDS`] seconds.
///
/// An event stamped earlier than the newest second seen (a slow thread, a
/// clock step back) counts in the newest second, so the window never loses it.
///
/// ```
/// use composite_metrics::window::RateWindow;
/// let mut w = RateWindow::new();
/// for s in 0..120 {
///     w.record(1_000 + s);
/// }
/// assert_eq!(w.count(1_119), 60);
/// assert_eq!(w.per_second(1_119), 1.0);
/// ```
#[derive(Debug, Clone)]
pub struct RateWindow {
    slots: [(u64, u64); SLOTS],
    newest: u64,
}

impl Default for RateWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl RateWindow {
    /// An empty window.
    pub const fn new() -> Self {
        Self {
            slots: [(0, 0); SLOTS],
            newest: 0,
        }
    }

    /// Records one event at second `sec` (since the UNIX epoch).
    pub fn record(&mut self, sec: u64) {
        let sec = sec.max(self.newest);
        self.newest = sec;
        let slot = &mut self.slots[(sec % RATE_SECONDS) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
    }

    /// Events in the seconds `now - 59 ..= now`, where `now` is at least the
    /// newest second recorded (events stamped earlier were counted there).
    pub fn count(&self, now: u64) -> u64 {
        let now = now.max(self.newest);
        let oldest = now.saturating_sub(RATE_SECONDS - 1);
        self.slots
            .iter()
            .filter(|(s, _)| *s >= oldest && *s <= now)
            .map(|(_, c)| c)
            .sum()
    }

    /// Events per second over the last [`RATE_SECONDS`] seconds.
    pub fn per_second(&self, now: u64) -> f64 {
        self.count(now) as f64 / RATE_SECONDS as f64
    }
}
