//! State backends: where the shared counters and windows live.
//!
//! [`MemoryState`] is the embedded default (one process, many threads); the
//! Redis backend (feature `redis`) serves many processes on many machines.
//! Both implement [`StateBackend`], including its coordination operations,
//! each of which is one round trip on a remote backend.

mod backend;
mod lock;
mod memory;
mod memory_config;
mod observation;
mod ops;
mod rule;
mod scope;
mod session_page;

#[cfg(feature = "redis")]
mod redis;

pub use self::backend::StateBackend;
pub(crate) use self::lock::next_generation;
pub use self::lock::{LockOutcome, LockToken};
pub use self::memory::{Footprint, MemoryState};
pub use self::memory_config::MemoryConfig;
pub use self::observation::{Observation, SessionSummary};
pub use self::ops::OpCounts;
pub use self::scope::Scope;
pub use self::session_page::{SessionCursor, SessionPage};

#[cfg(feature = "redis")]
pub use self::redis::RedisState;
#[cfg(feature = "redis")]
pub use crate::redis::RedisConfig;
