use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::{
    Client, Cmd, Connection, ConnectionLike, ErrorKind, RedisError, ServerErrorKind, Value,
};
use parking_lot::Mutex;

use super::RedisConfig;
use crate::error::BackendError;

/// A Lua script: its body and SHA1, run with `EVALSHA`, falling back to
/// `EVAL` (which also caches it again) when the server answers `NOSCRIPT`
/// (after `SCRIPT FLUSH` or a restart).
pub(crate) struct LuaScript {
    body: &'static str,
    sha: String,
}

impl fmt::Debug for LuaScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LuaScript").field("sha", &self.sha).finish()
    }
}

impl LuaScript {
    pub(crate) fn new(body: &'static str) -> Self {
        Self {
            body,
            sha: ::redis::Script::new(body).get_hash().to_owned(),
        }
    }
}

/// One connection to Redis, opened lazily and reopened after a failure.
///
/// Requests are serialised on the connection. A request that times out or
/// breaks the connection drops it; the next request opens a new one. A
/// request on a reused connection that the server had closed (a restart, an
/// idle timeout) is retried once on a new connection.
pub(crate) struct Link {
    client: Client,
    config: RedisConfig,
    con: Mutex<Option<Connection>>,
    reconnects: AtomicU64,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field(
                "server",
                &self.client.get_connection_info().addr().to_string(),
            )
            .field("reconnects", &self.reconnects.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Parses `url` and connects once, so a wrong address fails here.
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        config.validate().map_err(BackendError::InvalidConfig)?;
        let client = Client::open(url).map_err(|e| map_error("connect", e))?;
        let link = Self {
            client,
            config,
            con: Mutex::new(None),
            reconnects: AtomicU64::new(0),
        };
        *link.con.lock() = Some(link.connect()?);
        Ok(link)
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// How many times a connection was reopened.
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    fn connect(&self) -> Result<Connection, BackendError> {
        let op = "connect";
        let con = self
            .client
            .get_connection_with_timeout(self.config.connect_timeout())
            .map_err(|e| map_error(op, e))?;
        con.set_read_timeout(Some(self.config.read_timeout()))
            .map_err(|e| map_error(op, e))?;
        con.set_write_timeout(Some(self.config.write_timeout()))
            .map_err(|e| map_error(op, e))?;
        Ok(con)
    }

    /// Runs `f` on the connection; `f` adds one to its counter per round trip.
    fn run<T>(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        mut f: impl FnMut(&mut Connection, &AtomicU64) -> Result<T, RedisError>,
    ) -> Result<T, BackendError> {
        let mut guard = self.con.lock();
        let mut retried = false;
        loop {
            let fresh = guard.is_none();
            let con = match guard.as_mut() {
                Some(con) => con,
                None => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    guard.insert(self.connect()?)
                }
            };
            match f(con, trips) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let broken = e.is_timeout()
                        || e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                        || !con.is_open();
                    if broken {
                        *guard = None;
                    }
                    let closed_by_server = e.is_connection_dropped() && !e.is_timeout();
                    if broken && closed_by_server && !fresh && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(self.map(op, e));
                }
            }
        }
    }

    /// Runs a pipeline, one round trip.
    #[allow(dead_code)] // RedisSink, its last user, now records with a script.
    pub(crate) fn pipeline(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        pipe: &::redis::Pipeline,
    ) -> Result<(), BackendError> {
        self.run(op, trips, |con, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            pipe.query::<()>(con)
        })
    }

    /// Runs a script with `EVALSHA`: one round trip, two after the server
    /// lost its script cache. `args` appends the script's arguments.
    pub(crate) fn eval(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        script: &LuaScript,
        keys: &[&str],
        args: &dyn Fn(&mut Cmd),
    ) -> Result<Value, BackendError> {
        let build = |name: &str, first: &str| {
            let mut cmd = ::redis::cmd(name);
            cmd.arg(first).arg(keys.len()).arg(keys);
            args(&mut cmd);
            cmd
        };
        let evalsha = build("EVALSHA", &script.sha);
        self.run(op, trips, |con, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            match evalsha.query::<Value>(con) {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    trips.fetch_add(1, Ordering::Relaxed);
                    build("EVAL", script.body).query::<Value>(con)
                }
                other => other,
            }
        })
    }

    fn map(&self, op: &'static str, e: RedisError) -> BackendError {
        if e.code() == Some(CAPACITY) {
            return match e.detail() {
                Some(d) if d.starts_with("tools") => BackendError::CapacityExceeded {
                    what: "tool names",
                    limit: self.config.max_tools(),
                },
                _ => BackendError::CapacityExceeded {
                    what: "sessions",
                    limit: self.config.max_sessions(),
                },
            };
        }
        map_error(op, e)
    }
}

/// The error code the record script answers when a limit would be exceeded.
const CAPACITY: &str = "CMCAPACITY";

/// Maps a client error to the crate's backend error.
pub(crate) fn map_error(op: &'static str, e: RedisError) -> BackendError {
    if e.is_timeout() {
        BackendError::Timeout { op }
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        BackendError::Connection {
            op,
            source: Box::new(e),
        }
    } else {
        BackendError::Other {
            op,
            source: Box::new(e),
        }
    }
}
