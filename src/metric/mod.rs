//! The metrics the calculator emits, with the pipeline's names and categories.

mod category;
mod metric_value;
pub mod names;

pub use self::category::Category;
pub use self::metric_value::Metric;
