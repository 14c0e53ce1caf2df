//! The way to Redis of a state or a sink: one server, or a cluster.

use std::sync::atomic::AtomicU64;

use ::redis::{Cmd, Value};

use super::cluster_link::ClusterLink;
use super::lua_script::LuaScript;
use super::node_link::NodeLink;
use super::packed::Packed;
use super::reply::unexpected;
use super::RedisConfig;
use crate::error::BackendError;

/// The way to Redis of a [`RedisState`](crate::state::RedisState) or a
/// [`RedisSink`](crate::sink::RedisSink): one server, or a Redis Cluster.
#[derive(Debug)]
// One `Link` per state or sink, built once: the single-server variant is
// kept inline (no indirection on the event path), the cluster one boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Link {
    /// One server (or a proxy in front of many).
    Node(NodeLink),
    /// A Redis Cluster, routed by key slot (boxed: the cluster client is
    /// large, and one server is the common case).
    Cluster(Box<ClusterLink>),
}

impl Link {
    /// One server at `url` (see [`NodeLink::open`]).
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        NodeLink::open(url, config).map(Self::Node)
    }

    /// A cluster reached through `seeds` (see [`ClusterLink::open`]);
    /// `scripts` are loaded on every primary.
    pub(crate) fn open_cluster(
        seeds: &[&str],
        config: RedisConfig,
        scripts: &[&LuaScript],
    ) -> Result<Self, BackendError> {
        ClusterLink::open(seeds, config, scripts).map(|l| Self::Cluster(Box::new(l)))
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        match self {
            Self::Node(l) => l.config(),
            Self::Cluster(l) => l.config(),
        }
    }

    /// How many times a connection was reopened.
    pub(crate) fn reconnects(&self) -> u64 {
        match self {
            Self::Node(l) => l.reconnects(),
            Self::Cluster(l) => l.reconnects(),
        }
    }

    /// An empty buffer to pack commands for [`eval_packed`](Self::eval_packed):
    /// for a cluster, one that also keeps where each argument lies.
    pub(crate) fn packed(&self) -> Packed {
        match self {
            Self::Node(_) => Packed::default(),
            Self::Cluster(_) => Packed::for_cluster(),
        }
    }

    /// Runs a script with `EVALSHA` (`EVAL` after `NOSCRIPT`); `args`
    /// appends the script's arguments. One round trip on the usual path.
    pub(crate) fn eval(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        script: &LuaScript,
        keys: &[&str],
        args: &dyn Fn(&mut Cmd),
    ) -> Result<Value, BackendError> {
        match self {
            Self::Node(l) => l.eval(op, trips, script, keys, args),
            Self::Cluster(l) => l.eval(op, trips, script, keys, args),
        }
    }

    /// Runs `script` with the `EVALSHA` command in `packed` (whose head
    /// [`Packed::head_evalsha`] wrote): on one server the packed bytes are
    /// sent as they are; on a cluster the command is built from the
    /// arguments `packed` kept (it must come from [`packed`](Self::packed))
    /// and routed by key slot as [`eval`](Self::eval) does.
    pub(crate) fn eval_packed(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        script: &LuaScript,
        packed: &Packed,
    ) -> Result<Value, BackendError> {
        match self {
            Self::Node(l) => {
                l.eval_packed(op, trips, packed.command(), &|| packed.eval(script.body()))
            }
            Self::Cluster(l) => {
                let Some(evalsha) = packed.cmd("EVALSHA", script.sha()) else {
                    return Err(unexpected(
                        op,
                        "a command packed without its arguments' places",
                    ));
                };
                // `packed` kept its arguments' places (checked above), so
                // `cmd` gives the `EVAL` command too; `evalsha` is only a
                // fallback the server answers `NOSCRIPT` to again.
                l.call(op, trips, &evalsha, &|| {
                    packed
                        .cmd("EVAL", script.body())
                        .unwrap_or_else(|| evalsha.clone())
                })
            }
        }
    }
}
