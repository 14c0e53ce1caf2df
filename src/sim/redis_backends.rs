use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{BackendFactory, SimError};
use crate::state::{RedisConfig, RedisState, StateBackend};

/// A [`BackendFactory`] of [`RedisState`]s (feature `redis`): one connection
/// per worker, all in a fresh namespace per run (`compare:RUN:NANOS`).
///
/// ```no_run
/// use composite_metrics::sim::{BackendFactory, RedisBackends};
///
/// let backends = RedisBackends::new("redis://127.0.0.1/").open("run-1", 3)?;
/// assert_eq!(backends.len(), 3);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisBackends {
    url: String,
}

impl RedisBackends {
    /// Connections to the server at `url` (e.g. `redis://127.0.0.1/`).
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
        }
    }
}

impl BackendFactory for RedisBackends {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn open(&self, run: &str, workers: usize) -> Result<Vec<Arc<dyn StateBackend>>, SimError> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let namespace = format!("compare:{run}:{stamp}");
        (0..workers)
            .map(|_| {
                let config = RedisConfig::default().with_namespace(&namespace);
                let state = RedisState::connect(&self.url, config)?;
                Ok(Arc::new(state) as Arc<dyn StateBackend>)
            })
            .collect()
    }
}
