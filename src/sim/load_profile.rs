use std::time::Duration;

use super::{Phase, SimError};

/// When events arrive: a named sequence of [`Phase`]s, each a Poisson process
/// at a total rate spread evenly over the workers.
///
/// Build one with [`poisson`](Self::poisson) (one steady rate),
/// [`bursty`](Self::bursty) (bursts with quiet gaps), [`custom`](Self::custom)
/// (any sequence), or [`parse`](Self::parse) a description such as
/// `"60s@10,30s@5000,120s@0"`.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::LoadProfile;
///
/// let steady = LoadProfile::poisson(1_000.0, Duration::from_secs(60));
/// assert_eq!(steady.duration(), Duration::from_secs(60));
///
/// let custom = LoadProfile::parse("ramp", "30s@10,30s@1000,1m@0")?;
/// assert_eq!(custom.phases().len(), 3);
/// assert_eq!(custom.duration(), Duration::from_secs(120));
/// assert_eq!(custom.expected_events(), 30_300.0);
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProfile {
    name: String,
    phases: Vec<Phase>,
}

impl LoadProfile {
    /// Steady Poisson arrivals at `rate` events per second for `duration`,
    /// named after the rate (`"1000/s"`, `"1/min"`).
    pub fn poisson(rate: f64, duration: Duration) -> Self {
        Self {
            name: rate_label(rate),
            phases: vec![Phase::new(duration, rate)],
        }
    }

    /// Bursts of `burst` at `rate` events per second, each followed by a quiet
    /// `gap`, repeated for `duration` (the last cycle is cut short).
    pub fn bursty(rate: f64, burst: Duration, gap: Duration, duration: Duration) -> Self {
        let mut phases = Vec::new();
        let mut left = duration;
        let mut on = true;
        while !left.is_zero() && !(burst + gap).is_zero() {
            let len = if on { burst } else { gap }.min(left);
            phases.push(Phase::new(len, if on { rate } else { 0.0 }));
            left -= len;
            on = !on;
        }
        Self {
            name: format!(
                "bursty({}s@{}, {}s quiet)",
                burst.as_secs_f64(),
                rate_label(rate).trim_end_matches("/s"),
                gap.as_secs_f64()
            ),
            phases,
        }
    }

    /// Any sequence of phases, under `name`.
    pub fn custom(name: impl Into<String>, phases: Vec<Phase>) -> Self {
        Self {
            name: name.into(),
            phases,
        }
    }

    /// Parses a comma-separated list of `DURATION@RATE` phases. A duration is
    /// a number with a unit `ms`, `s`, `m`/`min` or `h`; a rate is events per
    /// second, or per minute with a `/min` suffix (`1/min`, `30s@0.5`).
    pub fn parse(name: impl Into<String>, spec: &str) -> Result<Self, SimError> {
        let mut phases = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (duration, rate) = part.split_once('@').ok_or_else(|| SimError::Profile {
                reason: format!("`{part}` is not DURATION@RATE"),
            })?;
            phases.push(Phase::new(parse_duration(duration)?, parse_rate(rate)?));
        }
        let profile = Self::custom(name, phases);
        profile.validate()?;
        Ok(profile)
    }

    /// The name used in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the profile.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        self.phases
            .iter()
            .fold(Duration::ZERO, |total, p| total.saturating_add(p.duration))
    }

    /// The mean number of events.
    pub fn expected_events(&self) -> f64 {
        self.phases.iter().map(Phase::expected_events).sum()
    }

    /// The mean rate over the whole profile, events per second.
    pub fn mean_rate(&self) -> f64 {
        let secs = self.duration().as_secs_f64();
        if secs > 0.0 {
            self.expected_events() / secs
        } else {
            0.0
        }
    }

    /// Every duration multiplied by `factor` and every rate divided by it, so
    /// the same events arrive on a compressed (or stretched) time axis.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            name: self.name.clone(),
            phases: self
                .phases
                .iter()
                .map(|p| Phase::new(scale(p.duration, factor), p.rate / factor))
                .collect(),
        }
    }

    /// Rejects an empty profile (no time) and negative or non-finite rates.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.duration().is_zero() {
            return Err(SimError::Profile {
                reason: format!("`{}` lasts no time", self.name),
            });
        }
        if let Some(p) = self
            .phases
            .iter()
            .find(|p| !(p.rate.is_finite() && p.rate >= 0.0))
        {
            return Err(SimError::Profile {
                reason: format!("rate {} is not a finite, non-negative number", p.rate),
            });
        }
        Ok(())
    }
}

/// `d * factor`, saturating, and zero for a negative or NaN factor.
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(if factor > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

/// `"1000/s"`, `"0.5/s"`, `"1/min"`.
fn rate_label(rate: f64) -> String {
    if rate > 0.0 && rate < 1.0 {
        let per_min = rate * 60.0;
        if (per_min - per_min.round()).abs() < 1e-9 {
            return format!("{}/min", per_min.round());
        }
    }
    format!("{rate}/s")
}

fn parse_duration(text: &str) -> Result<Duration, SimError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || SimError::Profile {
        reason: format!("`{text}` is not a duration like 30s, 500ms, 2m or 1h"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "ms" => value / 1_000.0,
        "s" | "" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3_600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// Events per second from `"1000"`, `"1000/s"` or `"1/min"`.
pub(crate) fn parse_rate(text: &str) -> Result<f64, SimError> {
    let text = text.trim();
    let (number, per) = match text.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "min" | "m")) => (n, 60.0),
        Some((n, "h")) => (n, 3_600.0),
        Some(_) => {
            return Err(SimError::Profile {
                reason: format!("`{text}`: a rate's unit is /s, /min or /h"),
            })
        }
        None => (text, 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| SimError::Profile {
        reason: format!("`{text}` is not a rate like 1000, 10/s or 1/min"),
    })?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(SimError::Profile {
            reason: format!("rate `{text}` must be finite and non-negative"),
        });
    }
    Ok(value / per)
}
