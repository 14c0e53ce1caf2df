use std::fmt;
use std::sync::Arc;

use super::CompositeScope;
use crate::clock::Clock;
use crate::error::{BackendError, SinkError};
use crate::metric::{names, Category, Metric};
use crate::score::ScoreWeights;
use crate::sink::MetricSink;
use crate::state::{Scope, StateBackend};

/// What a calculator shares with its scheduler: clock, backend, sink, score
/// weights and scope. Cheap to clone; a background scheduler keeps one.
#[derive(Clone)]
pub struct SchedulerEnv {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<dyn StateBackend>,
    sink: Arc<dyn MetricSink>,
    clock: Arc<dyn Clock>,
    weights: ScoreWeights,
    scope: CompositeScope,
}

impl fmt::Debug for SchedulerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerEnv")
            .field("state", &self.inner.state)
            .field("sink", &self.inner.sink)
            .field("clock", &self.inner.clock)
            .field("weights", &self.inner.weights)
            .field("scope", &self.inner.scope)
            .finish()
    }
}

impl SchedulerEnv {
    pub(crate) fn new(
        state: Arc<dyn StateBackend>,
        sink: Arc<dyn MetricSink>,
        clock: Arc<dyn Clock>,
        weights: ScoreWeights,
        scope: CompositeScope,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                sink,
                clock,
                weights,
                scope,
            }),
        }
    }

    /// The calculator's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The shared backend.
    pub fn backend(&self) -> &Arc<dyn StateBackend> {
        &self.inner.state
    }

    /// The sink metrics go to.
    pub fn sink(&self) -> &Arc<dyn MetricSink> {
        &self.inner.sink
    }

    /// How the composite is divided: one global, or one per session.
    pub fn scope(&self) -> CompositeScope {
        self.inner.scope
    }

    /// The score weights.
    pub fn weights(&self) -> ScoreWeights {
        self.inner.weights
    }

    /// Computes the composite for `scope` in one backend read: the
    /// `composite/productivity_score` metric, or `None` when the inputs are
    /// missing (no score is invented). The metric is not recorded.
    pub fn composite(
        &self,
        scope: Scope<'_>,
        session: Option<&Arc<str>>,
    ) -> Result<Option<Metric>, BackendError> {
        let _timer = crate::telemetry::CalculationTimer::start(&*self.inner.clock);
        let inputs = self.inner.state.composite_inputs(scope)?;
        Ok(self.inner.weights.score(&inputs).map(|score| {
            let metric = Metric::new(
                Category::Composite,
                names::PRODUCTIVITY_SCORE,
                score,
                self.inner.clock.now(),
            );
            match session {
                Some(id) => metric.with_session(Arc::clone(id)),
                None => metric,
            }
        }))
    }

    /// Computes the composites of many sessions with one backend read
    /// ([`StateBackend::session_inputs`]), appending a
    /// `composite/productivity_score` metric labelled with its session to
    /// `out` for each session that has the inputs (no score is invented), and
    /// returns how many sessions were read. The metrics are not recorded.
    /// Each session read is one calculation in the health metrics (feature
    /// `metrics`): the page's read time is observed once per session, evenly
    /// shared, and marks the latest calculation.
    pub fn session_composites(
        &self,
        sessions: &[Arc<str>],
        out: &mut Vec<Metric>,
    ) -> Result<usize, BackendError> {
        // One page read: its time is shared evenly by its sessions in the
        // calculation-time histogram (a failed read is one observation).
        let timer = crate::telemetry::CalculationTimer::start(&*self.inner.clock);
        let mut inputs = Vec::with_capacity(sessions.len());
        self.inner.state.session_inputs(sessions, &mut inputs)?;
        timer.finish_page(inputs.len());
        let now = self.inner.clock.now();
        for (id, inputs) in sessions.iter().zip(&inputs) {
            if let Some(score) = self.inner.weights.score(inputs) {
                out.push(
                    Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, score, now)
                        .with_session(Arc::clone(id)),
                );
            }
        }
        Ok(inputs.len())
    }

    /// Records metrics to the sink.
    pub fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        self.inner.sink.record(metrics)
    }
}
