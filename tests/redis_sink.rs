//! RedisSink: latest-value hash, per-metric sorted sets with unique members
//! and retention per category, one round trip per record call.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::{
    Category, Event, MemoryState, Metric, MetricSink, MetricsCalculator, RedisConfig, RedisSink,
};
use support::RedisServer;

fn sink(server: &RedisServer, ns: &str) -> Arc<RedisSink> {
    Arc::new(
        RedisSink::connect(&server.url(), RedisConfig::default().with_namespace(ns))
            .unwrap()
            .with_retention(Category::Realtime, Duration::from_secs(60)),
    )
}

#[test]
fn latest_hash_and_series_readable_with_plain_commands() {
    let server = RedisServer::start();
    let clock = ManualClock::default();
    let sink = sink(&server, "sink");
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .sink(sink.clone())
        .build()
        .unwrap();
    // Three equal latencies at one instant: three points, none collapsed.
    for _ in 0..3 {
        calc.process(
            &Event::tool_use("s1", "bash")
                .with_duration_ms(40.0)
                .with_success(true),
        )
        .unwrap();
    }
    // One round trip per call, plus one the first time (the server does not
    // know the script yet: EVALSHA answers NOSCRIPT, then EVAL).
    assert_eq!(sink.round_trips(), 3 + 1);
    let latest: HashMap<String, String> = server.cmd(&["HGETALL", "{sink}:latest"]);
    assert_eq!(latest["tools/tool_latency_p50"], "40");
    assert_eq!(latest["tools/tool_success_rate@bash"], "100");
    assert_eq!(latest["realtime/events_per_second"], "0.05");
    let key = "{sink}:series:tools/tool_latency_p50";
    let points: Vec<(String, f64)> = server.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    assert_eq!(points.len(), 3);
    let at_ms = clock_ms(&clock);
    for (member, score) in &points {
        assert!(member.starts_with("40@"), "{member}");
        assert_eq!(*score, at_ms as f64);
    }
    // Retention by category, by the metrics' own time: realtime keeps 60 s.
    clock.advance(Duration::from_secs(61));
    calc.process(&Event::tool_use("s1", "bash").with_duration_ms(40.0))
        .unwrap();
    let realtime: u64 = server.cmd(&["ZCARD", "{sink}:series:realtime/events_per_second"]);
    assert_eq!(realtime, 1);
    let tools: u64 = server.cmd(&["ZCARD", key]);
    assert_eq!(tools, 4);
    // Plain redis-cli reads it.
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "HGET",
            "{sink}:latest",
            "tools/tool_latency_avg",
        ])
        .output()
        .expect("redis-cli (Debian package redis-tools) must be installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "40");
    let ttl: i64 = server.cmd(&["PTTL", "{sink}:series:realtime/events_per_second"]);
    assert!(ttl > 59_000 && ttl <= 60_000, "{ttl}");
}

fn clock_ms(clock: &ManualClock) -> u128 {
    use composite_metrics::Clock;
    clock.now().as_millis()
}

#[test]
fn one_round_trip_per_record_call() {
    let server = RedisServer::start();
    let sink = sink(&server, "trips");
    let metrics: Vec<Metric> = (0..50)
        .map(|i| {
            Metric::new(
                Category::Tools,
                "tool_latency_p50",
                f64::from(i),
                Duration::from_secs(1),
            )
        })
        .collect();
    let mut inspect = server.connection();
    // Script runs (EVALSHA and EVAL) the server served.
    let script_calls = |con: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
        ["cmdstat_evalsha:calls=", "cmdstat_eval:calls="]
            .iter()
            .map(|prefix| {
                info.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    // The first call also sends the script (EVALSHA answers NOSCRIPT, then EVAL).
    sink.record(&metrics[..1]).unwrap();
    assert_eq!(sink.round_trips(), 2);
    let before = script_calls(&mut inspect);
    sink.record(&metrics).unwrap();
    sink.record(&metrics[..1]).unwrap();
    sink.record(&[]).unwrap();
    assert_eq!(script_calls(&mut inspect) - before, 2);
    assert_eq!(sink.round_trips(), 2 + 2);
    let n: u64 = server.cmd(&["ZCARD", "{trips}:series:tools/tool_latency_p50"]);
    assert_eq!(n, 52);
}
