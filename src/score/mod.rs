//! The composite productivity score.

mod composite_inputs;
mod score_weights;

pub use self::composite_inputs::CompositeInputs;
pub use self::score_weights::ScoreWeights;
