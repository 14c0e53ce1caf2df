//! The deterministic simulator behind the `compare` example: W workers, each
//! its own calculator and scheduler, over one shared backend, under load
//! profiles, measuring what each strategy costs and how fresh it keeps the
//! composite.
//!
//! [`Simulator`] runs on virtual time ([`ManualClock`](crate::ManualClock)) and
//! the [`MemoryState`](crate::MemoryState) backend: 10 000 events/s over
//! minutes of simulated time take seconds, and the same seed gives the same
//! numbers. [`RealTimeRunner`] runs the same scenarios on the system clock,
//! each worker on its own thread with its own backend from a
//! [`BackendFactory`], with every duration scaled down. [`Comparison`]
//! renders the runs as the comparison's tables, CSV, JSON and SVG chart, and
//! [`CompareArgs`] parses the `compare` example's command line.
//!
//! ```
//! use std::time::Duration;
//! use composite_metrics::sim::{LoadProfile, SimConfig, Simulator, Strategy};
//!
//! let sim = Simulator::new(SimConfig::default())?;
//! let quiet = LoadProfile::poisson(1.0 / 60.0, Duration::from_secs(3_600));
//! for strategy in Strategy::defaults() {
//!     let report = sim.run(&strategy, &quiet)?;
//!     println!("{:12} {:>8.4} calcs/s", report.strategy_name, report.calcs_per_sec());
//! }
//! # Ok::<(), composite_metrics::sim::SimError>(())
//! ```

mod arrivals;
mod backend_factory;
mod compare_args;
mod event_mix;
mod lag_stats;
mod lane;
mod load_profile;
mod memory_backends;
mod phase;
mod real_time_runner;
mod recorder;
#[cfg(feature = "redis")]
mod redis_backends;
mod report;
mod run_report;
mod sim_config;
mod sim_error;
mod sim_rng;
mod simulator;
mod strategy;

pub use self::arrivals::Arrivals;
pub use self::backend_factory::BackendFactory;
pub use self::compare_args::CompareArgs;
pub use self::event_mix::EventMix;
pub use self::lag_stats::LagStats;
pub(crate) use self::lane::{Lane, LaneOps};
pub use self::load_profile::LoadProfile;
pub use self::memory_backends::MemoryBackends;
pub use self::phase::Phase;
pub use self::real_time_runner::RealTimeRunner;
pub(crate) use self::recorder::Recorder;
#[cfg(feature = "redis")]
pub use self::redis_backends::RedisBackends;
pub use self::report::{Comparison, ProfileRuns, ReportSetup};
pub use self::run_report::RunReport;
pub use self::sim_config::SimConfig;
pub use self::sim_error::SimError;
pub use self::sim_rng::SimRng;
pub use self::simulator::Simulator;
pub use self::strategy::Strategy;
