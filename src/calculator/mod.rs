//! The calculator hosts embed: events in, metrics out, composite on schedule.

mod builder;
mod emit;
mod metrics_calculator;
mod stats;
mod time_source;

pub use self::builder::Builder;
pub use self::metrics_calculator::{Delivery, MetricsCalculator};
pub use self::stats::Stats;
pub use self::time_source::TimeSource;
