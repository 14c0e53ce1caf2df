//! The way to one Redis server (or a proxy in front of many).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::{
    Client, Cmd, Connection, ConnectionLike, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisConnectionInfo, RedisError, ServerErrorKind, Value,
};
use parking_lot::Mutex;

use super::deadline::{connect_within, keeps, left};
use super::error::{breaks_connection, closed_by_server, map_error, map_reply_error};
use super::lua_script::LuaScript;
use super::reply::unexpected;
use super::tls;
use super::RedisConfig;
use crate::error::BackendError;

/// One connection to Redis, opened lazily and reopened after a failure.
///
/// Requests are serialised on the connection. A request that times out or
/// breaks the connection drops it; the next request opens a new one. A
/// request on a reused connection that the server had closed (a restart, an
/// idle timeout) is retried once on a new connection.
///
/// Every call runs against one deadline (see [`RedisConfig`]'s "Timeouts"):
/// `connect_timeout + read_timeout` from its start for the whole call, at
/// most `connect_timeout` of it for opening a connection, and at most
/// `read_timeout` for each request (send and reply). The socket timeouts are
/// set to what is left of the deadline before each send and each reply, so
/// a request made of several replies (a pipeline, `NOSCRIPT` then `EVAL`)
/// cannot wait a full timeout per reply.
///
/// The client library's own handshake is not used (it waits its timeout
/// again for each reply of its setup pipeline): the library only opens the
/// socket, on a helper thread that the caller stops waiting for at the
/// deadline, and `AUTH`, `SELECT`, a `PING` and the caller's setup command
/// (if any) are sent here as one pipeline under the deadline.
pub(crate) struct NodeLink {
    /// Opens sockets only: no credentials, database 0, no `CLIENT SETINFO`.
    client: Client,
    /// `AUTH [user] password`, `SELECT db` (if not 0), `PING` and the setup
    /// command, packed.
    handshake: Vec<u8>,
    /// How many replies `handshake` gets; the first is `AUTH`'s if `auth`.
    handshake_replies: usize,
    auth: bool,
    /// The error code accepted from the setup command, the handshake's last.
    setup_accepts: Option<&'static str>,
    config: RedisConfig,
    con: Mutex<Option<Open>>,
    reconnects: AtomicU64,
}

impl fmt::Debug for NodeLink {
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

/// An open connection and the socket timeouts last set on it (`None`:
/// unknown or unbounded, so the next use sets them).
struct Open {
    con: Connection,
    read: Option<Duration>,
    write: Option<Duration>,
}

impl Open {
    fn set_read(&mut self, want: Duration) -> Result<(), RedisError> {
        if !keeps(self.read, want) {
            self.con.set_read_timeout(Some(want))?;
            self.read = Some(want);
        }
        Ok(())
    }

    fn set_write(&mut self, want: Duration) -> Result<(), RedisError> {
        if !keeps(self.write, want) {
            self.con.set_write_timeout(Some(want))?;
            self.write = Some(want);
        }
        Ok(())
    }
}

/// One request on an open connection, bounded by a deadline.
struct Exchange<'a> {
    open: &'a mut Open,
    deadline: Instant,
    write_timeout: Duration,
}

impl Exchange<'_> {
    /// Sends `bytes` (one or more packed commands). The read timeout is set
    /// too: over TLS a write can read (the handshake, on the first send of
    /// a new connection, whose socket comes without timeouts).
    fn send(&mut self, bytes: &[u8]) -> Result<(), RedisError> {
        let d = left(self.deadline)?;
        self.open.set_write(d.min(self.write_timeout))?;
        self.open.set_read(d)?;
        self.open.con.send_packed_command(bytes)
    }

    /// Reads one reply; an error reply (at any depth) is returned as `Err`.
    fn recv(&mut self) -> Result<Value, RedisError> {
        let d = left(self.deadline)?;
        self.open.set_read(d)?;
        self.open.con.recv_response()?.extract_error()
    }

    /// Sends `bytes` and reads `replies` replies; the first error reply is
    /// returned after all replies were read (so the connection stays in
    /// step), an I/O error at once.
    fn send_recv_all(&mut self, bytes: &[u8], replies: usize) -> Result<Vec<Value>, RedisError> {
        self.send(bytes)?;
        let mut out = Vec::with_capacity(replies);
        let mut first_err = None;
        for _ in 0..replies {
            match self.recv() {
                Ok(v) => out.push(v),
                Err(e) if e.is_io_error() || e.is_timeout() => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(out), Err)
    }
}

