//! Metric sinks: where the calculator records the metrics it computes.

mod callback_sink;
mod fenced;
mod memory_sink;
mod metric_sink;
#[cfg(feature = "metrics")]
mod metrics_sink;
mod points;
#[cfg(feature = "redis")]
mod redis_sink;
mod series_key;

pub use self::callback_sink::CallbackSink;
pub use self::fenced::Fenced;
pub use self::memory_sink::MemorySink;
pub use self::metric_sink::MetricSink;
#[cfg(feature = "metrics")]
pub use self::metrics_sink::MetricsSink;
pub(crate) use self::points::Points;
#[cfg(feature = "redis")]
pub use self::redis_sink::RedisSink;
pub use self::series_key::SeriesKey;
