use super::latency_summary::{order_key, to_units};
use super::{LatencySummary, WINDOW};

/// The last [`WINDOW`] values in arrival order, also kept sorted so that
/// percentiles cost one insertion, not a sort. Duplicates are kept.
///
/// The mean comes from a running sum kept exactly in fixed point (whole
/// nanoseconds, see [`LatencySummary::avg`]), so a summary costs O(1) and
/// the same values give the same mean bit for bit whatever their order or
/// history, on every backend.
///
/// ```
/// use composite_metrics::window::LatencyWindow;
/// let mut w = LatencyWindow::new();
/// for _ in 0..150 {
///     w.push(7.0);
/// }
/// let s = w.summary().unwrap();
/// assert_eq!((s.count, s.p50, s.avg), (100, 7.0, 7.0));
/// ```
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    ring: [f64; WINDOW],
    /// The held values ascending, as [`order_key`]s: integers that sort as
    /// `f64::total_cmp` sorts the values, so a search compares integers.
    sorted: [i64; WINDOW],
    head: usize,
    len: usize,
    /// Sum of the held values in whole nanoseconds, exact.
    units: u128,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyWindow {
    /// An empty window.
    pub const fn new() -> Self {
        Self {
            ring: [0.0; WINDOW],
            sorted: [0; WINDOW],
            head: 0,
            len: 0,
            units: 0,
        }
    }

    /// How many values it holds (at most [`WINDOW`]).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`, evicting the oldest when full. Values must be finite
    /// (the calculator validates them); ordering uses `f64::total_cmp`.
    pub fn push(&mut self, value: f64) {
        let key = order_key(value);
        if self.len == WINDOW {
            // Evict the oldest and insert `value` with one shift of the
            // values between their two places. Equal values under
            // `total_cmp` are the same bits, so which copy goes is moot.
            // Both searches run over the whole array, of a constant length.
            let at = self.sorted.partition_point(|k| *k < key);
            let old = self.ring[self.head];
            let old_key = order_key(old);
            let from = self.sorted.partition_point(|k| *k < old_key);
            if from < at {
                // `at > from >= 0`, so `at - 1` is in bounds.
                self.sorted.copy_within(from + 1..at, from);
                self.sorted[at - 1] = key;
            } else {
                // `old` is held, so `from < len`.
                self.sorted.copy_within(at..from, at + 1);
                self.sorted[at] = key;
            }
            self.units -= to_units(old);
        } else {
            // `len < WINDOW`: room for one more.
            let at = self.sorted[..self.len].partition_point(|k| *k < key);
            self.sorted.copy_within(at..self.len, at + 1);
            self.sorted[at] = key;
            self.len += 1;
        }
        self.units += to_units(value);
        self.ring[self.head] = value;
        self.head = if self.head + 1 == WINDOW {
            0
        } else {
            self.head + 1
        };
    }

    /// Values oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let start = (self.head + WINDOW - self.len) % WINDOW;
        (0..self.len).map(move |i| self.ring[(start + i) % WINDOW])
    }

    /// Percentiles and mean, or `None` when empty.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.len == WINDOW {
            // Full (the steady state): the ranks are constants.
            return Some(LatencySummary::from_full_keys(&self.sorted, self.units));
        }
        LatencySummary::from_sorted_keys(self.sorted.get(..self.len)?, self.units)
    }
}
