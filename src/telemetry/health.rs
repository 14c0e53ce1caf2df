//! Every health emission of the crate, in one place. Each function is a
//! small `#[inline]` call that compiles to nothing without the `metrics`
//! feature; calculators and schedulers call them with one line per site.

use std::time::Duration;

#[cfg(feature = "metrics")]
use std::collections::HashMap;
#[cfg(feature = "metrics")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "metrics")]
use std::sync::Arc;
#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::clock::Clock;
use crate::error::{BackendError, SinkError};
use crate::event::Event;
use crate::schedule::Decision;
use crate::state::LockOutcome;

#[cfg(feature = "metrics")]
use super::names;

/// When the latest composite calculation in this process started, by the
/// calculating calculator's clock, in nanoseconds since the UNIX epoch; zero
/// before the first. Written once per calculation, read once per event.
#[cfg(feature = "metrics")]
static LAST_CALCULATION_NANOS: AtomicU64 = AtomicU64::new(0);

/// One calculator's health handles, registered with the recorder that is
/// current when the calculator is built (so the event path formats no name
/// and looks nothing up). Empty without the `metrics` feature.
///
/// The event path writes no shared memory per event: skip decisions are
/// counted locally and, with the staleness gauge, published at most once per
/// second of the calculator's clock, every 256 skips, at every decision to
/// compute (or error), and when the calculator is dropped. Named tool runs
/// and their outcomes are counted locally per tool too, and added to the
/// per-tool counters when the staleness gauge is published (at most once per
/// second of the clock, or with 256 skips pending) and when the calculator is
/// dropped.
pub(crate) struct CalculatorTelemetry {
    #[cfg(feature = "metrics")]
    compute: metrics::Counter,
    #[cfg(feature = "metrics")]
    skip: metrics::Counter,
    #[cfg(feature = "metrics")]
    error: metrics::Counter,
    /// Calculations decided on the event path, and by `compute_now`.
    #[cfg(feature = "metrics")]
    calculated: metrics::Counter,
    #[cfg(feature = "metrics")]
    calculated_now: metrics::Counter,
    #[cfg(feature = "metrics")]
    since_calculation: metrics::Gauge,
    /// Skip decisions not yet added to `skip`.
    #[cfg(feature = "metrics")]
    pending_skips: u64,
    /// The clock reading from which the next event publishes.
    #[cfg(feature = "metrics")]
    next_publish: Duration,
    /// Per tool: its counters and the runs not yet added to them.
    #[cfg(feature = "metrics")]
    tools: HashMap<Arc<str>, ToolTally, foldhash::fast::RandomState>,
    /// Whether some tool has runs not yet added to its counters.
    #[cfg(feature = "metrics")]
    tools_pending: bool,
}

/// One tool's run counters and what this calculator has not yet added to
/// them: runs, successes, failures.
#[cfg(feature = "metrics")]
struct ToolTally {
    runs: metrics::Counter,
    successes: metrics::Counter,
    failures: metrics::Counter,
    pending: [u64; 3],
}

/// Distinct tools one calculator counts (as `MetricsSink`'s default limit);
/// runs of further tools are not counted.
#[cfg(feature = "metrics")]
const MAX_COUNTED_TOOLS: usize = 10_000;

impl std::fmt::Debug for CalculatorTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalculatorTelemetry")
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "metrics")]
const PUBLISH_EVERY_SKIPS: u64 = 256;

impl CalculatorTelemetry {
    /// Registers the decision counters of `strategy` and the staleness gauge.
    #[inline]
    pub(crate) fn new(strategy: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let decision = |outcome: &'static str| metrics::counter!(names::DECISIONS, "strategy" => strategy, "outcome" => outcome);
            Self {
                compute: decision("compute"),
                skip: decision("skip"),
                error: decision("error"),
                calculated: metrics::counter!(names::CALCULATIONS, "strategy" => strategy, "trigger" => "event"),
                calculated_now: metrics::counter!(names::CALCULATIONS, "strategy" => strategy, "trigger" => "compute_now"),
                since_calculation: metrics::gauge!(names::SECONDS_SINCE_CALCULATION),
                pending_skips: 0,
                next_publish: Duration::ZERO,
                tools: HashMap::default(),
                tools_pending: false,
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = strategy;
            Self {}
        }
    }

