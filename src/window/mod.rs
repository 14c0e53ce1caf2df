//! Exact, bounded windows: the last [`WINDOW`] latencies, the last
//! [`WINDOW`] accept/reject decisions, and a 60-second event counter.
//!
//! These are the building blocks of [`MemoryState`](crate::state::MemoryState)
//! and the reference every backend is tested against.

mod decisions;
mod latency;
mod rate;
mod summary;

pub use self::decisions::DecisionWindow;
pub use self::latency::LatencyWindow;
pub use self::rate::RateWindow;
pub use self::summary::{nearest_rank, LatencySummary, MAX_EXACT_MS};

/// How many values a window keeps: the last 100, duplicates included.
pub const WINDOW: usize = 100;

/// How many seconds [`RateWindow`] looks back.
pub const RATE_SECONDS: u64 = 60;
