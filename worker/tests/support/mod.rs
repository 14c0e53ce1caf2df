//! Test support: a real `redis-server` on a free port in a temp dir (the
//! library's `tests/support` guards), worker processes killed on drop, a
//! tiny HTTP client, and a Python virtual environment with redis-py.
#![allow(dead_code, unused_imports)]

mod python;
// The library's own guards, shared rather than copied.
#[path = "../../../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../../../tests/support/tls_certs.rs"]
mod tls_certs;
mod worker;

pub use self::python::python_with_redis;
pub use self::redis_cluster::RedisCluster;
pub use self::redis_server::{RedisServer, Stopped, TlsOptions};
pub use self::tls_certs::TestPki;
pub use self::worker::{free_port, http_get, Worker};

/// The worker binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_composite-metrics")
}

/// A fresh temp dir, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cm-worker-")
        .tempdir()
        .expect("create a temp dir")
}

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A Prometheus text scrape: `name{labels}` (labels as rendered) → value.
pub fn parse_scrape(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The series name of a scrape key (`name{...}` → `name`).
pub fn series_name(key: &str) -> &str {
    key.split('{').next().unwrap_or(key)
}

/// Polls `f` every 20 ms until it returns `Some`, at most `timeout`; panics
/// naming `what` (and `context()`) otherwise.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `/readyz` on `port` answers `status`.
pub fn wait_ready(w: &Worker, port: u16, status: u16, timeout: Duration) {
    wait_for(
        timeout,
        &format!("{}: /readyz {status}", w.name),
        || w.stderr(),
        || (http_get(port, "/readyz").map(|(s, _)| s) == Some(status)).then_some(()),
    );
}