impl NodeLink {
    /// Parses `url` and connects once, so a wrong address, wrong
    /// credentials or a certificate problem fail here, within the connect
    /// timeout.
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        Self::open_with_setup(url, config, None)
    }

    /// [`open`](Self::open), with `setup` sent after the handshake on every
    /// new connection, under its deadline: a command and the error code
    /// accepted from it (e.g. `XGROUP CREATE` and `BUSYGROUP`).
    pub(crate) fn open_with_setup(
        url: &str,
        config: RedisConfig,
        setup: Option<(&Cmd, &'static str)>,
    ) -> Result<Self, BackendError> {
        const OP: &str = "connect";
        let deadline = Instant::now() + config.connect_timeout();
        config.validate().map_err(BackendError::InvalidConfig)?;
        let tls_files = tls::uses_files(&[url], &config)?;
        let info = url.into_connection_info().map_err(|e| map_error(OP, e))?;
        let redis = info.redis_settings();
        let mut handshake = Vec::new();
        let mut replies = 0;
        let auth = redis.password().is_some();
        if let Some(password) = redis.password() {
            let mut cmd = ::redis::cmd("AUTH");
            if let Some(user) = redis.username() {
                cmd.arg(user);
            }
            cmd.arg(password);
            cmd.write_packed_command(&mut handshake);
            replies += 1;
        }
        if redis.db() != 0 {
            ::redis::cmd("SELECT")
                .arg(redis.db())
                .write_packed_command(&mut handshake);
            replies += 1;
        }
        ::redis::cmd("PING").write_packed_command(&mut handshake);
        replies += 1;
        if let Some((cmd, _)) = setup {
            cmd.write_packed_command(&mut handshake);
            replies += 1;
        }
        let socket_only = info
            .clone()
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        #[cfg(feature = "tls")]
        let client = if tls_files {
            Client::build_with_tls(socket_only, tls::certificates(&config)?).map_err(|e| {
                BackendError::Tls {
                    op: OP,
                    source: Box::new(e),
                }
            })?
        } else {
            Client::open(socket_only).map_err(|e| map_error(OP, e))?
        };
        #[cfg(not(feature = "tls"))]
        let client = {
            let _ = tls_files;
            Client::open(socket_only).map_err(|e| map_error(OP, e))?
        };
        let link = Self {
            client,
            handshake,
            handshake_replies: replies,
            auth,
            setup_accepts: setup.map(|(_, code)| code),
            config,
            con: Mutex::new(None),
            reconnects: AtomicU64::new(0),
        };
        let open = link.connect(deadline)?;
        *link.con.lock() = Some(open);
        Ok(link)
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// How many times a connection was reopened.
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Drops the connection: the next call opens a new one (and sends the
    /// setup command again).
    pub(crate) fn disconnect(&self) {
        *self.con.lock() = None;
    }

    /// Opens a connection and runs the handshake, both before `deadline`.
    fn connect(&self, deadline: Instant) -> Result<Open, BackendError> {
        const OP: &str = "connect";
        let client = self.client.clone();
        let con = connect_within("cm-redis-connect", deadline, move |budget| {
            client.get_connection_with_timeout(budget)
        })?;
        let mut open = Open {
            con,
            read: None,
            write: None,
        };
        let mut ex = Exchange {
            open: &mut open,
            deadline,
            write_timeout: self.config.write_timeout(),
        };
        ex.send(&self.handshake).map_err(|e| map_error(OP, e))?;
        let last = self.handshake_replies.saturating_sub(1);
        for i in 0..self.handshake_replies {
            match ex.recv() {
                Ok(_) => {}
                // Any refusal of `AUTH` is about the credentials, whatever
                // its code (e.g. `ERR AUTH <password> called without any
                // password configured`).
                Err(e) if i == 0 && self.auth && e.code().is_some() => {
                    return Err(BackendError::Auth {
                        op: OP,
                        source: Box::new(e),
                    });
                }
                Err(e) if i == last && self.setup_accepts.is_some_and(|c| e.code() == Some(c)) => {}
                Err(e) => return Err(map_error(OP, e)),
            }
        }
        Ok(open)
    }

    /// Runs `f` on the connection under the call's deadline, extended by
    /// `extra` (a blocking command's own wait); `f` adds one to its counter
    /// per round trip.
    fn run<T>(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        extra: Duration,
        mut f: impl FnMut(&mut Exchange<'_>, &AtomicU64) -> Result<T, RedisError>,
    ) -> Result<T, BackendError> {
        let start = Instant::now();
        let read_timeout = self.config.read_timeout() + extra;
        let call_deadline = start + self.config.connect_timeout() + read_timeout;
        let Some(mut guard) = self.con.try_lock_until(call_deadline) else {
            return Err(BackendError::Timeout { op });
        };
        let mut retried = false;
        loop {
            let fresh = guard.is_none();
            let open = match guard.as_mut() {
                Some(open) => open,
                None => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    let connect_deadline =
                        (Instant::now() + self.config.connect_timeout()).min(call_deadline);
                    guard.insert(self.connect(connect_deadline)?)
                }
            };
            let mut ex = Exchange {
                open,
                deadline: (Instant::now() + read_timeout).min(call_deadline),
                write_timeout: self.config.write_timeout(),
            };
            match f(&mut ex, trips) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let broken = breaks_connection(&e) || !ex.open.con.is_open();
                    if broken {
                        *guard = None;
                    }
                    if broken && closed_by_server(&e) && !fresh && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(map_reply_error(&self.config, op, e));
                }
            }
        }
    }

    /// Runs one command, one round trip; a blocking command waits `extra`
    /// longer than the read timeout for its reply.
    pub(crate) fn query(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        cmd: &Cmd,
        extra: Duration,
    ) -> Result<Value, BackendError> {
        let packed = cmd.get_packed_command();
        self.run(op, trips, extra, |ex, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            ex.send(&packed)?;
            ex.recv()
        })
    }

    /// Runs a pipeline, one round trip; fails with the first error reply.
    /// Returns the commands' replies (a transaction's: `EXEC`'s).
    pub(crate) fn pipeline(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        pipe: &Pipeline,
    ) -> Result<Vec<Value>, BackendError> {
        let packed = pipe.get_packed_pipeline();
        // A transaction gets `OK` for `MULTI`, `QUEUED` per command, and
        // `EXEC`'s array.
        let transaction = pipe.is_transaction();
        let replies = if transaction {
            pipe.len() + 2
        } else {
            pipe.len()
        };
        let mut all = self.run(op, trips, Duration::ZERO, |ex, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            ex.send_recv_all(&packed, replies)
        })?;
        if !transaction {
            return Ok(all);
        }
        match all.pop() {
            Some(Value::Array(exec)) => Ok(exec),
            _ => Err(unexpected(op, "EXEC did not answer an array")),
        }
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
        let evalsha = script.cmd(true, keys, args).get_packed_command();
        self.eval_packed(op, trips, &evalsha, &|| {
            script.cmd(false, keys, args).get_packed_command()
        })
    }

    /// Runs a script from an `EVALSHA` command the caller packed (so that
    /// it can reuse its buffer): one round trip; when the server lost its
    /// script cache, `eval` packs the `EVAL` command and it is sent too.
    pub(crate) fn eval_packed(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        evalsha: &[u8],
        eval: &dyn Fn() -> Vec<u8>,
    ) -> Result<Value, BackendError> {
        self.run(op, trips, Duration::ZERO, |ex, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            ex.send(evalsha)?;
            match ex.recv() {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    trips.fetch_add(1, Ordering::Relaxed);
                    ex.send(&eval())?;
                    ex.recv()
                }
                other => other,
            }
        })
    }
}
