//! Redis Cluster: the test support's local cluster, and how namespaces spread.

mod support;

use std::collections::BTreeSet;

use support::RedisCluster;

#[test]
fn namespaces_spread_over_the_primaries() {
    let cluster = RedisCluster::start(3);
    let owners: BTreeSet<usize> = (0..16)
        .map(|i| cluster.owner_of(cluster.slot_of(&format!("{{ns{i}}}:totals"))))
        .collect();
    assert!(
        owners.len() > 1,
        "16 namespaces all on one node: {owners:?}"
    );
    // One namespace is one slot: every key family of it hashes alike.
    let slot = cluster.slot_of("{team-a}:totals");
    for key in [
        "{team-a}:s:x",
        "{team-a}:e:1",
        "{team-a}:lock",
        "{team-a}:series:a/b@c",
    ] {
        assert_eq!(cluster.slot_of(key), slot, "{key}");
    }
}

#[test]
fn a_slot_migrates_with_its_keys() {
    let cluster = RedisCluster::start(3);
    let slot = cluster.slot_of("{mig}:totals");
    let from = cluster.owner_of(slot);
    let node = &cluster.nodes()[from];
    for i in 0..25 {
        let _: () = node.cmd(&["SET", &format!("{{mig}}:k{i}"), "v"]);
    }
    let to = (from + 1) % 3;
    let mut batches = 0;
    cluster.migrate_slot(slot, to, || batches += 1);
    assert!(batches >= 3, "25 keys in batches of 10: {batches}");
    assert_eq!(cluster.owner_of(slot), to);
    let n: i64 = cluster.nodes()[to].cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    assert_eq!(n, 25);
}
