//! The metrics the calculator emits, with the pipeline's names and categories.

mod category;
// A file holds the type it is named after, here as elsewhere.
#[allow(clippy::module_inception)]
mod metric;
pub mod names;

pub use self::category::Category;
pub use self::metric::Metric;
