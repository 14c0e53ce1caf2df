//! The stream lag and the dead-letter stream's length as gauges of the `metrics` facade (feature `metrics`);
//! compiles to nothing without it.

use super::{StreamConfig, StreamStats};

/// Entries delivered to the group and not acknowledged, a gauge labelled
/// `stream` and `group`.
#[cfg(feature = "metrics")]
pub const STREAM_PENDING: &str = "composite_metrics_stream_pending";
/// Entries not yet delivered to the group (absent when Redis cannot tell),
/// a gauge labelled `stream` and `group`.
#[cfg(feature = "metrics")]
pub const STREAM_UNDELIVERED: &str = "composite_metrics_stream_undelivered";
/// Age in seconds of the oldest unacknowledged entry (0 when none), a gauge
/// labelled `stream` and `group`.
#[cfg(feature = "metrics")]
pub const STREAM_OLDEST_UNACKED_SECONDS: &str = "composite_metrics_stream_oldest_unacked_seconds";
/// Entries in the dead-letter stream (`XLEN`, bounded by
/// `dead_letter_max_len`), a gauge labelled `stream` (the stream read, not
/// the dead-letter stream) and `group`.
#[cfg(feature = "metrics")]
pub const STREAM_DEAD_LETTER_LENGTH: &str = "composite_metrics_stream_dead_letter_length";

#[cfg(feature = "metrics")]
pub(crate) fn publish(config: &StreamConfig, stats: &StreamStats) {
    let labels = [
        ("stream", config.stream().to_owned()),
        ("group", config.group().to_owned()),
    ];
    metrics::gauge!(STREAM_PENDING, &labels).set(stats.pending as f64);
    if let Some(n) = stats.undelivered {
        metrics::gauge!(STREAM_UNDELIVERED, &labels).set(n as f64);
    }
    let age = stats.oldest_unacked_age.map_or(0.0, |a| a.as_secs_f64());
    metrics::gauge!(STREAM_OLDEST_UNACKED_SECONDS, &labels).set(age);
    metrics::gauge!(STREAM_DEAD_LETTER_LENGTH, &labels).set(stats.dead_letter_len as f64);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn publish(_config: &StreamConfig, _stats: &StreamStats) {}
