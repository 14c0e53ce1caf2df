//! Test support: a real `redis-server` on a free port in a temp dir (copied
//! from the library's `tests/support`), worker processes killed on drop, a
//! tiny HTTP client, and a Python virtual environment with redis-py.
#![allow(dead_code, unused_imports)]

mod python;
mod redis_server;
mod worker;

pub use self::python::python_with_redis;
pub use self::redis_server::{RedisServer, Stopped, TlsOptions};
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
