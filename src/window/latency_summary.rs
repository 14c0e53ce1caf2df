use super::WINDOW;

/// Latency statistics over a window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// 50th percentile (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Arithmetic mean in fixed point: each value is taken in whole
    /// nanoseconds (`ms * 1e6 + 0.5`, truncated; values above
    /// [`MAX_EXACT_MS`] count as that), those are summed exactly in a
    /// 128-bit integer, and the mean is the sum converted to `f64`, divided
    /// by `count * 1e6`. So it is the same bit for bit for the same values in
    /// any order, on every backend, and finite for every finite input.
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
        Self::from_sorted(&sorted, values.iter().map(|v| to_units(*v)).sum())
    }

    /// From ascending values and the exact sum of their [`to_units`].
    pub(crate) fn from_sorted(sorted: &[f64], units: u128) -> Option<Self> {
        if sorted.is_empty() {
            return None;
        }
        Some(Self {
            p50: nearest_rank(sorted, 50),
            p95: nearest_rank(sorted, 95),
            p99: nearest_rank(sorted, 99),
            avg: mean_ms(units, sorted.len()),
            count: sorted.len(),
        })
    }
}

impl LatencySummary {
    /// From ascending [`order_key`]s and the exact sum of the values'
    /// [`to_units`].
    pub(crate) fn from_sorted_keys(keys: &[i64], units: u128) -> Option<Self> {
        let at = |p: u32| {
            let n = keys.len();
            let rank = (p as usize * n).div_ceil(100).clamp(1, n);
            keys.get(rank - 1).map_or(f64::NAN, |k| from_order_key(*k))
        };
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            p50: at(50),
            p95: at(95),
            p99: at(99),
            avg: mean_ms(units, keys.len()),
            count: keys.len(),
        })
    }
}

impl LatencySummary {
    /// [`from_sorted_keys`](Self::from_sorted_keys) of exactly [`WINDOW`]
    /// keys: the same nearest ranks (50, 95 and 99 of 100), as constants.
    #[inline]
    pub(crate) fn from_full_keys(keys: &[i64; WINDOW], units: u128) -> Self {
        /// The 0-based index of the `p`-th percentile's nearest rank.
        const fn index(p: usize) -> usize {
            (p * WINDOW).div_ceil(100) - 1
        }
        const P50: usize = index(50);
        const P95: usize = index(95);
        const P99: usize = index(99);
        // Constant indexes below WINDOW into an array of WINDOW keys: in
        // bounds (an out-of-bounds constant index would not compile).
        Self {
            p50: from_order_key(keys[P50]),
            p95: from_order_key(keys[P95]),
            p99: from_order_key(keys[P99]),
            avg: mean_ms(units, WINDOW),
            count: WINDOW,
        }
    }
}

/// An integer that orders as [`f64::total_cmp`] orders `v` (the same
/// transformation `total_cmp` makes before comparing).
pub(crate) fn order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// The value of an [`order_key`] (the transformation is its own inverse).
fn from_order_key(key: i64) -> f64 {
    f64::from_bits((key ^ ((((key >> 63) as u64) >> 1) as i64)) as u64)
}

/// Nanoseconds per millisecond: the fixed-point unit of the latency sum.
const UNITS_PER_MS: f64 = 1e6;

/// The largest value, in milliseconds, that the mean takes at face value
/// (2^121 ns, about 2.7e30 ms); larger values count as this much, so that a
/// sum of [`WINDOW`](super::WINDOW) values never overflows.
pub const MAX_EXACT_MS: f64 = MAX_UNITS as f64 / UNITS_PER_MS;

/// 2^121 ns: 100 of them stay below 2^128.
const MAX_UNITS: u128 = 1 << 121;

/// `ms` (finite, not negative) in whole nanoseconds (`ms * 1e6 + 0.5`,
/// truncated), at most [`MAX_UNITS`]. Negative and NaN count as zero.
pub(crate) fn to_units(ms: f64) -> u128 {
    let ns = ms * UNITS_PER_MS;
    if (0.0..9.0e18).contains(&ns) {
        // Common case: fits an i64, whose conversion is one instruction.
        (ns + 0.5) as i64 as u128
    } else {
        // `as` saturates: negative and NaN become 0.
        ((ns + 0.5) as u128).min(MAX_UNITS)
    }
}

/// Out of line, so that the common case above stays one instruction (inlined,
/// the two cases merge into the slower general conversion).
#[inline(never)]
fn wide_to_f64(units: u128) -> f64 {
    units as f64
}

/// `units / count` nanoseconds, in milliseconds.
fn mean_ms(units: u128, count: usize) -> f64 {
    let sum = match i64::try_from(units) {
        // Common case: one conversion instruction.
        Ok(small) => small as f64,
        Err(_) => wide_to_f64(units),
    };
    sum / (count as f64 * UNITS_PER_MS)
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
