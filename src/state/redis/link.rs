use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ::redis::{
    Client, Cmd, Connection, ConnectionInfo, ConnectionLike, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, ServerErrorKind, Value,
};
use parking_lot::Mutex;

use super::cluster_link::ClusterLink;
use super::RedisConfig;
use crate::error::{BackendError, ConfigError};

/// A Lua script: its body and SHA1, run with `EVALSHA`, falling back to
/// `EVAL` (which also caches it again) when the server answers `NOSCRIPT`
/// (after `SCRIPT FLUSH` or a restart).
pub(crate) struct LuaScript {
    pub(super) body: &'static str,
    pub(super) sha: String,
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

    /// The script's SHA1, as `EVALSHA` names it.
    pub(crate) fn sha(&self) -> &str {
        &self.sha
    }

    /// The script's body, as `EVAL` sends it.
    pub(crate) fn body(&self) -> &'static str {
        self.body
    }
}

/// The way to Redis of a [`RedisState`](super::RedisState) or a
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

    /// Runs `script` from an `EVALSHA` command the caller packed into a
    /// reused buffer (see [`NodeLink::eval_packed`]). On a cluster the
    /// packed command is read back into keys and arguments and routed by
    /// key slot as [`eval`](Self::eval) does.
    pub(crate) fn eval_packed(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        script: &LuaScript,
        evalsha: &[u8],
        eval: &dyn Fn() -> Vec<u8>,
    ) -> Result<Value, BackendError> {
        match self {
            Self::Node(l) => l.eval_packed(op, trips, evalsha, eval),
            Self::Cluster(l) => {
                let bad = || super::reply::unexpected(op, "a malformed packed command");
                let args = resp_args(evalsha).ok_or_else(bad)?;
                // EVALSHA sha numkeys key... arg...
                let numkeys: usize = args
                    .get(2)
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                let keys: Vec<&str> = args
                    .get(3..3 + numkeys)
                    .ok_or_else(bad)?
                    .iter()
                    .map(|k| std::str::from_utf8(k).map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                let rest = args.get(3 + numkeys..).unwrap_or_default();
                l.eval(op, trips, script, &keys, &|cmd| {
                    for a in rest {
                        cmd.arg(*a);
                    }
                })
            }
        }
    }
}

/// The bulk strings of a packed RESP array (`*N` then `$len` items), or
/// `None` if it is not one.
fn resp_args(packed: &[u8]) -> Option<Vec<&[u8]>> {
    fn line(b: &[u8], at: &mut usize) -> Option<usize> {
        let rest = b.get(*at..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(rest.get(1..end)?).ok()?.parse().ok()?;
        *at += end + 2;
        Some(n)
    }
    let mut at = 0;
    if packed.first() != Some(&b'*') {
        return None;
    }
    let n = line(packed, &mut at)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if packed.get(at) != Some(&b'$') {
            return None;
        }
        let len = line(packed, &mut at)?;
        out.push(packed.get(at..at + len)?);
        at += len + 2;
    }
    Some(out)
}

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
/// deadline, and `AUTH`, `SELECT` and a `PING` are sent here as one
/// pipeline under the deadline.
pub(crate) struct NodeLink {
    /// Opens sockets only: no credentials, database 0, no `CLIENT SETINFO`.
    client: Client,
    /// `AUTH [user] password`, `SELECT db` (if not 0) and `PING`, packed.
    handshake: Vec<u8>,
    /// How many replies `handshake` gets; the first is `AUTH`'s if `auth`.
    handshake_replies: usize,
    auth: bool,
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

/// A socket timeout already set within this much of the wanted one is
/// kept: on the usual path (a short request sent without blocking) this
/// saves two system calls per request, and moves no wait by more than this
/// (a wait may end this much early, or late).
pub(super) const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

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

pub(super) fn keeps(current: Option<Duration>, want: Duration) -> bool {
    current.is_some_and(|c| c.abs_diff(want) <= TIMEOUT_SLACK)
}

/// The time left until `deadline`, or a timeout error when none is left.
pub(super) fn left(deadline: Instant) -> Result<Duration, RedisError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(timed_out())
    } else {
        Ok(d)
    }
}

fn timed_out() -> RedisError {
    RedisError::from(io::Error::from(io::ErrorKind::TimedOut))
}

