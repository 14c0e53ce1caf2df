use std::time::{Duration, Instant};

use super::{LoadProfile, Recorder, RunReport, SimConfig, SimError, Strategy};
use crate::calculator::MetricsCalculator;
use crate::clock::ManualClock;
use crate::error::SinkError;
use crate::event::Event;
use crate::metric::Metric;
use crate::schedule::CompositeScheduler;
use crate::sink::CallbackSink;
use crate::state::{MemoryState, StateBackend};

/// How the simulator drives a manual background scheduler: the poll function
/// and the virtual time between polls.
pub(crate) type Poll<S> = (fn(&mut S) -> u64, Duration);

/// One strategy on virtual time: its own clock, backend and workers.
pub(crate) struct Lane<S: CompositeScheduler> {
    strategy: Strategy,
    profile: String,
    offered_rate: f64,
    config: SimConfig,
    clock: ManualClock,
    state: MemoryState,
    workers: Vec<MetricsCalculator<S>>,
    poll: Option<Poll<S>>,
    next_poll: Option<Duration>,
    rec: Recorder,
    process_time: Duration,
    process_outliers: u64,
    event_errors: u64,
    wall: Duration,
    out: Vec<Metric>,
}

impl<S: CompositeScheduler> Lane<S> {
    pub(crate) fn new(
        strategy: Strategy,
        profile: &LoadProfile,
        config: SimConfig,
        make: impl Fn() -> Result<S, SimError>,
        poll: Option<Poll<S>>,
    ) -> Result<Self, SimError> {
        let clock = ManualClock::new(config.start());
        let state = MemoryState::with_clock(clock.clone());
        let workers = (0..config.workers())
            .map(|_| {
                MetricsCalculator::builder()
                    .clock(clock.clone())
                    .state(state.clone())
                    .sink(CallbackSink::new(|_: &[Metric]| Ok::<(), SinkError>(())))
                    .scheduler(make()?)
                    .build()
                    .map_err(SimError::Build)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            strategy,
            profile: profile.name().to_owned(),
            offered_rate: profile.mean_rate(),
            config,
            clock,
            state,
            workers,
            poll,
            next_poll: poll.map(|(_, step)| step),
            rec: Recorder::new(config.calc_duration()),
            process_time: Duration::ZERO,
            process_outliers: 0,
            event_errors: 0,
            wall: Duration::ZERO,
            out: Vec::with_capacity(16),
        })
    }

    /// Runs every background poll due at or before `until`.
    fn poll_until(&mut self, until: Duration) {
        let Some((poll_fn, step)) = self.poll else {
            return;
        };
        while let Some(at) = self.next_poll.filter(|at| *at <= until) {
            self.clock.set(self.config.start() + at);
            for w in self.workers.iter_mut() {
                for _ in 0..poll_fn(w.scheduler_mut()) {
                    self.rec.calc(at, false);
                }
            }
            self.next_poll = Some(at + step);
        }
    }
}

impl<S: CompositeScheduler> LaneOps for Lane<S> {
    fn event(&mut self, at: Duration, w: usize, event: &Event) {
        let entered = Instant::now();
        self.poll_until(at);
        self.clock.set(self.config.start() + at);
        // `w` is in range: arrivals are spread over exactly `workers` workers.
        let worker = &mut self.workers[w];
        let before = worker.stats().composites;
        let t0 = Instant::now();
        let result = worker.process_into(event, &mut self.out);
        let took = t0.elapsed();
        if took <= self.config.timing_cap() {
            self.process_time += took;
        } else {
            self.process_outliers += 1;
        }
        self.out.clear();
        match result {
            Ok(_) => self.rec.event(at),
            Err(_) => self.event_errors += 1,
        }
        for _ in before..worker.stats().composites {
            self.rec.calc(at, true);
        }
        self.wall += entered.elapsed();
    }

    fn finish(mut self: Box<Self>, end: Duration) -> Result<RunReport, SimError> {
        let entered = Instant::now();
        self.poll_until(end);
        self.clock.set(self.config.start() + end);
        for w in &mut self.workers {
            w.shutdown();
        }
        let mut report = RunReport {
            strategy: self.strategy.to_string(),
            strategy_name: self.strategy.name(),
            profile: self.profile,
            mode: "virtual",
            workers: self.config.workers(),
            seed: self.config.seed(),
            duration: end,
            offered_rate: self.offered_rate,
            event_errors: self.event_errors,
            ops: self.state.op_counts(),
            process_time: self.process_time,
            process_outliers: self.process_outliers,
            ..RunReport::default()
        };
        self.rec.finish(end, &mut report);
        report.wall_time = self.wall + entered.elapsed();
        Ok(report)
    }
}

/// One strategy's simulation, driven event by event, so that several
/// strategies can run in lockstep over the same events.
pub(crate) trait LaneOps {
    /// Processes `event`, which arrived at offset `at` for worker `w`.
    fn event(&mut self, at: Duration, w: usize, event: &Event);

    /// Runs the remaining background ticks up to `end` and reports.
    fn finish(self: Box<Self>, end: Duration) -> Result<RunReport, SimError>;
}
