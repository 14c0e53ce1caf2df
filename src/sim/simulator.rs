use std::time::Duration;

use super::{
    Arrivals, EventMix, Lane, LaneOps, LoadProfile, RunReport, SimConfig, SimError, Strategy,
};
#[cfg(doc)]
use crate::calculator::MetricsCalculator;
#[cfg(doc)]
use crate::clock::ManualClock;
use crate::schedule::{Background, Coalesce, EventBased, HybridLock, Never, TimeBased};
#[cfg(doc)]
use crate::state::MemoryState;

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
/// A calculation is instantaneous in virtual time; its simulated duration
/// ([`SimConfig::calc_duration`]) only serves to count overlapping ones.
/// [`run_all`](Self::run_all) runs several strategies in lockstep over the
/// same events, for a fair comparison of their event-path cost.
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
        let mut reports = self.run_all(std::slice::from_ref(strategy), profile)?;
        reports.pop().ok_or_else(|| SimError::Setting {
            field: "strategies",
            reason: "no report for the strategy".into(),
        })
    }

    /// Runs several strategies in lockstep over the same events: each event
    /// is processed by every strategy's workers in turn (each strategy has
    /// its own clock, backend and workers). The numbers are the same as
    /// separate [`run`](Self::run)s; the real-time cost figures are fairer,
    /// since machine noise falls on every strategy alike.
    ///
    /// ```
    /// use std::time::Duration;
    /// use composite_metrics::sim::{LoadProfile, SimConfig, Simulator, Strategy};
    ///
    /// let sim = Simulator::new(SimConfig::default())?;
    /// let profile = LoadProfile::poisson(1_000.0, Duration::from_secs(5));
    /// let reports = sim.run_all(&Strategy::defaults(), &profile)?;
    /// let never = &reports[0];
    /// for report in &reports {
    ///     assert_eq!(report.events, never.events);
    ///     println!("{}: {:.2}x never", report.strategy_name, report.cpu_ratio(never).unwrap());
    /// }
    /// # Ok::<(), composite_metrics::sim::SimError>(())
    /// ```
    pub fn run_all(
        &self,
        strategies: &[Strategy],
        profile: &LoadProfile,
    ) -> Result<Vec<RunReport>, SimError> {
        profile.validate()?;
        let config = self.config;
        let mut lanes = strategies
            .iter()
            .map(|s| lane(*s, profile, config))
            .collect::<Result<Vec<_>, _>>()?;
        let mut mix = EventMix::new(
            config.workers(),
            config.sessions_per_worker(),
            config.seed(),
        );
        let n = lanes.len().max(1);
        for (i, (at, w)) in Arrivals::new(profile, config.workers(), config.seed()).enumerate() {
            let event = mix.next_event(w, config.start() + at);
            // Rotate which lane goes first, so none always meets a fresh event.
            let first = i % n;
            let (head, tail) = lanes.split_at_mut(first);
            for lane in tail.iter_mut().chain(head.iter_mut()) {
                lane.event(at, w, &event);
            }
        }
        lanes
            .into_iter()
            .map(|lane| lane.finish(profile.duration()))
            .collect()
    }
}

/// The lane simulating `strategy`, with its scheduler type.
fn lane(
    strategy: Strategy,
    profile: &LoadProfile,
    config: SimConfig,
) -> Result<Box<dyn LaneOps>, SimError> {
    Ok(match strategy {
        Strategy::Never => Box::new(Lane::new(strategy, profile, config, || Ok(Never), None)?),
        Strategy::TimeBased { period } => Box::new(Lane::new(
            strategy,
            profile,
            config,
            || Ok(TimeBased::every(period)),
            None,
        )?),
        Strategy::EventBased { every } => Box::new(Lane::new(
            strategy,
            profile,
            config,
            || Ok(EventBased::every(every)),
            None,
        )?),
        Strategy::HybridLock(c) => {
            c.validate()?;
            Box::new(Lane::new(
                strategy,
                profile,
                config,
                || Ok(HybridLock::new(c)?),
                None,
            )?)
        }
        Strategy::Background(c) => {
            c.validate()?;
            Box::new(Lane::new(
                strategy,
                profile,
                config,
                || Ok(Background::manual(c)?),
                Some((Background::poll, poll_step(c.interval()))),
            )?)
        }
        Strategy::Coalesce(c) => {
            c.validate()?;
            Box::new(Lane::new(
                strategy,
                profile,
                config,
                || Ok(Coalesce::manual(c)?),
                Some((Coalesce::poll, c.tick())),
            )?)
        }
    })
}

/// How often a background scheduler is polled: every 1/64 of its interval
/// (at least 1 µs), so that ticks land on polls exactly whenever the interval
/// in nanoseconds is a multiple of 64 (any whole number of milliseconds that
/// divides by 8, the 30 s default included) and within 1/64 of the interval
/// otherwise.
pub(crate) fn poll_step(interval: Duration) -> Duration {
    (interval / 64).max(Duration::from_micros(1))
}
