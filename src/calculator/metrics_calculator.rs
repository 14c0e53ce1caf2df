use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use foldhash::HashSet;

use super::emit::push_metrics;
use super::{Stats, TimeSource};
use crate::clock::Clock;
use crate::error::{BackendError, Error, EventError};
use crate::event::{Event, Interner};
use crate::metric::Metric;
use crate::schedule::{
    CompositeScheduler, CompositeScope, Decision, EventContext, SchedulerEnv, Ticket,
};
use crate::state::{Observation, Scope, StateBackend};

/// Derives metrics from events and computes the composite when its
/// scheduler says so.
///
/// One calculator serves one worker (`process` takes `&mut self`, so the
/// scheduler's per-event state stays local); workers share a backend by
/// giving each calculator a clone of the same state.
///
/// # Example
///
/// ```
/// use composite_metrics::{Event, EventBased, MetricsCalculator};
///
/// let mut calc = MetricsCalculator::builder().scheduler(EventBased::every(2)).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(120.0).with_success(true))?;
/// calc.process(&Event::new(composite_metrics::EventType::FileEdit, "s1").with_accepted(true))?;
/// let metrics = calc.process(&Event::tool_use("s1", "grep").with_success(false))?;
/// // Third event: no composite (every 2nd event). Fourth event: composite.
/// assert!(metrics.iter().all(|m| m.name != "productivity_score"));
/// let metrics = calc.process(&Event::tool_use("s1", "grep").with_success(true))?;
/// let score = metrics.iter().find(|m| m.name == "productivity_score").unwrap();
/// // S = 66.7 %, A = 100 %: 50 + 0.25*66.7 - 0.15*33.3 + 0.10*100 = 71.67
/// assert!((score.value - 71.666).abs() < 0.01);
/// assert_eq!(calc.stats().events, 4);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct MetricsCalculator<S = Box<dyn CompositeScheduler>> {
    env: SchedulerEnv,
    scheduler: S,
    stats: Stats,
    observations: Vec<Observation>,
    telemetry: crate::telemetry::CalculatorTelemetry,
    /// Session ids and tool names parsed by `process_json`, shared.
    names: Interner,
    time: TimeSource,
    /// Event time: the newest event time applied.
    watermark: Option<Duration>,
    strict: bool,
    /// Unknown event types already logged (at most [`LOGGED_UNKNOWN_TYPES`]).
    unknown_logged: HashSet<Box<str>>,
}

/// How many distinct unknown event types a calculator logs (once each).
const LOGGED_UNKNOWN_TYPES: usize = 64;
/// How much of an unknown event type an error or log line quotes, in bytes.
const QUOTED_TYPE_BYTES: usize = 64;

