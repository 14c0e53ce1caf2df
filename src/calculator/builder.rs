use std::fmt;
use std::sync::Arc;

use super::{MetricsCalculator, TimeSource};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::schedule::{CompositeScheduler, CompositeScope, Never, SchedulerEnv};
use crate::score::ScoreWeights;
use crate::sink::{MemorySink, MetricSink};
use crate::state::{MemoryState, StateBackend};

/// Configures a [`MetricsCalculator`]. Everything has a default: a fresh
/// [`MemoryState`] on the calculator's clock, a [`MemorySink`], the
/// [`SystemClock`], the [`Never`] scheduler, the default [`ScoreWeights`],
/// [`CompositeScope::Global`], [`TimeSource::Processing`], and lenient input
/// (not [`strict`](Self::strict)).
///
/// # One clock is enough
///
/// - `.clock(c)` alone: the default [`MemoryState`] runs on `c` too.
/// - `.state(MemoryState::with_clock(c))` alone: the calculator adopts the
///   state's clock `c` (any backend that reports one through
///   [`StateBackend::clock`]).
/// - both: each keeps its own: the calculator (schedulers, metric
///   timestamps) reads the builder's clock, the state its own (coordination,
///   idle expiry). Give the same clock, or just one of the two.
///
/// ```
/// use composite_metrics::{EventBased, MetricsCalculator};
/// let calc = MetricsCalculator::builder().scheduler(EventBased::every(100)).build()?;
/// assert_eq!(calc.scheduler_name(), "event-based");
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct Builder<S> {
    scheduler: S,
    state: Option<Arc<dyn StateBackend>>,
    sink: Option<Arc<dyn MetricSink>>,
    clock: Option<Arc<dyn Clock>>,
    weights: ScoreWeights,
    scope: CompositeScope,
    time: TimeSource,
    strict: bool,
}

impl<S: fmt::Debug> fmt::Debug for Builder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("scheduler", &self.scheduler)
            .field("state", &self.state)
            .field("sink", &self.sink)
            .field("clock", &self.clock)
            .field("weights", &self.weights)
            .field("scope", &self.scope)
            .field("time", &self.time)
            .field("strict", &self.strict)
            .finish()
    }
}

impl MetricsCalculator {
    /// Starts configuring a calculator (defaults: see [`Builder`]).
    pub fn builder() -> Builder<Never> {
        Builder::new()
    }
}

impl Builder<Never> {
    fn new() -> Self {
        Self {
            scheduler: Never,
            state: None,
            sink: None,
            clock: None,
            weights: ScoreWeights::default(),
            scope: CompositeScope::Global,
            time: TimeSource::Processing,
            strict: false,
        }
    }
}

impl<S: CompositeScheduler> Builder<S> {
    /// The scheduling strategy.
    pub fn scheduler<T: CompositeScheduler>(self, scheduler: T) -> Builder<T> {
        Builder {
            scheduler,
            state: self.state,
            sink: self.sink,
            clock: self.clock,
            weights: self.weights,
            scope: self.scope,
            time: self.time,
            strict: self.strict,
        }
    }

    /// The state backend; share one (a clone of a [`MemoryState`], a Redis
    /// state) between the calculators of all workers.
    pub fn state(mut self, state: impl StateBackend + 'static) -> Self {
        self.state = Some(Arc::new(state));
        self
    }

    /// Where metrics are recorded.
    pub fn sink(mut self, sink: impl MetricSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// The clock every time-dependent rule reads.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The score weights (validated by [`build`](Self::build)).
    pub fn weights(mut self, weights: ScoreWeights) -> Self {
        self.weights = weights;
        self
    }

    /// Global (default) or per-session composite.
    pub fn scope(mut self, scope: CompositeScope) -> Self {
        self.scope = scope;
        self
    }

    /// Processing time (the default) or event time: see [`TimeSource`].
    pub fn time(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// Strict input: reject, with a typed [`EventError`](crate::EventError),
    /// an unknown `event_type` of a JSON line
    /// ([`UnknownEventType`](crate::EventError::UnknownEventType)) and an
    /// event carrying a field its type does not use
    /// ([`IgnoredField`](crate::EventError::IgnoredField), see
    /// [`Event::ignored_fields`](crate::Event::ignored_fields)). Off by
    /// default: both are then recorded (as `other`, without the field) and
    /// counted in [`Stats`](crate::Stats).
    ///
    /// ```
    /// use composite_metrics::{Error, EventError, MetricsCalculator};
    ///
    /// let line = r#"{"event_type":"code_edit","session_id":"s1",
    ///                "timestamp":"2024-05-01T12:00:00Z","payload":{"accepted":true}}"#;
    /// let mut lenient = MetricsCalculator::builder().build()?;
    /// lenient.process_json(line)?;
    /// assert_eq!((lenient.stats().events, lenient.stats().unknown_types), (1, 1));
    ///
    /// let mut strict = MetricsCalculator::builder().strict(true).build()?;
    /// let err = strict.process_json(line).unwrap_err();
    /// assert!(matches!(err, Error::Event(EventError::UnknownEventType { ref value }) if value == "code_edit"));
    /// assert_eq!(strict.stats().rejected, 1);
    /// # Ok::<(), composite_metrics::Error>(())
    /// ```
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Builds the calculator, validating the weights and attaching the
    /// scheduler (which starts a background thread for [`Background`](crate::Background)).
    pub fn build(self) -> Result<MetricsCalculator<S>, Error> {
        let weights = self.weights.validated()?;
        let clock = self
            .clock
            .or_else(|| self.state.as_ref().and_then(|s| s.clock()))
            .unwrap_or_else(|| Arc::new(SystemClock));
        let state = match self.state {
            Some(s) => s,
            None => Arc::new(MemoryState::with_clock(Arc::clone(&clock))),
        };
        let sink = self
            .sink
            .unwrap_or_else(|| Arc::new(MemorySink::new()) as Arc<dyn MetricSink>);
        let env = SchedulerEnv::new(state, sink, clock, weights, self.scope);
        let mut scheduler = self.scheduler;
        scheduler.attach(&env)?;
        Ok(MetricsCalculator::from_parts(
            env,
            scheduler,
            self.time,
            self.strict,
        ))
    }
}
