use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use super::load_profile::scale as scale_by;
use super::simulator::poll_step;
use super::{
    Arrivals, BackendFactory, EventMix, LoadProfile, Recorder, RunReport, SimConfig, SimError,
    Strategy,
};
use crate::calculator::MetricsCalculator;
use crate::clock::SystemClock;
use crate::error::SinkError;
use crate::metric::Metric;
use crate::schedule::{
    Background, Coalesce, CompositeScheduler, EventBased, HybridLock, Never, TimeBased,
};
use crate::sink::CallbackSink;
use crate::state::StateBackend;

/// Runs the same scenarios as the [`Simulator`](super::Simulator) in real
/// time: the [`SystemClock`], each worker on its own thread with its own
/// backend value from a [`BackendFactory`] (e.g. its own Redis connection),
/// real sleeping between arrivals.
///
/// Every duration is multiplied by `time_scale` (0.01 turns 30 s into 300 ms):
/// arrival gaps, the profile's phases, and the strategy's parameters
/// ([`Strategy::scaled`]; `TimeBased` keeps its whole-second rule). The report
/// is converted back to simulated time, so its figures compare with a virtual
/// run. A worker that cannot keep up processes its events late, as fast as it
/// can; arrivals are the simulator's, so the same seed gives the same events,
/// but timing-dependent figures vary from run to run.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{LoadProfile, MemoryBackends, RealTimeRunner, SimConfig, Strategy};
///
/// let runner = RealTimeRunner::new(SimConfig::default(), 0.001, MemoryBackends)?;
/// // 60 simulated seconds at 10 events/s, in about 60 ms of real time.
/// let profile = LoadProfile::poisson(10.0, Duration::from_secs(60));
/// let report = runner.run(&Strategy::EventBased { every: 10 }, &profile)?;
/// assert_eq!(report.mode, "real-time");
/// assert!(report.events > 400);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug)]
pub struct RealTimeRunner<F> {
    config: SimConfig,
    time_scale: f64,
    factory: F,
}

/// What one worker thread saw, in real offsets from the common start.
#[derive(Debug, Default)]
struct WorkerLog {
    events: Vec<Duration>,
    calcs: Vec<(Duration, bool)>,
    errors: u64,
    process_time: Duration,
}

type Poll<S> = (fn(&mut S) -> u64, Duration);

impl<F: BackendFactory> RealTimeRunner<F> {
    /// A runner for `config`, with every duration scaled by `time_scale`
    /// (finite, above zero), on backends from `factory`.
    pub fn new(config: SimConfig, time_scale: f64, factory: F) -> Result<Self, SimError> {
        config.validate()?;
        if !(time_scale.is_finite() && time_scale > 0.0) {
            return Err(SimError::Setting {
                field: "time_scale",
                reason: format!("must be a finite number above zero, got {time_scale}"),
            });
        }
        Ok(Self {
            config,
            time_scale,
            factory,
        })
    }

    /// The time scale.
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// The backend factory.
    pub fn factory(&self) -> &F {
        &self.factory
    }

    /// Runs `strategy` (scaled) under `profile` (scaled) and measures it.
    pub fn run(&self, strategy: &Strategy, profile: &LoadProfile) -> Result<RunReport, SimError> {
        profile.validate()?;
        let scaled = strategy.scaled(self.time_scale);
        match scaled {
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
            Strategy::Coalesce(config) => {
                config.validate()?;
                self.run_with(
                    strategy,
                    profile,
                    || Ok(Coalesce::manual(config)?),
                    Some((Coalesce::poll, config.tick())),
                )
            }
        }
    }

