//! The way to a Redis Cluster: the `redis` crate's cluster connection,
//! driven here so that every call keeps the configured deadline.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use ::redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use ::redis::{Cmd, ConnectionLike, ErrorKind, RedisError, ServerErrorKind, Value};
use parking_lot::Mutex;

use super::deadline::{connect_within, keeps, left};
use super::error::{breaks_connection, closed_by_server, map_error, map_reply_error};
use super::lua_script::LuaScript;
use super::tls;
use super::RedisConfig;
use crate::error::{BackendError, ConfigError};

/// The first pause before retrying a request the cluster answered with
/// `TRYAGAIN` or `CLUSTERDOWN`; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
/// The longest pause between two retries of one request.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// A Redis Cluster, through the `redis` crate's synchronous cluster
/// connection (one connection per primary, requests routed by key slot).
///
/// The library's own retries are turned off (`retries(0)`): every
/// redirection and retry happens here, under the call's deadline
/// (`connect_timeout + read_timeout` from its start, as for one server):
///
/// - `ASK` (the slot is migrating and the keys are on the target): the
///   request is sent again to the node named, after `ASKING`.
/// - `MOVED` (the slot has a new owner): the cluster connection is rebuilt
///   (which reads the slot map again), and the request is sent again.
/// - `TRYAGAIN` (a multi-key request while its slot migrates and its keys are
///   split between the two nodes) and `CLUSTERDOWN`: the request is sent
///   again after a pause (2 ms, doubling, at most 50 ms), while the deadline
///   allows; past it the call fails with [`BackendError::Timeout`] (nothing
///   was applied).
/// - `NOSCRIPT`: the script is sent with `EVAL` to the same node.
///
/// Before each request the sockets' read and write timeouts are set to what
/// is left of the deadline (capped by `read_timeout` and `write_timeout`),
/// so no reply is waited for past the deadline. An I/O error or a timeout
/// drops the whole cluster connection; the next call rebuilds it.
pub(crate) struct ClusterLink {
    client: ClusterClient,
    config: RedisConfig,
    con: Mutex<Option<Open>>,
    reconnects: AtomicU64,
}

