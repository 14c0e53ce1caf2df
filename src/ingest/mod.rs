//! Feeding events: an auto-batching handle ([`Batcher`]) for in-process
//! producers and, with feature `redis`, a Redis Streams consumer
//! (`StreamSource`).

mod batcher;
mod batcher_config;
mod batcher_stats;
mod ingest_error;
mod queue;
mod reply;
mod send_future;

pub use self::batcher::Batcher;
pub use self::batcher_config::BatcherConfig;
pub use self::batcher_stats::BatcherStats;
pub use self::ingest_error::{IngestError, SendError, TrySendError};
pub use self::reply::{Applied, EventResult, Reply};
pub use self::send_future::{SendFuture, SendReplyFuture};

#[cfg(feature = "redis")]
mod entry_error;
#[cfg(feature = "redis")]
mod stream_config;
#[cfg(feature = "redis")]
mod stream_entry;
#[cfg(feature = "redis")]
mod stream_gauges;
#[cfg(feature = "redis")]
mod stream_source;
#[cfg(feature = "redis")]
mod stream_stats;

#[cfg(feature = "redis")]
pub use self::entry_error::EntryError;
#[cfg(feature = "redis")]
pub use self::stream_config::StreamConfig;
#[cfg(all(feature = "redis", feature = "metrics"))]
pub use self::stream_gauges::{
    STREAM_DEAD_LETTER_LENGTH, STREAM_OLDEST_UNACKED_SECONDS, STREAM_PENDING, STREAM_UNDELIVERED,
};
#[cfg(feature = "redis")]
pub use self::stream_source::StreamSource;
#[cfg(feature = "redis")]
pub use self::stream_stats::StreamStats;
