use std::time::Duration;

use super::LagStats;
use crate::state::OpCounts;

/// What one run of one strategy under one load profile measured.
///
/// Counts are exact; per-second figures divide by the simulated duration.
/// `process_time` is real CPU time spent inside
/// [`MetricsCalculator::process_into`](crate::MetricsCalculator::process_into)
/// and is the only figure that varies between runs with the same seed.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{LoadProfile, SimConfig, Simulator, Strategy};
///
/// let sim = Simulator::new(SimConfig::default())?;
/// let profile = LoadProfile::poisson(100.0, Duration::from_secs(120));
/// let report = sim.run(&Strategy::defaults()[4], &profile)?; // background, 30 s
/// assert_eq!(report.calcs, 4); // at 30, 60, 90 and 120 s, one worker each time
/// assert_eq!(report.event_path_calcs, 0);
/// assert!(report.lag.max.unwrap() <= Duration::from_secs(30));
/// // Per tick: 3 lock attempts, 1 release, 1 composite read.
/// assert_eq!(report.ops.composite_ops(), 4 * 5);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// The strategy with its parameters (e.g. `event-based(every 100)`).
    pub strategy: String,
    /// The strategy's short name (e.g. `event-based`).
    pub strategy_name: &'static str,
    /// The load profile's name.
    pub profile: String,
    /// `"virtual"` (memory backend, [`ManualClock`](crate::ManualClock)) or `"real-time"`.
    pub mode: &'static str,
    /// Workers.
    pub workers: usize,
    /// The seed.
    pub seed: u64,
    /// Simulated duration (in real-time mode, real duration divided by the time scale).
    pub duration: Duration,
    /// The profile's mean rate, events per second.
    pub offered_rate: f64,
    /// Events recorded.
    pub events: u64,
    /// Events whose processing returned an error.
    pub event_errors: u64,
    /// Composite calculations, all workers.
    pub calcs: u64,
    /// Of which on the event path (inside `process`).
    pub event_path_calcs: u64,
    /// Of which off the event path (background ticks).
    pub background_calcs: u64,
    /// Calculations that reflected no event recorded since the previous one.
    pub idle_calcs: u64,
    /// Calculations that started while another was still running (each taken
    /// to last [`SimConfig::calc_duration`](super::SimConfig::calc_duration)).
    pub overlapping_calcs: u64,
    /// The smallest time between two calculation starts, if there were two.
    pub min_gap: Option<Duration>,
    /// Backend operations, counted by the backend.
    pub ops: OpCounts,
    /// Reflect lag.
    pub lag: LagStats,
    /// Real time spent in `process`, all workers, leaving out the calls
    /// slower than [`SimConfig::timing_cap`](super::SimConfig::timing_cap)
    /// (taken to be the thread being preempted).
    pub process_time: Duration,
    /// `process` calls left out of `process_time`.
    pub process_outliers: u64,
    /// Real time the run took.
    pub wall_time: Duration,
    /// When each calculation started, as an offset from the run's start.
    pub calc_starts: Vec<Duration>,
}

impl RunReport {
    fn per_sec(&self, n: u64) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    /// Composite calculations per second, all workers.
    pub fn calcs_per_sec(&self) -> f64 {
        self.per_sec(self.calcs)
    }

    /// Backend operations per second spent on the composite: input reads,
    /// lock attempts, releases and marker reads.
    pub fn composite_ops_per_sec(&self) -> f64 {
        self.per_sec(self.ops.composite_ops())
    }

    /// Composite input reads per second.
    pub fn composite_reads_per_sec(&self) -> f64 {
        self.per_sec(self.ops.composite_reads)
    }

    /// Coordination operations (lock, release, marker) per second.
    pub fn coordination_ops_per_sec(&self) -> f64 {
        self.per_sec(self.ops.coordination_ops())
    }

    /// Events per second actually generated.
    pub fn events_per_sec(&self) -> f64 {
        self.per_sec(self.events)
    }

    /// Mean real time of one `process` call, in nanoseconds (outliers left out).
    pub fn process_ns_per_event(&self) -> Option<f64> {
        let timed = (self.events + self.event_errors).saturating_sub(self.process_outliers);
        (timed > 0).then(|| self.process_time.as_nanos() as f64 / timed as f64)
    }

    /// Event-path cost relative to `baseline` (normally the `Never` run of the
    /// same profile): mean `process` time divided by the baseline's.
    pub fn cpu_ratio(&self, baseline: &RunReport) -> Option<f64> {
        match (self.process_ns_per_event(), baseline.process_ns_per_event()) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    /// The most calculations that started within any window of length `window`
    /// (half-open, so two starts exactly `window` apart are in different windows).
    ///
    /// ```
    /// use std::time::Duration;
    /// use composite_metrics::sim::RunReport;
    ///
    /// let s = Duration::from_secs;
    /// let report = RunReport { calc_starts: vec![s(0), s(30), s(31), s(90)], ..Default::default() };
    /// assert_eq!(report.max_calcs_within(s(30)), 2);
    /// assert_eq!(report.max_calcs_within(s(1)), 1);
    /// ```
    pub fn max_calcs_within(&self, window: Duration) -> usize {
        let starts = &self.calc_starts;
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..starts.len() {
            while starts[hi].saturating_sub(starts[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }
}
