use super::{LatencySummary, WINDOW};

/// The last [`WINDOW`] values in arrival order, also kept sorted so that
/// percentiles cost one insertion, not a sort. Duplicates are kept.
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
    sorted: [f64; WINDOW],
    head: usize,
    len: usize,
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
            sorted: [0.0; WINDOW],
            head: 0,
            len: 0,
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
        if self.len == WINDOW {
            let old = self.ring[self.head];
            let at = self.sorted[..self.len].partition_point(|v| v.total_cmp(&old).is_lt());
            self.sorted.copy_within(at + 1..self.len, at);
            self.len -= 1;
        }
        let at = self.sorted[..self.len].partition_point(|v| v.total_cmp(&value).is_lt());
        self.sorted.copy_within(at..self.len, at + 1);
        self.sorted[at] = value;
        self.len += 1;
        self.ring[self.head] = value;
        self.head = (self.head + 1) % WINDOW;
    }

    /// Values oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let start = (self.head + WINDOW - self.len) % WINDOW;
        (0..self.len).map(move |i| self.ring[(start + i) % WINDOW])
    }

    /// Percentiles and mean, or `None` when empty.
    pub fn summary(&self) -> Option<LatencySummary> {
        // Oldest first, as `iter` yields them, so every backend that sums in
        // arrival order gets the same bits; two plain slices, no modulo.
        let start = (self.head + WINDOW - self.len) % WINDOW;
        let sum = if start + self.len <= WINDOW {
            self.ring[start..start + self.len].iter().sum()
        } else {
            let tail: f64 = self.ring[start..].iter().sum();
            self.ring[..self.head].iter().fold(tail, |acc, v| acc + v)
        };
        LatencySummary::from_sorted(&self.sorted[..self.len], sum)
    }
}
