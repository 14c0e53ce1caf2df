//! Test support: a real `redis-server` on a free port in a temp dir.
#![allow(dead_code)]

mod redis_cluster;
mod redis_server;

pub use self::redis_cluster::RedisCluster;
pub use self::redis_server::RedisServer;
