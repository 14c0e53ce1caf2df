//! State backends: where the shared counters and windows live.
//!
//! [`MemoryState`] is the embedded default (one process, many threads); the
//! Redis backend (feature `redis`) serves many processes on many machines.
//! Both implement [`StateBackend`], including its coordination operations,
//! each of which is one round trip on a remote backend.

mod lock_outcome;
mod lock_token;
mod memory_config;
mod memory_state;
mod observation;
mod op_counts;
mod rule;
mod scope;
mod session_page;
mod state_backend;

#[cfg(feature = "redis")]
mod redis;

pub(crate) use self::lock_outcome::next_generation;
pub use self::lock_outcome::LockOutcome;
pub use self::lock_token::LockToken;
pub use self::memory_config::MemoryConfig;
pub use self::memory_state::{Footprint, MemoryState};
pub use self::observation::{Observation, SessionSummary};
pub use self::op_counts::OpCounts;
pub use self::scope::Scope;
pub use self::session_page::{SessionCursor, SessionPage};
pub use self::state_backend::StateBackend;

#[cfg(feature = "redis")]
pub use self::redis::RedisState;
#[cfg(feature = "redis")]
pub use crate::redis::RedisConfig;
