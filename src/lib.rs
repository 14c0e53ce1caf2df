//! # composite-metrics
//!
//! Derive metrics from AI-coding-assistant telemetry (tool runs, code edits,
//! prompts, sessions) and schedule a costly composite metric, the productivity
//! score, with a pluggable, measured strategy.
//!
//! A host builds a [`MetricsCalculator`] per worker, picks a
//! [`CompositeScheduler`] ([`TimeBased`], [`EventBased`], [`HybridLock`], [`Coalesce`],
//! [`Background`], or [`Never`]), and shares one state backend between
//! workers: [`MemoryState`] in one process, or Redis (feature `redis`) across
//! machines.
//!
//! ```
//! use composite_metrics::{Event, HybridLock, MemoryState, MetricsCalculator};
//!
//! let state = MemoryState::new();
//! let mut worker = MetricsCalculator::builder()
//!     .state(state.clone())
//!     .scheduler(HybridLock::default())
//!     .build()?;
//! let line = r#"{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:00Z",
//!               "tool_name":"bash","duration_ms":42,"payload":{"success":true}}"#;
//! let metrics = worker.process_json(line)?;
//! assert!(metrics.iter().any(|m| m.full_name() == "tools/tool_latency_p50"));
//! # Ok::<(), composite_metrics::Error>(())
//! ```
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod calculator;
pub mod clock;
pub mod config;
mod error;
pub mod event;
pub mod ingest;
pub mod metric;
#[cfg(feature = "redis")]
mod redis;
pub mod schedule;
pub mod score;
pub mod sim;
pub mod sink;
pub mod state;
pub mod telemetry;
pub mod window;

pub use crate::calculator::{Builder, Delivery, MetricsCalculator, Stats, TimeSource};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::error::{BackendError, ConfigError, Error, EventError, SinkError};
pub use crate::event::{Event, EventType, Payload};
pub use crate::ingest::{Batcher, BatcherConfig};
pub use crate::metric::{Category, Metric};
pub use crate::schedule::{
    Background, BackgroundConfig, Coalesce, CoalesceConfig, CompositeScheduler, CompositeScope,
    EventBased, HybridLock, HybridLockConfig, Never, TimeBased,
};
pub use crate::score::{CompositeInputs, ScoreWeights};
#[cfg(feature = "redis")]
pub use crate::sink::RedisSink;
pub use crate::sink::{CallbackSink, MemorySink, MetricSink};
pub use crate::state::{MemoryState, StateBackend};
#[cfg(feature = "redis")]
pub use crate::state::{RedisConfig, RedisState};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
