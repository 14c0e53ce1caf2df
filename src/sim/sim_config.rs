use std::time::Duration;

use super::SimError;

/// Settings shared by every run of a [`Simulator`](super::Simulator).
///
/// # Default
///
/// 3 workers, seed 42, a simulated composite duration of 5 ms (used to count
/// overlapping calculations), 4 live sessions per worker, virtual time
/// starting at 2024-01-01T00:00:00Z, a timing cap of 1 ms.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::SimConfig;
///
/// let config = SimConfig::default().with_workers(8).with_seed(7);
/// assert_eq!(config.workers(), 8);
/// assert!(config.with_workers(0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    workers: usize,
    seed: u64,
    calc_duration: Duration,
    sessions_per_worker: usize,
    start: Duration,
    timing_cap: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            workers: 3,
            seed: 42,
            calc_duration: Duration::from_millis(5),
            sessions_per_worker: 4,
            start: Duration::from_secs(1_704_067_200),
            timing_cap: Duration::from_millis(1),
        }
    }
}

impl SimConfig {
    /// Number of workers, each with its own calculator and scheduler.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The seed of arrivals and event contents.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long one composite calculation is taken to last: a calculation
    /// starting while another is still running counts as overlapping.
    pub fn with_calc_duration(mut self, d: Duration) -> Self {
        self.calc_duration = d;
        self
    }

    /// Live sessions per worker.
    pub fn with_sessions_per_worker(mut self, n: usize) -> Self {
        self.sessions_per_worker = n;
        self
    }

    /// Virtual time at the start of a run (a duration since the UNIX epoch;
    /// the default, 2024-01-01T00:00:00Z, is a multiple of 10 s).
    pub fn with_start(mut self, start: Duration) -> Self {
        self.start = start;
        self
    }

    /// A `process` call slower than this is taken to be the thread being
    /// preempted by another process: it is left out of the event-path cost
    /// and counted in [`RunReport::process_outliers`](super::RunReport::process_outliers).
    /// [`Duration::MAX`] keeps every call. Only the virtual-time
    /// [`Simulator`](super::Simulator) applies it.
    pub fn with_timing_cap(mut self, cap: Duration) -> Self {
        self.timing_cap = cap;
        self
    }

    /// The timing cap.
    pub fn timing_cap(&self) -> Duration {
        self.timing_cap
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The simulated duration of one calculation.
    pub fn calc_duration(&self) -> Duration {
        self.calc_duration
    }

    /// Live sessions per worker.
    pub fn sessions_per_worker(&self) -> usize {
        self.sessions_per_worker
    }

    /// Virtual start time.
    pub fn start(&self) -> Duration {
        self.start
    }

    /// Rejects zero workers or sessions.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.workers == 0 {
            return Err(SimError::Setting {
                field: "workers",
                reason: "must be at least 1".into(),
            });
        }
        if self.sessions_per_worker == 0 {
            return Err(SimError::Setting {
                field: "sessions_per_worker",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
