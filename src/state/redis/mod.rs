//! The Redis backend (feature `redis`): [`RedisState`].

mod epoch;
mod mirror;
mod record_plan;
mod redis_state;

pub use self::redis_state::RedisState;