impl fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterLink")
            .field("reconnects", &self.reconnects.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An open cluster connection and the socket timeouts last set on it.
struct Open {
    con: ClusterConnection,
    read: Option<Duration>,
    write: Option<Duration>,
}

impl Open {
    /// Bounds the next request's waits by `deadline`.
    fn bound(&mut self, deadline: Instant, config: &RedisConfig) -> Result<(), RedisError> {
        let d = left(deadline)?;
        let read = d.min(config.read_timeout());
        let write = d.min(config.write_timeout());
        if !keeps(self.read, read) {
            self.con.set_read_timeout(Some(read))?;
            self.read = Some(read);
        }
        if !keeps(self.write, write) {
            self.con.set_write_timeout(Some(write))?;
            self.write = Some(write);
        }
        Ok(())
    }
}

/// Where a request goes: by its key's slot, or to the node an `ASK` named.
enum Target {
    Slot,
    Ask { host: String, port: u16 },
}

impl ClusterLink {
    /// Checks the configuration and `seeds`, connects to the cluster (one
    /// seed answering is enough; the slot map names the other primaries) and
    /// loads `scripts` on every primary, all within `connect_timeout`.
    pub(crate) fn open(
        seeds: &[&str],
        config: RedisConfig,
        scripts: &[&LuaScript],
    ) -> Result<Self, BackendError> {
        const OP: &str = "connect";
        let deadline = Instant::now() + config.connect_timeout();
        config.validate().map_err(BackendError::InvalidConfig)?;
        if seeds.is_empty() {
            return Err(BackendError::InvalidConfig(ConfigError::OutOfRange {
                field: "seed_urls",
                reason: "at least one seed node URL is needed",
            }));
        }
        let tls_files = tls::uses_files(seeds, &config)?;
        let builder = ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(config.connect_timeout())
            .response_timeout(config.read_timeout())
            .retries(0);
        #[cfg(feature = "tls")]
        let builder = if tls_files {
            builder.certs(tls::certificates(&config)?)
        } else {
            builder
        };
        #[cfg(not(feature = "tls"))]
        let _ = tls_files;
        let client = builder.build().map_err(|e| map_error(OP, e))?;
        let link = Self {
            client,
            config,
            con: Mutex::new(None),
            reconnects: AtomicU64::new(0),
        };
        let bodies: Vec<&'static str> = scripts.iter().map(|s| s.body()).collect();
        let open = link.connect(deadline, bodies)?;
        *link.con.lock() = Some(open);
        Ok(link)
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// How many times the cluster connection was rebuilt (after a failure
    /// or a `MOVED`).
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Builds a cluster connection (and loads `scripts` on every primary) on
    /// a helper thread, which the caller stops waiting for at `deadline`.
    /// An abandoned attempt's thread ends when the library gives up.
    fn connect(&self, deadline: Instant, scripts: Vec<&'static str>) -> Result<Open, BackendError> {
        let client = self.client.clone();
        let write = self.config.write_timeout();
        let con = connect_within("cm-redis-cluster-connect", deadline, move |_| {
            let mut con = client.get_connection()?;
            con.set_write_timeout(Some(write))?;
            let all = RoutingInfo::MultiNode((
                MultipleNodeRoutingInfo::AllMasters,
                Some(ResponsePolicy::AllSucceeded),
            ));
            for body in scripts {
                let mut load = ::redis::cmd("SCRIPT");
                load.arg("LOAD").arg(body);
                con.route_command(&load, all.clone())?;
            }
            Ok(con)
        })?;
        Ok(Open {
            con,
            read: None,
            write: Some(write),
        })
    }

    /// Runs a script with `EVALSHA`, routed by the slot of `keys[0]` (all of
    /// a namespace's keys share one slot), following redirections and
    /// retrying `TRYAGAIN` under the call's deadline (see the type's docs).
    pub(crate) fn eval(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        script: &LuaScript,
        keys: &[&str],
        args: &dyn Fn(&mut Cmd),
    ) -> Result<Value, BackendError> {
        self.call(op, trips, &script.cmd(true, keys, args), &|| {
            script.cmd(false, keys, args)
        })
    }

    /// Runs a script from its `EVALSHA` command, as [`eval`](Self::eval)
    /// does; `eval` builds the `EVAL` command, sent after `NOSCRIPT`.
    pub(crate) fn call(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        evalsha: &Cmd,
        eval: &dyn Fn() -> Cmd,
    ) -> Result<Value, BackendError> {
        let deadline = Instant::now() + self.config.connect_timeout() + self.config.read_timeout();
        let Some(mut guard) = self.con.try_lock_until(deadline) else {
            return Err(BackendError::Timeout { op });
        };
        let mut target = Target::Slot;
        let mut backoff = FIRST_BACKOFF;
        let mut retried = false;
        loop {
            let fresh = guard.is_none();
            let open = match guard.as_mut() {
                Some(open) => open,
                None => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    let connect_deadline =
                        (Instant::now() + self.config.connect_timeout()).min(deadline);
                    guard.insert(self.connect(connect_deadline, Vec::new())?)
                }
            };
            let result = self.attempt(open, deadline, trips, &target, evalsha, eval);
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match e.kind() {
                ErrorKind::Server(ServerErrorKind::Ask) => {
                    target = match e.redirect_node().and_then(|(a, _)| a.rsplit_once(':')) {
                        Some((host, port)) => match port.parse() {
                            Ok(port) => Target::Ask {
                                host: host.to_owned(),
                                port,
                            },
                            Err(_) => return Err(self.map(op, e)),
                        },
                        None => return Err(self.map(op, e)),
                    };
                }
                ErrorKind::Server(ServerErrorKind::Moved) => {
                    // The slot map is stale: rebuild the connection (which
                    // reads it again) and send the request by slot.
                    *guard = None;
                    target = Target::Slot;
                }
                ErrorKind::Server(ServerErrorKind::TryAgain | ServerErrorKind::ClusterDown) => {
                    target = Target::Slot;
                    if Instant::now() + backoff >= deadline {
                        return Err(BackendError::Timeout { op });
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                _ => {
                    let broken = breaks_connection(&e);
                    if broken {
                        *guard = None;
                    }
                    if broken && closed_by_server(&e) && !fresh && !retried {
                        retried = true;
                        target = Target::Slot;
                        continue;
                    }
                    return Err(self.map(op, e));
                }
            }
            if left(deadline).is_err() {
                return Err(BackendError::Timeout { op });
            }
        }
    }

    /// One try of a request: `EVALSHA` (after `ASKING` when redirected by
    /// `ASK`), then `EVAL` on `NOSCRIPT`, each reply waited for at most
    /// until `deadline`.
    fn attempt(
        &self,
        open: &mut Open,
        deadline: Instant,
        trips: &AtomicU64,
        target: &Target,
        evalsha: &Cmd,
        eval: &dyn Fn() -> Cmd,
    ) -> Result<Value, RedisError> {
        let send = |open: &mut Open, cmd: &Cmd| -> Result<Value, RedisError> {
            open.bound(deadline, &self.config)?;
            trips.fetch_add(1, Ordering::Relaxed);
            match target {
                Target::Slot => open.con.req_command(cmd),
                Target::Ask { host, port } => {
                    let node = || {
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        })
                    };
                    open.con.route_command(&::redis::cmd("ASKING"), node())?;
                    open.con.route_command(cmd, node())
                }
            }
        };
        match send(open, evalsha) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                send(open, &eval())
            }
            other => other,
        }
    }

    fn map(&self, op: &'static str, e: RedisError) -> BackendError {
        map_reply_error(&self.config, op, e)
    }
}
