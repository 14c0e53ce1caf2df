use std::time::{Duration, Instant};

use super::{Arrivals, EventMix, LoadProfile, Recorder, RunReport, SimConfig, SimError, Strategy};
use crate::calculator::MetricsCalculator;
use crate::clock::ManualClock;
use crate::error::SinkError;
use crate::metric::Metric;
use crate::schedule::{Background, CompositeScheduler, EventBased, HybridLock, Never, TimeBased};
use crate::sink::CallbackSink;
use crate::state::{MemoryState, StateBackend};

/// Runs strategies under load profiles on virtual time: W workers, each its
/// own [`MetricsCalculator`] and scheduler, over one shared [`MemoryState`],
/// all on one [`ManualClock`].
///
/// Events are processed one at a time in global arrival order, with the clock
/// set to each event's arrival time first, so a run is deterministic: the same
/// [`SimConfig`] (seed included), strategy and profile give the same
/// [`RunReport`], except the real-time CPU figures. A `Background` scheduler
/// runs in manual mode and is polled at every `interval / 64` of virtual time,
/// idle gaps included. Computed metrics go to a sink that discards them.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{LoadProfile, SimConfig, Simulator, Strategy};
///
/// let sim = Simulator::new(SimConfig::default().with_workers(3))?;
/// let profile = LoadProfile::poisson(1_000.0, Duration::from_secs(10));
/// let report = sim.run(&Strategy::EventBased { every: 100 }, &profile)?;
/// // About 10 000 events, one calculation per 100 events per worker: about 10/s.
/// assert!((8.0..12.0).contains(&report.calcs_per_sec()));
/// assert_eq!(report.lag.reflected + report.lag.unreflected, report.events);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
}

/// How the simulator drives a manual background scheduler.
type Poll<S> = (fn(&mut S) -> u64, Duration);

impl Simulator {
    /// A simulator with `config`, rejected if invalid.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> SimConfig {
        self.config
    }

    /// Runs `strategy` under `profile` and measures it.
    pub fn run(&self, strategy: &Strategy, profile: &LoadProfile) -> Result<RunReport, SimError> {
        profile.validate()?;
        match *strategy {
            Strategy::Never => self.run_with(strategy, profile, || Ok(Never), None),
            Strategy::TimeBased { period } => {
                self.run_with(strategy, profile, || Ok(TimeBased::every(period)), None)
            }
            Strategy::EventBased { every } => {
                self.run_with(strategy, profile, || Ok(EventBased::every(every)), None)
            }
            Strategy::HybridLock(config) => {
                config.validate()?;
                self.run_with(strategy, profile, || Ok(HybridLock::new(config)?), None)
            }
            Strategy::Background(config) => {
                config.validate()?;
                let step = poll_step(config.interval());
                self.run_with(
                    strategy,
                    profile,
                    || Ok(Background::manual(config)?),
                    Some((Background::poll, step)),
                )
            }
        }
    }

    fn run_with<S: CompositeScheduler>(
        &self,
        strategy: &Strategy,
        profile: &LoadProfile,
        make: impl Fn() -> Result<S, SimError>,
        poll: Option<Poll<S>>,
    ) -> Result<RunReport, SimError> {
        let wall = Instant::now();
        let config = self.config;
        let start = config.start();
        let clock = ManualClock::new(start);
        let state = MemoryState::with_clock(clock.clone());
        let mut workers = (0..config.workers())
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
        let mut mix = EventMix::new(
            config.workers(),
            config.sessions_per_worker(),
            config.seed(),
        );
        let mut rec = Recorder::new(config.calc_duration());
        let end = profile.duration();
        let mut next_poll = poll.map(|(_, step)| step);
        let mut process_time = Duration::ZERO;
        let mut event_errors = 0;
        let mut out: Vec<Metric> = Vec::with_capacity(16);

        let poll_until = |until: Duration,
                          workers: &mut [MetricsCalculator<S>],
                          next_poll: &mut Option<Duration>,
                          rec: &mut Recorder| {
            let Some((poll_fn, step)) = poll else { return };
            while let Some(at) = next_poll.filter(|at| *at <= until) {
                clock.set(start + at);
                for w in workers.iter_mut() {
                    for _ in 0..poll_fn(w.scheduler_mut()) {
                        rec.calc(at, false);
                    }
                }
                *next_poll = Some(at + step);
            }
        };

        for (at, w) in Arrivals::new(profile, config.workers(), config.seed()) {
            poll_until(at, &mut workers, &mut next_poll, &mut rec);
            clock.set(start + at);
            let event = mix.next_event(w, start + at);
            // `w < workers.len()`: arrivals are spread over exactly that many workers.
            let worker = &mut workers[w];
            let before = worker.stats().composites;
            let t0 = Instant::now();
            let result = worker.process_into(&event, &mut out);
            process_time += t0.elapsed();
            out.clear();
            match result {
                Ok(()) => rec.event(at),
                Err(_) => event_errors += 1,
            }
            for _ in before..worker.stats().composites {
                rec.calc(at, true);
            }
        }
        poll_until(end, &mut workers, &mut next_poll, &mut rec);
        clock.set(start + end);
        for w in &mut workers {
            w.shutdown();
        }

        let mut report = RunReport {
            strategy: strategy.to_string(),
            strategy_name: strategy.name(),
            profile: profile.name().to_owned(),
            mode: "virtual",
            workers: config.workers(),
            seed: config.seed(),
            duration: end,
            offered_rate: profile.mean_rate(),
            event_errors,
            ops: state.op_counts(),
            process_time,
            ..RunReport::default()
        };
        rec.finish(end, &mut report);
        report.wall_time = wall.elapsed();
        Ok(report)
    }
}

/// How often a background scheduler is polled: every 1/64 of its interval
/// (at least 1 µs), so that ticks land on polls exactly whenever the interval
/// in nanoseconds is a multiple of 64 (any whole number of milliseconds that
/// divides by 8, the 30 s default included) and within 1/64 of the interval
/// otherwise.
pub(crate) fn poll_step(interval: Duration) -> Duration {
    (interval / 64).max(Duration::from_micros(1))
}
