//! Feeding events: an auto-batching handle ([`Batcher`]) for in-process
//! producers and, with feature `redis`, a Redis Streams consumer
//! (`StreamSource`).

mod applied;
mod batcher;
mod batcher_config;
mod batcher_stats;
mod ingest_error;
mod queue;
mod reply;
mod send_future;

pub use self::applied::Applied;
pub use self::batcher::Batcher;
pub use self::batcher_config::BatcherConfig;
pub use self::batcher_stats::BatcherStats;
pub use self::ingest_error::{IngestError, SendError, TrySendError};
pub use self::reply::{EventResult, Reply};
pub use self::send_future::{SendFuture, SendReplyFuture};
