use crate::sim::{LoadProfile, RunReport};

/// One load profile and the report of every strategy run on it, in the
/// order the strategies ran.
///
/// `steady_rate` is the offered rate (events per second, all workers) of a
/// steady Poisson profile, which places it on the chart's load axis; `None`
/// for any other profile (bursty, custom), drawn at its mean rate.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{LoadProfile, ProfileRuns, SimConfig, Simulator, Strategy};
///
/// let sim = Simulator::new(SimConfig::default())?;
/// let profile = LoadProfile::poisson(10.0, Duration::from_secs(60));
/// let reports = sim.run_all(&[Strategy::Never, Strategy::EventBased { every: 10 }], &profile)?;
/// let runs = ProfileRuns::new(profile, Some(10.0), reports);
/// assert_eq!(runs.baseline().map(|r| r.strategy_name), Some("never"));
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRuns {
    /// The load profile.
    pub profile: LoadProfile,
    /// The offered rate of a steady profile, `None` for any other.
    pub steady_rate: Option<f64>,
    /// One report per strategy.
    pub reports: Vec<RunReport>,
}

impl ProfileRuns {
    /// Groups the reports of one profile.
    pub fn new(profile: LoadProfile, steady_rate: Option<f64>, reports: Vec<RunReport>) -> Self {
        Self {
            profile,
            steady_rate,
            reports,
        }
    }

    /// The `never` run, the baseline of the event-path cost.
    pub fn baseline(&self) -> Option<&RunReport> {
        self.reports.iter().find(|r| r.strategy_name == "never")
    }

    /// `report`'s event-path cost against the `never` run of this profile
    /// (see [`RunReport::cpu_ratio`]), `None` without a baseline or timings.
    pub fn cpu_ratio(&self, report: &RunReport) -> Option<f64> {
        self.baseline().and_then(|b| report.cpu_ratio(b))
    }

    /// The report of strategy `name` (e.g. `"background"`).
    pub fn report(&self, name: &str) -> Option<&RunReport> {
        self.reports.iter().find(|r| r.strategy_name == name)
    }

    /// Where the profile sits on a load axis: its steady rate, or else its
    /// mean offered rate.
    pub fn load(&self) -> f64 {
        self.steady_rate.unwrap_or_else(|| self.profile.mean_rate())
    }
}
