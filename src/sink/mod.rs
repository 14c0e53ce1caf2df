//! Metric sinks: where the calculator records the metrics it computes.

mod callback;
mod memory;
mod series_key;
mod metric_sink;

pub use self::callback::CallbackSink;
pub use self::memory::MemorySink;
pub use self::series_key::SeriesKey;
pub use self::metric_sink::MetricSink;
