//! Metric sinks: where the calculator records the metrics it computes.

mod callback;
mod fenced;
mod memory;
mod metric_sink;
#[cfg(feature = "metrics")]
mod metrics_export;
mod points;
#[cfg(feature = "redis")]
mod redis;
mod series_key;

pub use self::callback::CallbackSink;
pub use self::fenced::Fenced;
pub use self::memory::MemorySink;
pub use self::metric_sink::MetricSink;
#[cfg(feature = "metrics")]
pub use self::metrics_export::MetricsSink;
pub(crate) use self::points::Points;
#[cfg(feature = "redis")]
pub use self::redis::RedisSink;
pub use self::series_key::SeriesKey;