    /// Counts one scheduling decision by its outcome.
    #[inline]
    pub(crate) fn decision<E>(&mut self, decision: &Result<Decision, E>) {
        #[cfg(feature = "metrics")]
        match decision {
            Ok(Decision::Skip) => self.pending_skips += 1,
            Ok(_) => {
                self.publish_skips();
                self.compute.increment(1);
            }
            Err(_) => {
                self.publish_skips();
                self.error.increment(1);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = decision;
    }

    /// Counts an applied event that is a named tool run (see
    /// [`Event::named_tool`]) for its tool: a run, and a success or failure
    /// when its outcome is explicit. Local until the next publication: one
    /// hash look-up of the tool name, no shared memory, no allocation once
    /// the tool was seen.
    #[inline]
    pub(crate) fn tool_run(&mut self, event: &Event) {
        #[cfg(feature = "metrics")]
        if let Some(tool) = event.named_tool() {
            let outcome = event.payload.success;
            if let Some(tally) = self.tools.get_mut(&**tool) {
                tally.count(outcome);
                self.tools_pending = true;
                return;
            }
            self.first_run_of(tool, outcome);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = event;
    }

    /// A tool's first run: registers its counters (with the recorder current
    /// now), unless this calculator already counts as many tools as it may.
    #[cfg(feature = "metrics")]
    #[cold]
    fn first_run_of(&mut self, tool: &Arc<str>, outcome: Option<bool>) {
        if self.tools.len() >= MAX_COUNTED_TOOLS {
            return;
        }
        let counter = |name: &'static str| metrics::counter!(name, "tool" => Arc::clone(tool));
        let mut tally = ToolTally {
            runs: counter(names::TOOL_RUNS),
            successes: counter(names::TOOL_SUCCESSES),
            failures: counter(names::TOOL_FAILURES),
            pending: [0; 3],
        };
        tally.count(outcome);
        self.tools.insert(Arc::clone(tool), tally);
        self.tools_pending = true;
    }

    /// Counts one calculation decided on the event path (cold: only when
    /// one ran).
    #[inline]
    pub(crate) fn calculated(&mut self) {
        #[cfg(feature = "metrics")]
        self.calculated.increment(1);
    }

    /// Counts one calculation by `compute_now`.
    #[inline]
    pub(crate) fn calculated_now(&mut self) {
        #[cfg(feature = "metrics")]
        self.calculated_now.increment(1);
    }

    /// A skip decided on the scheduler's fast path.
    #[inline]
    pub(crate) fn skipped(&mut self) {
        #[cfg(feature = "metrics")]
        {
            self.pending_skips += 1;
        }
    }

    /// Called for every event processed at `now`: publishes the pending
    /// skips and the seconds since the latest calculation in this process
    /// when a second has passed since the last publication (or 256 skips
    /// are pending).
    #[inline]
    pub(crate) fn event(&mut self, now: Duration) {
        #[cfg(feature = "metrics")]
        if now >= self.next_publish || self.pending_skips >= PUBLISH_EVERY_SKIPS {
            self.publish(now);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = now;
    }

    #[cfg(feature = "metrics")]
    #[cold]
    fn publish(&mut self, now: Duration) {
        self.publish_skips();
        self.publish_tools();
        self.next_publish = now + Duration::from_secs(1);
        let last = LAST_CALCULATION_NANOS.load(Ordering::Relaxed);
        if last != 0 {
            let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
            self.since_calculation
                .set(now.saturating_sub(last) as f64 / 1e9);
        }
    }

    #[cfg(feature = "metrics")]
    fn publish_skips(&mut self) {
        if self.pending_skips > 0 {
            self.skip.increment(std::mem::take(&mut self.pending_skips));
        }
    }
}

#[cfg(feature = "metrics")]
impl CalculatorTelemetry {
    /// Adds the runs counted since the last publication to the counters.
    fn publish_tools(&mut self) {
        if !std::mem::take(&mut self.tools_pending) {
            return;
        }
        for tally in self.tools.values_mut() {
            let [runs, successes, failures] = std::mem::take(&mut tally.pending);
            if runs > 0 {
                tally.runs.increment(runs);
            }
            if successes > 0 {
                tally.successes.increment(successes);
            }
            if failures > 0 {
                tally.failures.increment(failures);
            }
        }
    }
}

#[cfg(feature = "metrics")]
impl ToolTally {
    fn count(&mut self, outcome: Option<bool>) {
        self.pending[0] += 1;
        match outcome {
            Some(true) => self.pending[1] += 1,
            Some(false) => self.pending[2] += 1,
            None => {}
        }
    }
}

#[cfg(feature = "metrics")]
impl Drop for CalculatorTelemetry {
    fn drop(&mut self) {
        self.publish_skips();
        self.publish_tools();
    }
}

/// The calculations a scheduler's timer runs, counted under its strategy
/// with trigger `timer`; registered when the scheduler is attached (with
/// the recorder current while the calculator is built). Empty without the
/// `metrics` feature.
#[derive(Clone)]
pub(crate) struct TimerCalculations {
    #[cfg(feature = "metrics")]
    counter: metrics::Counter,
}

impl std::fmt::Debug for TimerCalculations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerCalculations").finish_non_exhaustive()
    }
}

impl TimerCalculations {
    /// Registers the counter of `strategy`'s timer.
    pub(crate) fn new(strategy: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            Self {
                counter: metrics::counter!(names::CALCULATIONS, "strategy" => strategy, "trigger" => "timer"),
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = strategy;
            Self {}
        }
    }

    /// Counts `n` calculations run.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        #[cfg(feature = "metrics")]
        if n > 0 {
            self.counter.increment(n);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = n;
    }
}

/// Times one composite calculation: created when it starts (which also marks
/// the process's latest calculation), recorded to the calculation-time
/// histogram when dropped.
pub(crate) struct CalculationTimer {
    #[cfg(feature = "metrics")]
    start: Instant,
}

impl CalculationTimer {
    /// Starts timing a calculation that starts now by `clock`.
    #[inline]
    pub(crate) fn start(clock: &dyn Clock) -> Self {
        #[cfg(feature = "metrics")]
        {
            let now = u64::try_from(clock.now().as_nanos()).unwrap_or(u64::MAX);
            LAST_CALCULATION_NANOS.fetch_max(now.max(1), Ordering::Relaxed);
            Self {
                start: Instant::now(),
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = clock;
            Self {}
        }
    }
}

impl CalculationTimer {
    /// Ends the timing of a page of `n` calculations read at once (a
    /// per-session run): `n` observations of the page's time divided evenly
    /// (none for an empty page).
    #[inline]
    pub(crate) fn finish_page(self, n: usize) {
        #[cfg(feature = "metrics")]
        {
            let this = std::mem::ManuallyDrop::new(self);
            if n > 0 {
                let each = this.start.elapsed().as_secs_f64() / n as f64;
                let histogram = metrics::histogram!(names::CALCULATION_SECONDS);
                for _ in 0..n {
                    histogram.record(each);
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self, n);
    }
}

#[cfg(feature = "metrics")]
impl Drop for CalculationTimer {
    fn drop(&mut self) {
        metrics::histogram!(names::CALCULATION_SECONDS).record(self.start.elapsed().as_secs_f64());
    }
}

/// Counts one lock attempt of `strategy`: `acquired` or refused.
#[inline]
pub(crate) fn lock_attempt(strategy: &'static str, outcome: &LockOutcome) {
    #[cfg(feature = "metrics")]
    {
        // `{ .. }` so the match survives `Acquired` gaining fields (fencing).
        #[allow(clippy::unneeded_struct_pattern)]
        let result = if matches!(outcome, LockOutcome::Acquired { .. }) {
            "acquired"
        } else {
            "refused"
        };
        metrics::counter!(names::LOCKS, "strategy" => strategy, "result" => result).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (strategy, outcome);
}

/// Counts one release of `strategy` that found its lease already expired.
#[inline]
pub(crate) fn lease_lost(strategy: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(names::LOCKS, "strategy" => strategy, "result" => "lost").increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = strategy;
}

/// Counts one backend failure by its kind.
#[inline]
pub(crate) fn backend_error(error: &BackendError) {
    #[cfg(feature = "metrics")]
    {
        let kind = match error {
            BackendError::Timeout { .. } => "timeout",
            BackendError::Connection { .. } => "connection",
            BackendError::CapacityExceeded { .. } => "capacity",
            BackendError::InvalidConfig(_) => "config",
            #[allow(unreachable_patterns)]
            _ => "other",
        };
        metrics::counter!(names::BACKEND_ERRORS, "kind" => kind).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = error;
}

/// Counts one batch a sink failed to record, by the sink's name.
#[inline]
pub(crate) fn sink_error(error: &SinkError) {
    #[cfg(feature = "metrics")]
    metrics::counter!(names::SINK_ERRORS, "sink" => error.sink).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = error;
}