/// The first `max` bytes of `text` at most, cut at a character boundary.
fn quote(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

impl<S: fmt::Debug> fmt::Debug for MetricsCalculator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsCalculator")
            .field("env", &self.env)
            .field("scheduler", &self.scheduler)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: CompositeScheduler> MetricsCalculator<S> {
    pub(crate) fn from_parts(
        env: SchedulerEnv,
        scheduler: S,
        time: TimeSource,
        strict: bool,
    ) -> Self {
        Self {
            time,
            watermark: None,
            strict,
            unknown_logged: HashSet::default(),
            telemetry: crate::telemetry::CalculatorTelemetry::new(scheduler.name()),
            env,
            scheduler,
            stats: Stats::default(),
            observations: Vec::new(),
            names: Interner::default(),
        }
    }

    /// Records one event and returns its metrics, plus the composite when the
    /// scheduler fires. The metrics are also recorded to the sink.
    ///
    /// An invalid event is rejected with [`Error::Event`] and changes nothing
    /// (counted in [`Stats::rejected`]); so is, with event time, an event
    /// later than the allowed lateness ([`EventError::Late`], see
    /// [`TimeSource`]), and, in [strict mode](crate::Builder::strict), an
    /// event carrying a field its type does not use
    /// ([`EventError::IgnoredField`]). A backend failure returns
    /// [`Error::Backend`] and the event is not recorded.
    ///
    /// The backend records the event as [`Event::recorded`] gives it (a pre
    /// hook as throughput only, a `shell_execution` run as a run of `shell`,
    /// ...). A failure of the composite, of coordination or of the sink
    /// does not fail the event: it is counted in [`stats`](Self::stats).
    ///
    /// An event whose [`event_id`](Event::event_id) was already applied
    /// within the dedup horizon changes nothing and returns an **empty**
    /// `Vec` (counted in [`Stats::duplicates`]); use
    /// [`process_into`](Self::process_into) to tell it apart from an event
    /// that produced no metrics.
    pub fn process(&mut self, event: &Event) -> Result<Vec<Metric>, Error> {
        let mut out = Vec::with_capacity(8);
        self.process_into(event, &mut out)?;
        Ok(out)
    }

    /// Like [`process`](Self::process), appending to a buffer the caller
    /// reuses, and saying whether the event was applied or was a duplicate
    /// of one already applied ([`Delivery::Duplicate`]: nothing appended,
    /// the scheduler not consulted).
    pub fn process_into(
        &mut self,
        event: &Event,
        out: &mut Vec<Metric>,
    ) -> Result<Delivery, Error> {
        if let Err(e) = self.admit(event) {
            self.stats.rejected += 1;
            return Err(e.into());
        }
        let now = self.env.clock().now();
        let at = match self.time {
            TimeSource::Processing => now,
            TimeSource::EventTime { .. } => match self.event_time(event, self.watermark, now) {
                Ok(at) => at,
                Err(e) => return Err(self.refuse(e, 1).into()),
            },
        };
        // What the backend records: the event itself for the classic types
        // (no copy), its role otherwise (pre hook, shell run, ...).
        let owned;
        let recorded: &Event = if event.records_as_itself() {
            event
        } else {
            owned = event.recorded_owned();
            &owned
        };
        let result = self.env.backend().record(recorded, at);
        // Borrowed in place: the observation is not copied out of the result.
        let observation = match result {
            Ok(ref o) => o,
            Err(e) => return Err(self.backend_failure(e, 1)),
        };
        if observation.duplicate {
            self.stats.duplicates += 1;
            return Ok(Delivery::Duplicate);
        }
        self.stats.events += 1;
        self.count_ignored(event);
        self.advance_watermark(at);
        self.telemetry.event(now);
        let start = out.len();
        push_metrics(recorded, observation, at, out);
        if let Some(ticket) = self.decide(recorded, now) {
            self.compute(recorded, now, ticket, out);
        }
        self.record(&out[start..]);
        Ok(Delivery::Applied)
    }

    /// Validation and, in strict mode, the ignored-field rule.
    #[inline]
    fn admit(&self, event: &Event) -> Result<(), EventError> {
        event.validate()?;
        if self.strict && event.ignored_count() > 0 {
            if let Some(field) = event.ignored_fields().next() {
                return Err(EventError::IgnoredField {
                    field,
                    event_type: event.event_type.as_str(),
                });
            }
        }
        Ok(())
    }

    #[inline]
    fn count_ignored(&mut self, event: &Event) {
        self.stats.ignored_fields += event.ignored_count();
    }

    /// The time `event` is recorded at: `now` (processing time) or its
    /// timestamp (event time), checked against `watermark`.
    fn event_time(
        &self,
        event: &Event,
        watermark: Option<Duration>,
        now: Duration,
    ) -> Result<Duration, EventError> {
        let TimeSource::EventTime { allowed_lateness } = self.time else {
            return Ok(now);
        };
        let t =
            event
                .timestamp
                .duration_since(UNIX_EPOCH)
                .map_err(|_| EventError::InvalidField {
                    field: "timestamp",
                    reason: "before 1970: event time needs a time after the UNIX epoch".to_owned(),
                })?;
        if let Some(w) = watermark {
            let behind = w.saturating_sub(t);
            if behind > allowed_lateness {
                return Err(EventError::Late {
                    behind,
                    allowed: allowed_lateness,
                });
            }
        }
        Ok(t)
    }

    #[inline]
    fn advance_watermark(&mut self, at: Duration) {
        if matches!(self.time, TimeSource::EventTime { .. }) {
            self.watermark = Some(self.watermark.map_or(at, |w| w.max(at)));
        }
    }

    /// Counts a refusal of `events` events for `e`.
    fn refuse(&mut self, e: EventError, events: usize) -> EventError {
        self.stats.rejected += events as u64;
        if matches!(e, EventError::Late { .. }) {
            self.stats.late_events += 1;
        }
        e
    }

    /// Counts (and logs the first time) an unknown event type; in strict
    /// mode refuses it.
    fn unknown_type(&mut self, name: &str) -> Result<(), EventError> {
        self.stats.unknown_types += 1;
        let quoted = quote(name, QUOTED_TYPE_BYTES);
        if self.unknown_logged.len() < LOGGED_UNKNOWN_TYPES && !self.unknown_logged.contains(quoted)
        {
            self.unknown_logged.insert(Box::from(quoted));
            log::warn!(
                "unknown event_type `{quoted}` ({}); first occurrence, not logged again",
                if self.strict {
                    "rejected: strict mode"
                } else {
                    "counted as other"
                }
            );
            if self.unknown_logged.len() == LOGGED_UNKNOWN_TYPES {
                log::warn!(
                    "{LOGGED_UNKNOWN_TYPES} distinct unknown event types logged; \
                     further ones are only counted in stats().unknown_types"
                );
            }
        }
        if self.strict {
            self.stats.rejected += 1;
            return Err(EventError::UnknownEventType {
                value: quoted.to_owned(),
            });
        }
        Ok(())
    }

    /// Parses one JSON line and processes it; a parse error counts as a
    /// rejected event.
    ///
    /// An `event_type` that is not one of [`EventType::KNOWN`](crate::EventType::KNOWN)
    /// is counted in [`Stats::unknown_types`] and logged (`log::warn!`) the
    /// first time each one is seen (up to 64 distinct types per calculator);
    /// it is then recorded as `other`, or, in [strict mode](crate::Builder::strict),
    /// rejected with [`EventError::UnknownEventType`].
    ///
    /// The calculator keeps a shared copy of the session ids, tool names and
    /// hook types it has parsed (a few thousand at most), so in steady state
    /// the only allocation per line is the returned `Vec`.
    pub fn process_json(&mut self, line: &str) -> Result<Vec<Metric>, Error> {
        let names = &mut self.names;
        let mut unknown = None;
        match Event::from_json_interned(line, &mut |text: &str| names.intern(text), &mut unknown) {
            Ok(event) => {
                if let Some(name) = &unknown {
                    self.unknown_type(name)?;
                }
                self.process(&event)
            }
            Err(e) => {
                self.stats.rejected += 1;
                Err(e.into())
            }
        }
    }

    /// Like [`process_json`](Self::process_json), from bytes: input that is
    /// not UTF-8 is rejected with [`EventError::InvalidUtf8`] (naming the
    /// byte offset of the first bad byte) and counted in
    /// [`Stats::rejected`].
    ///
    /// ```
    /// use composite_metrics::{Error, EventError, MetricsCalculator};
    ///
    /// let mut calc = MetricsCalculator::builder().build()?;
    /// let err = calc.process_json_bytes(b"{\"event_type\":\"tool\xff\"}").unwrap_err();
    /// assert!(matches!(err, Error::Event(EventError::InvalidUtf8 { offset: 19 })));
    /// assert_eq!(calc.stats().rejected, 1);
    /// # Ok::<(), composite_metrics::Error>(())
    /// ```
    pub fn process_json_bytes(&mut self, line: &[u8]) -> Result<Vec<Metric>, Error> {
        match crate::event::utf8(line) {
            Ok(text) => self.process_json(text),
            Err(e) => {
                self.stats.rejected += 1;
                Err(e.into())
            }
        }
    }

    /// Records many events in one backend operation, all or none, and returns
    /// their metrics in order.
    ///
    /// The scheduler sees every applied event; if it fires once or more
    /// within the batch, the composite is computed once, after the whole
    /// batch (every calculation would read the same state). Events whose
    /// [`event_id`](Event::event_id) was already applied (before, or earlier
    /// in the same batch) are skipped one by one: no metrics, not shown to
    /// the scheduler, counted in [`Stats::duplicates`].
    pub fn process_batch(&mut self, events: &[Event]) -> Result<Vec<Metric>, Error> {
        let mut out = Vec::with_capacity(events.len() * 6);
        self.batch(events, &mut out, None)?;
        Ok(out)
    }

    /// Like [`process_batch`](Self::process_batch), appending the metrics to
    /// a buffer the caller reuses and telling, event by event, what happened:
    /// `deliveries` is cleared, then gets one `(Delivery, end)` per event, in
    /// order, where `end` is the length of `out` after that event's metrics
    /// (so event `i`'s metrics are `out[end(i-1)..end(i)]`, starting from
    /// `out`'s length at the call). A composite computed for the batch comes
    /// after the last event's metrics: `out[end(last)..]`.
    ///
    /// ```
    /// use composite_metrics::{Delivery, Event, MetricsCalculator};
    ///
    /// let mut calc = MetricsCalculator::builder().build()?;
    /// let a = Event::tool_use("s1", "bash").with_event_id("a");
    /// let (mut out, mut deliveries) = (Vec::new(), Vec::new());
    /// calc.process_batch_into(&[a.clone(), a], &mut out, &mut deliveries)?;
    /// assert_eq!(deliveries[0].0, Delivery::Applied);
    /// assert_eq!(deliveries[1], (Delivery::Duplicate, deliveries[0].1));
    /// # Ok::<(), composite_metrics::Error>(())
    /// ```
    pub fn process_batch_into(
        &mut self,
        events: &[Event],
        out: &mut Vec<Metric>,
        deliveries: &mut Vec<(Delivery, usize)>,
    ) -> Result<(), Error> {
        deliveries.clear();
        self.batch(events, out, Some(deliveries))
    }

    fn batch(
        &mut self,
        events: &[Event],
        out: &mut Vec<Metric>,
        mut deliveries: Option<&mut Vec<(Delivery, usize)>>,
    ) -> Result<(), Error> {
        let now = self.env.clock().now();
        let mut watermark = self.watermark;
        let mut at = None::<Duration>;
        for (index, event) in events.iter().enumerate() {
            let checked = self
                .admit(event)
                .and_then(|()| self.event_time(event, watermark, now));
            match checked {
                Ok(t) => {
                    if matches!(self.time, TimeSource::EventTime { .. }) {
                        watermark = Some(watermark.map_or(t, |w| w.max(t)));
                    }
                    at = Some(at.map_or(t, |a| a.max(t)));
                }
                Err(e) => {
                    let source = self.refuse(e, events.len());
                    return Err(Error::BatchEvent { index, source });
                }
            }
        }
        // Event time: the newest event time of the batch (or the watermark).
        let at = match self.time {
            TimeSource::Processing => now,
            TimeSource::EventTime { .. } => at.max(self.watermark).unwrap_or(now),
        };
        let recorded: Cow<'_, [Event]> = if events
            .iter()
            .all(|e| matches!(e.recorded(), Cow::Borrowed(_)))
        {
            Cow::Borrowed(events)
        } else {
            Cow::Owned(events.iter().map(|e| e.recorded().into_owned()).collect())
        };
        let mut observations = std::mem::take(&mut self.observations);
        observations.clear();
        if let Err(e) = self
            .env
            .backend()
            .record_batch(&recorded, at, &mut observations)
        {
            self.observations = observations;
            return Err(self.backend_failure(e, events.len()));
        }
        self.telemetry.event(now);
        let start = out.len();
        let mut first: Option<(&Event, Ticket)> = None;
        for ((event, original), observation) in recorded.iter().zip(events).zip(&observations) {
            if observation.duplicate {
                self.stats.duplicates += 1;
                if let Some(d) = deliveries.as_deref_mut() {
                    d.push((Delivery::Duplicate, out.len()));
                }
                continue;
            }
            self.stats.events += 1;
            self.count_ignored(original);
            push_metrics(event, observation, at, out);
            if let Some(d) = deliveries.as_deref_mut() {
                d.push((Delivery::Applied, out.len()));
            }
            if let Some(ticket) = self.decide(event, now) {
                match first {
                    None => first = Some((event, ticket)),
                    // Coalesced into the batch's one calculation.
                    Some(_) => self.finish(event, now, ticket),
                }
            }
        }
        self.observations = observations;
        if !events.is_empty() {
            self.advance_watermark(at);
        }
        if let Some((event, ticket)) = first {
            self.compute(event, now, ticket, out);
        }
        self.record(&out[start..]);
        Ok(())
    }

    /// Computes the composite now, whatever the scheduler says, and records it.
    /// `None` when there is no data to score.
    pub fn compute_now(&mut self, session: Option<&Arc<str>>) -> Result<Option<Metric>, Error> {
        let scope = session.map_or(Scope::Global, |id| Scope::Session(id));
        match self.env.composite(scope, session) {
            Ok(metric) => {
                self.stats.composites += 1;
                self.telemetry.calculated_now();
                match &metric {
                    Some(m) => self.record(std::slice::from_ref(m)),
                    None => self.stats.composites_without_data += 1,
                }
                Ok(metric)
            }
            Err(e) => {
                self.count_composite_failure(&e);
                crate::telemetry::backend_error(&e);
                Err(e.into())
            }
        }
    }

    /// What the calculator and its scheduler have done.
    pub fn stats(&self) -> Stats {
        let s = self.scheduler.stats();
        Stats {
            composites: self.stats.composites + s.composites,
            composite_errors: self.stats.composite_errors + s.errors + s.panics,
            composites_without_data: self.stats.composites_without_data + s.composites_without_data,
            state_resets: self.stats.state_resets + s.state_resets,
            ..self.stats
        }
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// The scheduler, mutably (e.g. to [`poll`](crate::Background::poll) a manual background scheduler).
    pub fn scheduler_mut(&mut self) -> &mut S {
        &mut self.scheduler
    }

    /// The scheduler's name.
    pub fn scheduler_name(&self) -> &'static str {
        self.scheduler.name()
    }

    /// The shared backend.
    pub fn state(&self) -> &Arc<dyn StateBackend> {
        self.env.backend()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.env.clock()
    }

    /// Processing or event time (see [`TimeSource`]).
    pub fn time_source(&self) -> TimeSource {
        self.time
    }

    /// Event time: the newest event time applied so far (`None` before the
    /// first event, and always with processing time), as a duration since
    /// the UNIX epoch.
    pub fn watermark(&self) -> Option<Duration> {
        self.watermark
    }

    /// Stops the scheduler's background work, if any; returns promptly.
    /// Dropping the calculator does the same.
    pub fn shutdown(&mut self) {
        self.scheduler.shutdown();
    }

    fn backend_failure(&mut self, e: BackendError, events: usize) -> Error {
        crate::telemetry::backend_error(&e);
        if matches!(e, BackendError::CapacityExceeded { .. }) {
            self.stats.rejected += events as u64;
        } else if matches!(e, BackendError::StateReset { .. }) {
            self.stats.state_resets += 1;
        } else {
            self.stats.backend_errors += 1;
        }
        e.into()
    }

    fn count_composite_failure(&mut self, e: &BackendError) {
        if matches!(e, BackendError::StateReset { .. }) {
            self.stats.state_resets += 1;
        } else {
            self.stats.composite_errors += 1;
        }
    }

    fn count_coordination_failure(&mut self, e: &BackendError) {
        if matches!(e, BackendError::StateReset { .. }) {
            self.stats.state_resets += 1;
        } else {
            self.stats.coordination_errors += 1;
        }
    }

    fn context<'a>(env: &'a SchedulerEnv, event: &'a Event, now: Duration) -> EventContext<'a> {
        EventContext {
            now,
            session: &event.session_id,
            scope: env.scope(),
            backend: &**env.backend(),
        }
    }

    #[inline]
    fn decide(&mut self, event: &Event, now: Duration) -> Option<Ticket> {
        // Called once per applied event: counts it if it is a named tool run.
        self.telemetry.tool_run(event);
        if self.scheduler.skip_fast(now) {
            self.telemetry.skipped();
            return None;
        }
        self.decide_with_context(event, now)
    }

    #[cold]
    #[inline(never)]
    fn decide_with_context(&mut self, event: &Event, now: Duration) -> Option<Ticket> {
        let ctx = Self::context(&self.env, event, now);
        let decision = self.scheduler.on_event(&ctx);
        self.telemetry.decision(&decision);
        match decision {
            Ok(Decision::Skip) => None,
            Ok(Decision::Compute(ticket)) => Some(ticket),
            Err(e) => {
                self.count_coordination_failure(&e);
                log::warn!("composite scheduling failed, skipped: {e}");
                None
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn compute(&mut self, event: &Event, now: Duration, ticket: Ticket, out: &mut Vec<Metric>) {
        let ctx = Self::context(&self.env, event, now);
        let session = (ctx.scope == CompositeScope::PerSession).then_some(&event.session_id);
        match self.env.composite(ctx.state_scope(), session) {
            Ok(Some(metric)) => {
                self.stats.composites += 1;
                self.telemetry.calculated();
                // Stamped with the lock's fencing generation, if any.
                out.push(metric.with_generation(ticket.generation()));
            }
            Ok(None) => {
                self.stats.composites += 1;
                self.stats.composites_without_data += 1;
                self.telemetry.calculated();
            }
            Err(e) => {
                self.count_composite_failure(&e);
                crate::telemetry::backend_error(&e);
                log::warn!("composite calculation failed: {e}");
            }
        }
        self.finish(event, now, ticket);
    }

    fn finish(&mut self, event: &Event, now: Duration, ticket: Ticket) {
        let ctx = Self::context(&self.env, event, now);
        if let Err(e) = self.scheduler.on_computed(&ctx, ticket) {
            self.count_coordination_failure(&e);
            log::warn!("releasing the composite lock failed: {e}");
        }
    }

    fn record(&mut self, metrics: &[Metric]) {
        if metrics.is_empty() {
            return;
        }
        if let Err(e) = self.env.record(metrics) {
            self.stats.sink_errors += 1;
            crate::telemetry::sink_error(&e);
            log::warn!("{e}");
        }
    }
}

/// What happened to one event handed to
/// [`MetricsCalculator::process_into`](crate::MetricsCalculator::process_into).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The event was applied: its metrics were appended and recorded.
    Applied,
    /// The event's [`event_id`](crate::Event::event_id) was already applied
    /// within the dedup horizon: nothing changed, no metrics were produced,
    /// and the scheduler was not consulted. Not an error: do not retry.
    Duplicate,
}
