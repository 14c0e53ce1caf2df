//! Metric sinks: where the calculator records the metrics it computes.

mod callback;
mod memory;
mod metric_sink;
mod series_key;

pub use self::callback::CallbackSink;
pub use self::memory::MemorySink;
pub use self::metric_sink::MetricSink;
pub use self::series_key::SeriesKey;
