use std::fmt;
use std::sync::Arc;

use super::SimError;
use crate::state::{OpCounts, StateBackend};

/// Opens the backends of a [`RealTimeRunner`](super::RealTimeRunner) run:
/// one value per worker, all sharing one fresh state, as separate processes
/// would each hold their own connection.
///
/// ```
/// use composite_metrics::sim::{BackendFactory, MemoryBackends};
///
/// let backends = MemoryBackends.open("run-1", 3)?;
/// assert_eq!(backends.len(), 3);
/// assert_eq!(MemoryBackends.op_totals(&backends).records, 0);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
pub trait BackendFactory: Send + Sync + fmt::Debug {
    /// A short name for reports (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str;

    /// Opens `workers` backend values over one fresh, empty state for the run
    /// labelled `run` (a remote backend uses a new namespace per run).
    fn open(&self, run: &str, workers: usize) -> Result<Vec<Arc<dyn StateBackend>>, SimError>;

    /// The operations the run's backends served in all. The default sums
    /// every value's counts, right when each counts only its own operations
    /// (one connection each); a backend whose values share one counter
    /// overrides it.
    fn op_totals(&self, backends: &[Arc<dyn StateBackend>]) -> OpCounts {
        backends
            .iter()
            .map(|b| b.op_counts())
            .fold(OpCounts::default(), |a, b| a + b)
    }
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn BackendFactory> = None;
