use super::RATE_SECONDS;

const SLOTS: usize = RATE_SECONDS as usize;

/// Counts events per whole second over the last [`RATE_SECONDS`] seconds.
///
/// The window ends at the newest second recorded. An event stamped earlier
/// (out of order under event time, a slow thread) counts in its own second
/// while that second is still inside the window; one stamped 60 or more
/// seconds before the newest (a clock that stepped back, an event later
/// than the window) counts in the newest second, so the window never loses
/// an event.
///
/// ```
/// use composite_metrics::window::RateWindow;
/// let mut w = RateWindow::new();
/// w.record(120); // 12:02:00
/// w.record(90); //  12:01:30, in the window ending at 12:02:00
/// assert_eq!(w.count(120), 2);
/// w.record(150); // 12:02:30: the window is 12:01:31 ..= 12:02:30
/// assert_eq!(w.count(150), 2);
/// w.record(60); //  60 s or more behind: counted at 12:02:30
/// assert_eq!(w.count(150), 3);
/// ```
/// ```
/// use composite_metrics::window::RateWindow;
/// let mut w = RateWindow::new();
/// for s in 0..120 {
///     w.record(1_000 + s);
/// }
/// assert_eq!(w.count(1_119), 60);
/// assert_eq!(w.per_second(1_119), 1.0);
/// ```
///
/// Recording and counting at the newest second cost O(1): the window keeps a
/// running total of its last [`RATE_SECONDS`] slots and clears a slot as time
/// moves past it.
#[derive(Debug, Clone)]
pub struct RateWindow {
    slots: [(u64, u64); SLOTS],
    newest: u64,
    /// Events in the seconds `newest - 59 ..= newest`.
    total: u64,
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
            total: 0,
        }
    }

    /// A window known only by its newest second and its total (the events
    /// in the 60 seconds ending there): what a remote backend tells of its
    /// own window. Recording into it at seconds up to `newest` counts as in
    /// the window it stands for; its figures are exact until it moves on.
    #[cfg(feature = "redis")]
    pub(crate) const fn resume(newest: u64, total: u64) -> Self {
        Self {
            slots: [(0, 0); SLOTS],
            newest,
            total,
        }
    }

    /// Records one event at second `sec` (since the UNIX epoch): in its own
    /// second, or in the newest one when `sec` is 60 or more seconds behind it.
    pub fn record(&mut self, sec: u64) {
        let sec = if sec > self.newest {
            self.advance(sec);
            sec
        } else if self.newest - sec >= RATE_SECONDS {
            self.newest
        } else {
            sec
        };
        // `sec % RATE_SECONDS` is below SLOTS: the index is in bounds. The
        // slot holds `sec` or a second at least 60 older, out of the window.
        let slot = &mut self.slots[(sec % RATE_SECONDS) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
        self.total += 1;
    }

    /// The newest second recorded (0 before any).
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Moves the newest second to `sec` (later than it), dropping from the
    /// total the slots that leave the window: those of the seconds
    /// `newest + 1 ..= sec`, which hold seconds at least 60 older (at most
    /// [`RATE_SECONDS`] of them, however far time jumps).
    fn advance(&mut self, sec: u64) {
        let oldest_kept = self.newest.saturating_sub(RATE_SECONDS - 1);
        let from = (self.newest + 1).max(sec.saturating_sub(RATE_SECONDS - 1));
        if sec - self.newest >= RATE_SECONDS {
            self.total = 0;
        } else {
            for s in from..=sec {
                let slot = &mut self.slots[(s % RATE_SECONDS) as usize];
                if slot.0 >= oldest_kept && slot.0 <= self.newest {
                    self.total -= slot.1;
                }
                *slot = (s, 0);
            }
        }
        self.newest = sec;
    }

    /// Events in the seconds `now - 59 ..= now`, where `now` is at least the
    /// newest second recorded (a caller whose clock lags still sees its own event).
    pub fn count(&self, now: u64) -> u64 {
        if now <= self.newest {
            return self.total;
        }
        let oldest = now.saturating_sub(RATE_SECONDS - 1);
        self.slots
            .iter()
            .filter(|(s, _)| *s >= oldest && *s <= self.newest)
            .map(|(_, c)| c)
            .sum()
    }

    /// Events per second over the last [`RATE_SECONDS`] seconds.
    pub fn per_second(&self, now: u64) -> f64 {
        self.count(now) as f64 / RATE_SECONDS as f64
    }
}
