//! Test support: a real `redis-server` on a free port in a temp dir, a
//! local Redis Cluster of such servers, and a test PKI for the TLS port.
#![allow(dead_code, unused_imports)]

mod example_binary;
mod redis_cluster;
mod redis_server;
mod tls_certs;

pub use self::example_binary::example_binary;
pub use self::redis_cluster::RedisCluster;
pub use self::redis_server::{RedisServer, Stopped, TlsOptions};
pub use self::tls_certs::TestPki;
