//! The Redis plumbing (feature `redis`), shared by
//! [`RedisState`](crate::state::RedisState),
//! [`RedisSink`](crate::sink::RedisSink) and
//! [`StreamSource`](crate::ingest::StreamSource): connecting to one server
//! or a cluster (TLS included) within a deadline, calls bounded by one,
//! scripts, packed commands, the namespace's key layout, reply decoding and
//! error mapping.

mod cluster_link;
mod config;
mod deadline;
mod error;
mod keys;
mod link;
mod lua_script;
mod node_link;
mod packed;
mod reply;
mod tls;

pub use self::config::RedisConfig;
pub(crate) use self::error::{server_code, typed};
pub(crate) use self::keys::{Keys, EVENT_ID, SERIES, SESSION, SESSION_DECISIONS, TOOL};
pub(crate) use self::link::Link;
pub(crate) use self::lua_script::LuaScript;
pub(crate) use self::node_link::NodeLink;
pub(crate) use self::packed::{digits, Packed};
pub(crate) use self::reply::{array, at, int, text, uint, unexpected};
