use std::io;
use std::path::{Path, PathBuf};

use super::{ProfileRuns, ReportSetup};

/// A whole comparison: how it was run and, per load profile, every
/// strategy's report. Render it with [`note_table`](Self::note_table),
/// [`full_table`](Self::full_table), [`to_csv`](Self::to_csv),
/// [`to_json`](Self::to_json) and [`to_svg`](Self::to_svg).
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::{
///     Comparison, LoadProfile, ProfileRuns, ReportSetup, SimConfig, Simulator, Strategy,
/// };
///
/// let sim = Simulator::new(SimConfig::default())?;
/// let strategies = Strategy::defaults();
/// let mut comparison = Comparison::new(ReportSetup::new("virtual time", 3, 42));
/// for rate in [10.0, 1_000.0] {
///     let profile = LoadProfile::poisson(rate, Duration::from_secs(60));
///     let reports = sim.run_all(&strategies, &profile)?;
///     comparison.profiles.push(ProfileRuns::new(profile, Some(rate), reports));
/// }
/// let csv = comparison.to_csv();
/// assert_eq!(csv.lines().count(), 1 + 2 * 6); // a header, then one row per run
/// assert!(comparison.full_table().contains("| 1000/s | background |"));
/// let json: serde_json::Value = serde_json::from_str(&comparison.to_json()?).unwrap();
/// assert_eq!(json["runs"].as_array().map(Vec::len), Some(12));
/// assert!(comparison.to_svg().starts_with("<svg"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// How the runs were made.
    pub setup: ReportSetup,
    /// The profiles in the order they ran, each with every strategy's report.
    pub profiles: Vec<ProfileRuns>,
}

impl Comparison {
    /// An empty comparison; push [`ProfileRuns`] onto `profiles`.
    pub fn new(setup: ReportSetup) -> Self {
        Self {
            setup,
            profiles: Vec::new(),
        }
    }

    /// Writes `results.csv`, `results.json` and `chart.svg` into `dir`
    /// (created if missing) and returns their paths in that order.
    pub fn write_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let files = [
            ("results.csv", self.to_csv()),
            ("results.json", self.to_json().map_err(io::Error::other)?),
            ("chart.svg", self.to_svg()),
        ];
        let mut paths = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// The strategies' names, in the order of the first profile's reports.
    pub fn strategy_names(&self) -> Vec<&'static str> {
        self.profiles
            .first()
            .map(|p| p.reports.iter().map(|r| r.strategy_name).collect())
            .unwrap_or_default()
    }

    /// The steady profiles (those with a rate), in order.
    pub(crate) fn steady(&self) -> Vec<&ProfileRuns> {
        self.profiles
            .iter()
            .filter(|p| p.steady_rate.is_some())
            .collect()
    }
}
