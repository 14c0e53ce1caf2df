//! The state backends the worker runs on besides a plain Redis: a local
//! Redis Cluster (state and sink through the seeds, the stream on the node
//! serving its slot) and Redis over TLS with a private CA (`[tls] ca_file`).

mod support;

use std::time::Duration;

use support::{free_port, wait_for, wait_ready, RedisCluster, RedisServer, TestPki, Worker};

const EVENT: &str = r#"{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":42,"payload":{"success":true}}"#;

#[test]
fn runs_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3);
    let stream = "{telemetry}:events";
    let owner = &cluster.nodes()[cluster.owner_of(cluster.slot_of(stream))];
    let dir = support::temp_dir();
    let cfg = dir.path().join("w.toml");
    let seeds = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &cfg,
        format!(
            "[redis]\nnamespace = \"cm\"\n\n[cluster]\nseeds = [{seeds}]\n\n\
             [source]\nurl = \"{}\"\nstream = \"{stream}\"\nblock = \"100ms\"\n",
            owner.url()
        ),
    )
    .expect("config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut w = Worker::spawn(
        "cluster",
        dir.path(),
        &[
            "run",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--consumer",
            "c",
            "--listen",
            &listen,
        ],
        &[],
    );
    wait_ready(&w, port, 200, Duration::from_secs(30));
    for _ in 0..3 {
        let _: String = owner.cmd(&["XADD", stream, "*", "event", EVENT]);
    }
    let totals = &cluster.nodes()[cluster.owner_of(cluster.slot_of("{cm}:totals"))];
    wait_for(
        Duration::from_secs(20),
        "3 events in {cm}:totals",
        || w.stderr(),
        || (totals.cmd::<Option<u64>>(&["HGET", "{cm}:totals", "events"]) == Some(3)).then_some(()),
    );
    let latest: Option<f64> = totals.cmd(&["HGET", "{cm}:latest", "tools/tool_latency_p50"]);
    assert_eq!(
        latest,
        Some(42.0),
        "the Redis sink wrote through the cluster"
    );
    w.signal("-TERM");
    assert_eq!(
        w.wait_exit(Duration::from_secs(15)).code(),
        Some(0),
        "{}",
        w.stderr()
    );
}

#[test]
fn runs_on_redis_over_tls_with_a_private_ca() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &[]);
    let dir = support::temp_dir();
    let cfg = dir.path().join("w.toml");
    // The state and the sink over TLS, checked against the private CA; the
    // stream source (the library's StreamSource takes no CA file) on the
    // plain port.
    std::fs::write(
        &cfg,
        format!(
            "[redis]\nurl = \"{}\"\n\n[tls]\nca_file = \"{}\"\n\n[source]\nurl = \"{}\"\nblock = \"100ms\"\n",
            server.tls_url(),
            pki.ca.display(),
            server.url()
        ),
    )
    .expect("config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut w = Worker::spawn(
        "tls",
        dir.path(),
        &[
            "run",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--consumer",
            "c",
            "--listen",
            &listen,
        ],
        &[],
    );
    wait_ready(&w, port, 200, Duration::from_secs(30));
    let _: String = server.cmd(&["XADD", "telemetry:events", "*", "event", EVENT]);
    wait_for(
        Duration::from_secs(20),
        "the event in {cm}:totals",
        || w.stderr(),
        || (server.cmd::<Option<u64>>(&["HGET", "{cm}:totals", "events"]) == Some(1)).then_some(()),
    );
    w.signal("-TERM");
    assert_eq!(
        w.wait_exit(Duration::from_secs(15)).code(),
        Some(0),
        "{}",
        w.stderr()
    );

    // The wrong CA: the connection is refused at start, exit 1 after the retries.
    let cfg2 = dir.path().join("wrong.toml");
    std::fs::write(
        &cfg2,
        std::fs::read_to_string(&cfg).expect("config").replace(
            &pki.ca.display().to_string(),
            &pki.other_ca.display().to_string(),
        ),
    )
    .expect("config");
    let mut w = Worker::spawn(
        "tls-wrong-ca",
        dir.path(),
        &[
            "run",
            "--config",
            cfg2.to_str().expect("utf-8"),
            "--consumer",
            "c",
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("COMPOSITE_METRICS_WORKER__CONNECT_ATTEMPTS", "2"),
            ("COMPOSITE_METRICS_WORKER__CONNECT_BACKOFF", "100ms"),
        ],
    );
    let status = w.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", w.stderr());
    assert!(
        w.stderr().contains("could not reach state"),
        "{}",
        w.stderr()
    );
}