    fn run_with<S: CompositeScheduler>(
        &self,
        strategy: &Strategy,
        profile: &LoadProfile,
        make: impl Fn() -> Result<S, SimError> + Sync,
        poll: Option<Poll<S>>,
    ) -> Result<RunReport, SimError> {
        let wall = Instant::now();
        let config = self.config;
        let scale = self.time_scale;
        let workers = config.workers();
        let label = format!("{}-{}", strategy.name(), profile.name());
        let backends = self.factory.open(&label, workers)?;
        if backends.len() != workers {
            return Err(SimError::Setting {
                field: "backends",
                reason: format!(
                    "the factory opened {} for {workers} workers",
                    backends.len()
                ),
            });
        }
        let mut schedules = vec![Vec::new(); workers];
        for (at, w) in Arrivals::new(profile, workers, config.seed()) {
            // `w < workers`: arrivals are spread over exactly `workers` workers.
            schedules[w].push(scale_by(at, scale));
        }
        let end = scale_by(profile.duration(), scale);
        // Every thread builds its calculator (a background scheduler's ticks
        // count from then), waits for the others, and the first one through
        // fixes the common start.
        let ready = Barrier::new(workers);
        let start = OnceLock::new();

        let logs = std::thread::scope(|scope| {
            let handles: Vec<_> = schedules
                .into_iter()
                .zip(&backends)
                .enumerate()
                .map(|(w, (arrivals, backend))| {
                    let make = &make;
                    let (ready, start) = (&ready, &start);
                    scope.spawn(move || {
                        run_worker(
                            w,
                            config,
                            Arc::clone(backend),
                            make,
                            poll,
                            arrivals,
                            (ready, start),
                            end,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(worker, h)| {
                    h.join().unwrap_or_else(|_| {
                        Err(SimError::Worker {
                            worker,
                            reason: "the thread panicked".into(),
                        })
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;

        // One global timeline, in simulated time; an event before a
        // calculation at the same instant is read by it.
        let to_sim = |d: Duration| scale_by(d, 1.0 / scale);
        let mut timeline: Vec<(Duration, u8, bool)> = Vec::new();
        let mut process_time = Duration::ZERO;
        let mut event_errors = 0;
        for log in &logs {
            timeline.extend(log.events.iter().map(|t| (to_sim(*t), 0, false)));
            timeline.extend(log.calcs.iter().map(|(t, ep)| (to_sim(*t), 1, *ep)));
            process_time += log.process_time;
            event_errors += log.errors;
        }
        timeline.sort_by_key(|&(t, kind, _)| (t, kind));
        let mut rec = Recorder::new(config.calc_duration());
        for (t, kind, event_path) in timeline {
            if kind == 0 {
                rec.event(t);
            } else {
                rec.calc(t, event_path);
            }
        }
        let mut report = RunReport {
            strategy: strategy.to_string(),
            strategy_name: strategy.name(),
            profile: profile.name().to_owned(),
            mode: "real-time",
            workers,
            seed: config.seed(),
            duration: profile.duration(),
            offered_rate: profile.mean_rate(),
            event_errors,
            ops: self.factory.op_totals(&backends),
            process_time,
            ..RunReport::default()
        };
        rec.finish(profile.duration(), &mut report);
        report.wall_time = wall.elapsed();
        Ok(report)
    }
}

#[allow(clippy::too_many_arguments)]
fn run_worker<S: CompositeScheduler>(
    w: usize,
    config: SimConfig,
    backend: Arc<dyn StateBackend>,
    make: &(impl Fn() -> Result<S, SimError> + Sync),
    poll: Option<Poll<S>>,
    arrivals: Vec<Duration>,
    (ready, start): (&Barrier, &OnceLock<Instant>),
    end: Duration,
) -> Result<WorkerLog, SimError> {
    let built = make().and_then(|scheduler| {
        MetricsCalculator::builder()
            .clock(SystemClock)
            .state(backend)
            .sink(CallbackSink::new(|_: &[Metric]| Ok::<(), SinkError>(())))
            .scheduler(scheduler)
            .build()
            .map_err(SimError::Build)
    });
    // Wait even after a failure, so the other workers are not left waiting.
    ready.wait();
    let start = *start.get_or_init(Instant::now);
    let mut calc = built?;
    let mut mix = EventMix::new(config.workers(), config.sessions_per_worker(), {
        config.seed().wrapping_add(w as u64 + 1)
    });
    let mut log = WorkerLog {
        events: Vec::with_capacity(arrivals.len()),
        ..WorkerLog::default()
    };
    let mut out: Vec<Metric> = Vec::with_capacity(16);
    let mut next_poll = poll.map(|(_, step)| step);
    let sleep_until = |offset: Duration| {
        // An offset past what `Instant` can represent is never reached: no sleep.
        if let Some(due) = start.checked_add(offset) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    };
    let mut poll_until = |until: Duration, calc: &mut MetricsCalculator<S>, log: &mut WorkerLog| {
        let Some((poll_fn, step)) = poll else { return };
        while let Some(at) = next_poll.filter(|at| *at <= until) {
            sleep_until(at);
            let started = start.elapsed();
            for _ in 0..poll_fn(calc.scheduler_mut()) {
                log.calcs.push((started, false));
            }
            next_poll = Some(at + step);
        }
    };
    for at in arrivals {
        poll_until(at, &mut calc, &mut log);
        sleep_until(at);
        let wall = SystemClock;
        let event = mix.next_event(w, crate::clock::Clock::now(&wall));
        let before = calc.stats().composites;
        let recorded = start.elapsed();
        let t0 = Instant::now();
        let result = calc.process_into(&event, &mut out);
        log.process_time += t0.elapsed();
        out.clear();
        match result {
            Ok(_) => log.events.push(recorded),
            Err(_) => log.errors += 1,
        }
        for _ in before..calc.stats().composites {
            log.calcs.push((recorded, true));
        }
    }
    poll_until(end, &mut calc, &mut log);
    calc.shutdown();
    Ok(log)
}
