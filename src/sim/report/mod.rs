//! The comparison's report: the runs of every strategy on every load profile
//! ([`Comparison`]), rendered as Markdown tables, CSV, JSON and an SVG chart,
//! one format per file. The `compare` example prints and writes these; a host
//! can render its own runs the same way.

mod comparison;
mod csv;
mod format;
mod json;
mod profile_runs;
mod report_setup;
mod svg;
mod tables;

pub use self::comparison::Comparison;
pub use self::profile_runs::ProfileRuns;
pub use self::report_setup::ReportSetup;
