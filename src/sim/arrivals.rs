use std::time::Duration;

use super::{LoadProfile, SimRng};

/// The arrival times of a [`LoadProfile`], each with the worker that receives
/// the event: a Poisson process at each phase's total rate, every event sent
/// to a worker chosen uniformly at random (so each worker sees a Poisson
/// process at `rate / workers`).
///
/// Times are offsets from the start of the run, in increasing order.
/// Deterministic: the same profile, worker count and seed give the same
/// arrivals.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{Arrivals, LoadProfile};
///
/// let profile = LoadProfile::poisson(100.0, Duration::from_secs(60));
/// let events: Vec<_> = Arrivals::new(&profile, 3, 42).collect();
/// assert!((5_400..6_600).contains(&events.len())); // about 6 000
/// assert!(events.windows(2).all(|w| w[0].0 <= w[1].0));
/// assert!(events.iter().all(|&(at, worker)| at < Duration::from_secs(60) && worker < 3));
/// assert_eq!(events, Arrivals::new(&profile, 3, 42).collect::<Vec<_>>());
/// ```
#[derive(Debug, Clone)]
pub struct Arrivals {
    phases: Vec<(f64, f64, f64)>,
    phase: usize,
    t: f64,
    workers: u64,
    rng: SimRng,
}

impl Arrivals {
    /// The arrivals of `profile` over `workers` workers (at least one), seeded by `seed`.
    pub fn new(profile: &LoadProfile, workers: usize, seed: u64) -> Self {
        let mut start = 0.0;
        let phases = profile
            .phases()
            .iter()
            .map(|p| {
                let end = start + p.duration.as_secs_f64();
                let phase = (start, end, p.rate);
                start = end;
                phase
            })
            .collect();
        Self {
            phases,
            phase: 0,
            t: 0.0,
            workers: workers.max(1) as u64,
            rng: SimRng::stream(seed, 1),
        }
    }
}

impl Iterator for Arrivals {
    type Item = (Duration, usize);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let &(start, end, rate) = self.phases.get(self.phase)?;
            self.t = self.t.max(start);
            // A non-finite rate (an unvalidated profile) brings no events.
            if rate > 0.0 && rate.is_finite() {
                let t = self.t + self.rng.exponential(rate);
                if t < end {
                    self.t = t;
                    let worker = self.rng.below(self.workers) as usize;
                    let at = Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX);
                    return Some((at, worker));
                }
            }
            // Poisson arrivals are memoryless: the next phase starts afresh at its start.
            self.phase += 1;
        }
    }
}
