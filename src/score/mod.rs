//! The composite productivity score.

mod inputs;
mod weights;

pub use self::inputs::CompositeInputs;
pub use self::weights::ScoreWeights;
