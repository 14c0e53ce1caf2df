use super::CompositeInputs;
use crate::error::ConfigError;

/// Weights of the productivity score:
///
/// `score = base + success*S - failure*(100-S) + acceptance*A + tool_volume*log10(1 + tool_runs)`,
/// clamped to `0..=100`, where S is the overall success rate (%) and A the
/// acceptance rate (%).
///
/// # Default
///
/// The pipeline's formula: `base` 50, `success` 0.25, `failure` 0.15,
/// `acceptance` 0.10, `tool_volume` 0 (tool counts do not move the score).
///
/// # Example
///
/// ```
/// use composite_metrics::score::{CompositeInputs, ScoreWeights};
///
/// let inputs = CompositeInputs { success_rate: Some(80.0), acceptance_rate: Some(50.0), tool_runs: 10 };
/// // 50 + 0.25*80 - 0.15*20 + 0.10*50 = 72
/// assert_eq!(ScoreWeights::default().score(&inputs), Some(72.0));
///
/// // No acceptance data: no score rather than an invented one.
/// let partial = CompositeInputs { acceptance_rate: None, ..inputs };
/// assert_eq!(ScoreWeights::default().score(&partial), None);
///
/// let heavy = ScoreWeights::default().with_acceptance(0.3).validated()?;
/// assert_eq!(heavy.score(&inputs), Some(82.0));
/// # Ok::<(), composite_metrics::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    base: f64,
    success: f64,
    failure: f64,
    acceptance: f64,
    tool_volume: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            base: 50.0,
            success: 0.25,
            failure: 0.15,
            acceptance: 0.10,
            tool_volume: 0.0,
        }
    }
}

impl ScoreWeights {
    /// The largest magnitude a weight may have. Larger weights could overflow
    /// the formula to infinity (and `inf - inf` to NaN); any weight near this
    /// already turns the clamped score into a step function.
    pub const MAX_WEIGHT: f64 = 1e9;

    /// Sets the constant term.
    pub fn with_base(mut self, base: f64) -> Self {
        self.base = base;
        self
    }

    /// Sets the weight of the success rate S.
    pub fn with_success(mut self, weight: f64) -> Self {
        self.success = weight;
        self
    }

    /// Sets the penalty per point of failure rate (100 - S).
    pub fn with_failure(mut self, weight: f64) -> Self {
        self.failure = weight;
        self
    }

    /// Sets the weight of the acceptance rate A.
    pub fn with_acceptance(mut self, weight: f64) -> Self {
        self.acceptance = weight;
        self
    }

    /// Sets the weight of `log10(1 + tool_runs)`.
    pub fn with_tool_volume(mut self, weight: f64) -> Self {
        self.tool_volume = weight;
        self
    }

    /// Checks that every weight is finite and at most [`MAX_WEIGHT`](Self::MAX_WEIGHT)
    /// in magnitude (so the formula cannot overflow into NaN), and that the
    /// rate weights are non-negative (so the score never falls when S or A grows).
    pub fn validated(self) -> Result<Self, ConfigError> {
        let weights = [
            ("base", self.base),
            ("success", self.success),
            ("failure", self.failure),
            ("acceptance", self.acceptance),
            ("tool_volume", self.tool_volume),
        ];
        for (field, w) in weights {
            if !w.is_finite() || w.abs() > Self::MAX_WEIGHT {
                return Err(ConfigError::OutOfRange {
                    field,
                    reason: "must be finite and at most 1e9 in magnitude",
                });
            }
            if field != "base" && w < 0.0 {
                return Err(ConfigError::OutOfRange {
                    field,
                    reason: "must not be negative",
                });
            }
        }
        Ok(self)
    }

    /// The score in `0..=100`, or `None` when either rate is unknown.
    pub fn score(&self, inputs: &CompositeInputs) -> Option<f64> {
        let s = inputs.success_rate?;
        let a = inputs.acceptance_rate?;
        let raw = self.base + self.success * s - self.failure * (100.0 - s)
            + self.acceptance * a
            + self.tool_volume * (1.0 + inputs.tool_runs as f64).log10();
        Some(raw.clamp(0.0, 100.0))
    }
}
