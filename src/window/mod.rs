//! Exact, bounded windows: the last [`WINDOW`] latencies, the last
//! [`WINDOW`] accept/reject decisions, and a 60-second event counter.
//!
//! These are the building blocks of [`MemoryState`](crate::state::MemoryState)
//! and the reference every backend is tested against.

mod decision_window;
mod latency_summary;
mod latency_window;
mod rate_window;

pub use self::decision_window::DecisionWindow;
pub use self::latency_summary::{nearest_rank, LatencySummary, MAX_EXACT_MS};
pub use self::latency_window::LatencyWindow;
pub use self::rate_window::RateWindow;

/// How many values a window keeps: the last 100, duplicates included.
pub const WINDOW: usize = 100;

/// How many seconds [`RateWindow`] looks back.
pub const RATE_SECONDS: u64 = 60;
