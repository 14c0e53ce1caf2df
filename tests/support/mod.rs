//! Test support: a real `redis-server` on a free port in a temp dir.
#![allow(dead_code)]

mod redis_cluster;
mod redis_server;

#[allow(unused_imports)]
pub use self::redis_cluster::RedisCluster;
#[allow(unused_imports)]
pub use self::redis_server::RedisServer;
