//! The crate's own health and the export of its metrics through the
//! [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! With the feature, calculators and schedulers report:
//!
//! | series | kind | labels |
//! |---|---|---|
//! | `composite_metrics_decisions_total` | counter | `strategy`, `outcome` (`compute`, `skip`, `error`) |
//! | `composite_metrics_lock_total` | counter | `strategy`, `result` (`acquired`, `refused`, `lost`) |
//! | `composite_metrics_calculations_total` | counter | `strategy`, `trigger` (`event`, `compute_now`, `timer`) |
//! | `composite_metrics_calculation_seconds` | histogram | none |
//! | `composite_metrics_seconds_since_last_calculation` | gauge | none |
//! | `composite_metrics_backend_errors_total` | counter | `kind` |
//! | `composite_metrics_sink_errors_total` | counter | `sink` |
//! | `composite_metrics_tool_runs_total` | counter | `tool` |
//! | `composite_metrics_tool_successes_total` | counter | `tool` |
//! | `composite_metrics_tool_failures_total` | counter | `tool` |
//!
//! and `sink::MetricsSink` exports the derived metrics.
//! Each calculator counts its skip decisions locally and publishes them, with
//! the staleness gauge, at most once per second of its clock (also every 256
//! skips, at each decision to compute, and when it is dropped), so the event
//! path writes no shared memory per event. Named tool runs and their
//! explicit outcomes are counted per tool the same way, and added to the
//! tool counters when the staleness gauge is published and when the
//! calculator is dropped (see [`names::TOOL_RUNS`] for the PromQL of a share
//! and a success rate).
//! Handles are registered with the recorder that is current when a
//! calculator (or sink) is built: install the recorder first, then call
//! `describe()` and build. Without the feature every emission compiles to
//! nothing.

#[cfg(feature = "metrics")]
mod describe;
mod health;
#[cfg(feature = "metrics")]
pub mod names;

#[cfg(feature = "metrics")]
pub use self::describe::describe;
pub(crate) use self::health::{
    backend_error, lease_lost, lock_attempt, sink_error, CalculationTimer, CalculatorTelemetry,
    TimerCalculations,
};
