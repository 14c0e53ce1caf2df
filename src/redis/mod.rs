//! The Redis plumbing (feature `redis`), shared by
//! [`RedisState`](crate::state::RedisState),
//! [`RedisSink`](crate::sink::RedisSink) and
//! [`StreamSource`](crate::ingest::StreamSource): connecting to one server
//! or a cluster (TLS included) within a deadline, calls bounded by one,
//! scripts, packed commands, the namespace's key layout, reply decoding and
//! error mapping.

mod cluster;
mod config;
mod deadline;
mod error;
mod keys;
mod link;
mod node;
mod packed;
mod reply;
mod script;
mod tls;

pub use self::config::RedisConfig;
pub(crate) use self::error::{server_code, typed};
pub(crate) use self::keys::{Keys, EVENT_ID, SERIES, SESSION, SESSION_DECISIONS, TOOL};
pub(crate) use self::link::Link;
pub(crate) use self::node::NodeLink;
pub(crate) use self::packed::{digits, Packed};
pub(crate) use self::reply::{array, at, int, text, uint, unexpected};
pub(crate) use self::script::LuaScript;
