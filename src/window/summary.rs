/// Latency statistics over a window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// 50th percentile (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Arithmetic mean.
    pub avg: f64,
    /// How many values the window held.
    pub count: usize,
}

impl LatencySummary {
    /// Summarises values in arrival order (oldest first). `None` when empty.
    ///
    /// Sorts a copy; [`LatencyWindow`](super::LatencyWindow) keeps its values
    /// sorted and does not need this.
    pub fn from_values(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self::from_sorted(&sorted, values.iter().sum())
    }

    pub(crate) fn from_sorted(sorted: &[f64], sum: f64) -> Option<Self> {
        if sorted.is_empty() {
            return None;
        }
        Some(Self {
            p50: nearest_rank(sorted, 50),
            p95: nearest_rank(sorted, 95),
            p99: nearest_rank(sorted, 99),
            avg: sum / sorted.len() as f64,
            count: sorted.len(),
        })
    }
}

/// The `p`-th percentile of ascending `sorted` by the nearest-rank method:
/// the value at rank `ceil(p / 100 * n)` (1-based), so always one of the values.
/// Returns NaN for an empty slice; `p` above 100 reads as 100.
///
/// ```
/// use composite_metrics::window::nearest_rank;
/// let v = [15.0, 20.0, 35.0, 40.0, 50.0];
/// assert_eq!(nearest_rank(&v, 30), 20.0);
/// assert_eq!(nearest_rank(&v, 40), 20.0);
/// assert_eq!(nearest_rank(&v, 50), 35.0);
/// assert_eq!(nearest_rank(&v, 100), 50.0);
/// ```
pub fn nearest_rank(sorted: &[f64], p: u32) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let p = p.min(100) as usize;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted[rank - 1]
}
