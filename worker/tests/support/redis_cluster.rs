use std::process::Command;
use std::time::{Duration, Instant};

use super::RedisServer;

/// How long the cluster may take to agree on its slots after `--cluster create`.
const CONVERGE_WITHIN: Duration = Duration::from_secs(20);

/// A real local Redis Cluster: `n` primaries (no replicas), each a
/// [`RedisServer`] on a free port with `--cluster-enabled yes`, joined with
/// `redis-cli --cluster create ... --cluster-yes`. Every node is killed and
/// its dir removed on `Drop`.
///
/// Panics (failing the test) with the install command when `redis-cli` is
/// missing, and with every node's log when the cluster does not converge.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts a cluster of `primaries` nodes (at least 3, as `redis-cli` requires).
    ///
    /// A cluster that converges to anything but `primaries` primaries that
    /// know only each other (seen on a loaded machine: a node turned replica
    /// of another right after `--cluster create`) is torn down and created
    /// again, at most 3 times.
    pub fn start(primaries: usize) -> Self {
        let mut logs = String::new();
        for _ in 0..3 {
            let cluster = Self::create(primaries);
            if cluster.converged_within(CONVERGE_WITHIN) {
                return cluster;
            }
            logs = cluster.logs();
        }
        panic!(
            "the cluster did not converge to {primaries} primaries, 3 times; last logs:\n{logs}"
        );
    }

    /// Starts the nodes and joins them (`redis-cli --cluster create`).
    fn create(primaries: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..primaries)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let cluster = Self { nodes };
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port()));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-cli is not installed (not found on PATH). The cluster tests need it: \
                 install it with `sudo apt-get install redis-server redis-tools` (Debian/Ubuntu), \
                 or run `.ci/run`, which installs it."
            ),
            Err(e) => panic!("could not run redis-cli: {e}"),
        };
        if !out.status.success() {
            panic!(
                "redis-cli --cluster create failed ({}):\n{}\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                cluster.logs()
            );
        }
        cluster
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Every node's URL, usable as seed nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {}:\n{}", n.port(), n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The hash slot of `key` (as the server computes it).
    pub fn slot_of(&self, key: &str) -> u16 {
        self.nodes[0].cmd(&["CLUSTER", "KEYSLOT", key])
    }

    /// The index in [`nodes`](Self::nodes) of the node serving `slot`.
    pub fn owner_of(&self, slot: u16) -> usize {
        let slots: redis::Value = self.nodes[0].cmd(&["CLUSTER", "SLOTS"]);
        let redis::Value::Array(ranges) = slots else {
            panic!("CLUSTER SLOTS: unexpected reply {slots:?}");
        };
        for range in ranges {
            let redis::Value::Array(r) = range else {
                continue;
            };
            let int = |v: &redis::Value| match v {
                redis::Value::Int(i) => *i,
                other => panic!("CLUSTER SLOTS: not an integer: {other:?}"),
            };
            let (lo, hi) = (int(&r[0]), int(&r[1]));
            if (lo..=hi).contains(&i64::from(slot)) {
                let redis::Value::Array(master) = &r[2] else {
                    panic!("CLUSTER SLOTS: no master");
                };
                let port = int(&master[1]);
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port()) == port)
                    .unwrap_or_else(|| panic!("slot {slot} is served by unknown port {port}"));
            }
        }
        panic!("slot {slot} has no owner:\n{}", self.logs());
    }

    /// Moves `slot` and its keys from its owner to node `to`, as an operator
    /// would: `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the
    /// source, `MIGRATE` the keys in batches (calling `between_batches` after
    /// each, so a test can keep writing while the slot is half-moved), then
    /// `SETSLOT NODE` on every node.
    pub fn migrate_slot(&self, slot: u16, to: usize, between_batches: impl FnMut()) {
        let from = self.owner_of(slot);
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let src = &self.nodes[from];
        let dst = &self.nodes[to];
        let src_id: String = src.cmd(&["CLUSTER", "MYID"]);
        let dst_id: String = dst.cmd(&["CLUSTER", "MYID"]);
        let s = slot.to_string();
        let _: () = dst.cmd(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
        let _: () = src.cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
        self.drain_and_assign(slot, from, to, between_batches);
    }

    /// Ends a migration of `slot` from node `from` to node `to` that a test
    /// began by hand (`SETSLOT IMPORTING/MIGRATING`, perhaps some keys
    /// moved): moves the remaining keys, then `SETSLOT NODE` on every node.
    pub fn migrate_slot_rest(&self, slot: u16, from: usize, to: usize) {
        self.drain_and_assign(slot, from, to, || {});
    }

    fn drain_and_assign(
        &self,
        slot: u16,
        from: usize,
        to: usize,
        mut between_batches: impl FnMut(),
    ) {
        let src = &self.nodes[from];
        let dst = &self.nodes[to];
        let dst_id: String = dst.cmd(&["CLUSTER", "MYID"]);
        let s = slot.to_string();
        let deadline = Instant::now() + CONVERGE_WITHIN;
        loop {
            let keys: Vec<String> = src.cmd(&["CLUSTER", "GETKEYSINSLOT", &s, "10"]);
            if keys.is_empty() {
                break;
            }
            let port = dst.port().to_string();
            let mut args = vec![
                "MIGRATE",
                "127.0.0.1",
                &port,
                "",
                "0",
                "5000",
                "REPLACE",
                "KEYS",
            ];
            args.extend(keys.iter().map(String::as_str));
            let _: () = src.cmd(&args);
            between_batches();
            assert!(
                Instant::now() < deadline,
                "slot {slot} did not drain within {CONVERGE_WITHIN:?}"
            );
        }
        for n in [dst, src] {
            let _: () = n.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
        }
        for n in &self.nodes {
            if n.port() != src.port() && n.port() != dst.port() {
                let _: () = n.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
            }
        }
        self.wait_converged();
    }

    fn wait_converged(&self) {
        if !self.converged_within(CONVERGE_WITHIN) {
            panic!(
                "the cluster did not converge within {CONVERGE_WITHIN:?}:\n{}",
                self.logs()
            );
        }
    }

    /// Whether every node sees the cluster `ok`, every slot assigned, and
    /// exactly its nodes, all primaries serving slots, within `within`.
    fn converged_within(&self, within: Duration) -> bool {
        let n = self.nodes.len();
        let deadline = Instant::now() + within;
        loop {
            let ok = self.nodes.iter().all(|node| {
                let info: String = node.cmd(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_assigned:16384")
                    && info.contains(&format!("cluster_known_nodes:{n}\r"))
                    && info.contains(&format!("cluster_size:{n}\r"))
            });
            if ok {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
