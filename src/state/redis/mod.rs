//! The Redis backend (feature `redis`): [`RedisState`] and its [`RedisConfig`].

mod cluster_link;
mod config;
mod epoch;
mod keys;
mod link;
mod mirror;
mod record_plan;
mod redis_state;
mod reply;
mod resp;
mod script_error;

pub use self::config::RedisConfig;
pub(crate) use self::keys::Keys;
pub(crate) use self::link::{map_error, Link, LuaScript};
pub use self::redis_state::RedisState;
pub(crate) use self::reply::unexpected;
