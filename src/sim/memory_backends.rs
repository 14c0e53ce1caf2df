use std::sync::Arc;

use super::{BackendFactory, SimError};
use crate::state::{MemoryState, OpCounts, StateBackend};

/// A [`BackendFactory`] of [`MemoryState`]s on the system clock: each run
/// gets a fresh state, and every worker a clone of it.
///
/// ```
/// use composite_metrics::sim::{BackendFactory, MemoryBackends};
/// assert_eq!(MemoryBackends.name(), "memory");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBackends;

impl BackendFactory for MemoryBackends {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn open(&self, _run: &str, workers: usize) -> Result<Vec<Arc<dyn StateBackend>>, SimError> {
        let state = MemoryState::new();
        Ok((0..workers)
            .map(|_| Arc::new(state.clone()) as Arc<dyn StateBackend>)
            .collect())
    }

    /// Clones share one counter: the first value's counts are the total.
    fn op_totals(&self, backends: &[Arc<dyn StateBackend>]) -> OpCounts {
        backends.first().map(|b| b.op_counts()).unwrap_or_default()
    }
}