/// One request on an open connection, bounded by a deadline.
pub(crate) struct Exchange<'a> {
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
    fn send_recv_all(&mut self, bytes: &[u8], replies: usize) -> Result<(), RedisError> {
        self.send(bytes)?;
        let mut first_err = None;
        for _ in 0..replies {
            match self.recv() {
                Ok(_) => {}
                Err(e) if e.is_io_error() || e.is_timeout() => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl NodeLink {
    /// Parses `url` and connects once, so a wrong address, wrong
    /// credentials or a certificate problem fail here, within the connect
    /// timeout.
    pub(crate) fn open(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        const OP: &str = "connect";
        let deadline = Instant::now() + config.connect_timeout();
        config.validate().map_err(BackendError::InvalidConfig)?;
        if cfg!(not(feature = "tls")) && (url.starts_with("rediss:") || url.starts_with("valkeys:"))
        {
            return Err(BackendError::InvalidConfig(ConfigError::OutOfRange {
                field: "url",
                reason: "a `rediss://` URL needs the crate's `tls` feature",
            }));
        }
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
        let socket_only = info
            .clone()
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let client = client_for(socket_only, &config)?;
        let link = Self {
            client,
            handshake,
            handshake_replies: replies,
            auth,
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

    /// Opens a connection and runs the handshake, both before `deadline`.
    fn connect(&self, deadline: Instant) -> Result<Open, BackendError> {
        const OP: &str = "connect";
        let budget = left(deadline).map_err(|e| map_error(OP, e))?;
        let con = self.open_socket(budget)?;
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
                Err(e) => return Err(map_error(OP, e)),
            }
        }
        Ok(open)
    }

    /// Opens the socket (and TLS session object) on a helper thread, so
    /// name resolution and the library's per-address connect timeouts
    /// cannot stretch the wait: the caller waits at most `budget`. An
    /// attempt that misses it is abandoned; its thread ends when the
    /// library gives up (within `budget` per resolved address).
    fn open_socket(&self, budget: Duration) -> Result<Connection, BackendError> {
        const OP: &str = "connect";
        let client = self.client.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("cm-redis-connect".to_owned())
            .spawn(move || {
                // The receiver may be gone (deadline passed): nothing to do then.
                let _ = tx.send(client.get_connection_with_timeout(budget));
            })
            .map_err(|e| BackendError::Connection {
                op: OP,
                source: Box::new(e),
            })?;
        match rx.recv_timeout(budget) {
            Ok(result) => result.map_err(|e| map_error(OP, e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(BackendError::Timeout { op: OP }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(BackendError::Connection {
                op: OP,
                source: "the connect thread ended without an answer".into(),
            }),
        }
    }

    /// Runs `f` on the connection under the call's deadline; `f` adds one to
    /// its counter per round trip.
    fn run<T>(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        mut f: impl FnMut(&mut Exchange<'_>, &AtomicU64) -> Result<T, RedisError>,
    ) -> Result<T, BackendError> {
        let start = Instant::now();
        let read_timeout = self.config.read_timeout();
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
                    let broken = e.is_timeout()
                        || e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                        || !ex.open.con.is_open();
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

    /// Runs a pipeline, one round trip; fails with the first error reply.
    #[allow(dead_code)] // RedisSink, its last user, now records with a script.
    pub(crate) fn pipeline(
        &self,
        op: &'static str,
        trips: &AtomicU64,
        pipe: &::redis::Pipeline,
    ) -> Result<(), BackendError> {
        let packed = pipe.get_packed_pipeline();
        // A transaction gets `OK` for `MULTI`, `QUEUED` per command, and
        // `EXEC`'s array.
        let replies = if pipe.is_transaction() {
            pipe.len() + 2
        } else {
            pipe.len()
        };
        self.run(op, trips, |ex, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            ex.send_recv_all(&packed, replies)
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
        let evalsha = build("EVALSHA", &script.sha).get_packed_command();
        self.run(op, trips, |ex, trips| {
            trips.fetch_add(1, Ordering::Relaxed);
            ex.send(&evalsha)?;
            match ex.recv() {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    trips.fetch_add(1, Ordering::Relaxed);
                    ex.send(&build("EVAL", script.body).get_packed_command())?;
                    ex.recv()
                }
                other => other,
            }
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
        self.run(op, trips, |ex, trips| {
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

    fn map(&self, op: &'static str, e: RedisError) -> BackendError {
        map_reply_error(&self.config, op, e)
    }
}

/// Maps a client error of an operation to the crate's backend error, the
/// record script's capacity refusal included.
pub(super) fn map_reply_error(
    config: &RedisConfig,
    op: &'static str,
    e: RedisError,
) -> BackendError {
    if e.code() == Some(CAPACITY) {
        return match e.detail() {
            Some(d) if d.starts_with("tools") => BackendError::CapacityExceeded {
                what: "tool names",
                limit: config.max_tools(),
            },
            _ => BackendError::CapacityExceeded {
                what: "sessions",
                limit: config.max_sessions(),
            },
        };
    }
    map_error(op, e)
}

/// The client for `info`: with the configured TLS files for a `rediss://`
/// URL (feature `tls`).
fn client_for(info: ConnectionInfo, config: &RedisConfig) -> Result<Client, BackendError> {
    const OP: &str = "connect";
    #[cfg(feature = "tls")]
    {
        let tls_url = matches!(info.addr(), ::redis::ConnectionAddr::TcpTls { .. });
        let has_files = config.tls_ca_file().is_some() || config.tls_client_cert().is_some();
        if has_files && !tls_url {
            return Err(BackendError::InvalidConfig(ConfigError::OutOfRange {
                field: "tls_ca_file",
                reason: "TLS files need a `rediss://` URL",
            }));
        }
        if has_files {
            return tls_client(info, config);
        }
    }
    #[cfg(not(feature = "tls"))]
    let _ = config;
    Client::open(info).map_err(|e| map_error(OP, e))
}

#[cfg(feature = "tls")]
fn tls_client(info: ConnectionInfo, config: &RedisConfig) -> Result<Client, BackendError> {
    const OP: &str = "connect";
    Client::build_with_tls(info, tls_certificates(config)?).map_err(|e| BackendError::Tls {
        op: OP,
        source: Box::new(e),
    })
}

/// The configured TLS files, read (feature `tls`).
#[cfg(feature = "tls")]
pub(super) fn tls_certificates(
    config: &RedisConfig,
) -> Result<::redis::TlsCertificates, BackendError> {
    use ::redis::{ClientTlsConfig, TlsCertificates};
    const OP: &str = "connect";
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| BackendError::Tls {
            op: OP,
            source: format!("cannot read the {what} `{}`: {e}", path.display()).into(),
        })
    };
    let root_cert = match config.tls_ca_file() {
        Some(path) => Some(read(path, "CA file")?),
        None => None,
    };
    let client_tls = match config.tls_client_cert() {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read(cert, "client certificate")?,
            client_key: read(key, "client key")?,
        }),
        None => None,
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// The error code the record script answers when a limit would be exceeded.
const CAPACITY: &str = "CMCAPACITY";

/// Maps a client error to the crate's backend error.
pub(crate) fn map_error(op: &'static str, e: RedisError) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout { op };
    }
    #[cfg(feature = "tls")]
    if let Some(source) = tls_error(&e) {
        return BackendError::Tls { op, source };
    }
    match e.code() {
        Some("LOADING") => return BackendError::Loading { op },
        Some("NOAUTH" | "WRONGPASS") => {
            return BackendError::Auth {
                op,
                source: Box::new(e),
            }
        }
        _ => {}
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
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

/// The TLS failure behind `e`, if it is one: the `rustls` error carried by
/// the I/O error (a certificate the CA did not sign, an alert from the
/// server asking for a client certificate, ...).
#[cfg(feature = "tls")]
fn tls_error(e: &RedisError) -> Option<Box<dyn std::error::Error + Send + Sync>> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    // The client library keeps an I/O error as `Arc<dyn Error>` and gives
    // that `Arc` as the source.
    let source = std::error::Error::source(e)?;
    let io = match source.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<io::Error>()?,
        None => source.downcast_ref::<io::Error>()?,
    };
    let inner = io.get_ref()?;
    let tls = inner.downcast_ref::<rustls::Error>()?;
    Some(Box::new(tls.clone()))
}
