//! The Redis Streams source against a real redis-server: entry formats,
//! acknowledgement after apply, redelivery counted once, claims of dead
//! consumers' entries, dead letters, lag.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use composite_metrics::ingest::{StreamConfig, StreamSource};
use composite_metrics::state::{MemoryConfig, RedisConfig, RedisState};
use composite_metrics::{Event, ManualClock, MemoryState, MetricsCalculator};
use support::RedisServer;

const STREAM: &str = "events";
const GROUP: &str = "metrics";

fn tool_json(session: &str, ms: u32) -> String {
    format!(
        r#"{{"event_type":"tool_use","session_id":"{session}","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":{ms},"payload":{{"success":true}}}}"#
    )
}

fn xadd(server: &RedisServer, fields: &[(&str, &str)]) -> String {
    let mut args = vec!["XADD", STREAM, "*"];
    for (k, v) in fields {
        args.push(k);
        args.push(v);
    }
    server.cmd(&args)
}

fn calc(server: &RedisServer, ns: &str) -> MetricsCalculator {
    let state = RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns))
        .expect("connect state");
    MetricsCalculator::builder()
        .state(state)
        .scheduler(
            Box::new(composite_metrics::Never) as Box<dyn composite_metrics::CompositeScheduler>
        )
        .build()
        .expect("calculator")
}

fn config(consumer: &str) -> StreamConfig {
    StreamConfig::new(STREAM, GROUP, consumer)
        .with_block(Duration::from_millis(20))
        .with_count(50)
}

fn source(server: &RedisServer, config: StreamConfig) -> StreamSource {
    StreamSource::connect(&server.url(), config)
        .expect("connect source")
        .with_clock(ManualClock::new(Duration::ZERO))
}

fn totals(server: &RedisServer, ns: &str, field: &str) -> u64 {
    let v: Option<u64> = server.cmd(&["HGET", &format!("{{{ns}}}:totals"), field]);
    v.unwrap_or(0)
}

fn group_pending(server: &RedisServer) -> u64 {
    let summary: redis::Value = server.cmd(&["XPENDING", STREAM, GROUP]);
    match summary {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            other => panic!("XPENDING summary: {other:?}"),
        },
        other => panic!("XPENDING summary: {other:?}"),
    }
}

/// Polls until a poll handles nothing.
fn drain(source: &mut StreamSource, calc: &mut MetricsCalculator) -> usize {
    let mut total = 0;
    for _ in 0..1_000 {
        match source.poll(calc).expect("poll") {
            0 => return total,
            n => total += n,
        }
    }
    panic!("the stream never drained");
}

fn dead_letters(server: &RedisServer) -> Vec<HashMap<String, String>> {
    let entries: Vec<(String, Vec<String>)> =
        server.cmd(&["XRANGE", &format!("{STREAM}:dead"), "-", "+"]);
    entries
        .into_iter()
        .map(|(_, flat)| {
            flat.chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect()
        })
        .collect()
}

#[test]
fn json_entries_are_applied_in_batches_and_acknowledged() {
    let server = RedisServer::start();
    for i in 0..120 {
        xadd(&server, &[("event", &tool_json(&format!("s{}", i % 3), i))]);
    }
    let mut calc = calc(&server, "json");
    let mut source = source(&server, config("w1"));
    assert_eq!(drain(&mut source, &mut calc), 120);
    let stats = source.stats();
    assert_eq!((stats.entries, stats.applied, stats.acked), (120, 120, 120));
    // COUNT 50: three reads, three batches.
    assert_eq!(stats.reads, 3);
    assert_eq!(calc.stats().events, 120);
    assert_eq!(totals(&server, "json", "events"), 120);
    assert_eq!(totals(&server, "json", "tool_runs"), 120);
    assert_eq!(group_pending(&server), 0);
}

#[test]
fn flat_entries_use_the_json_keys_as_field_names() {
    let server = RedisServer::start();
    xadd(
        &server,
        &[
            ("event_type", "tool_use"),
            ("session_id", "42"),
            ("timestamp", "2024-05-01T12:00:00Z"),
            ("tool_name", "bash"),
            ("duration_ms", "250.5"),
            ("payload", r#"{"success":false}"#),
            ("platform", "claude-code"),
        ],
    );
    xadd(
        &server,
        &[
            ("event_type", "tool_use"),
            ("session_id", "s1"),
            ("timestamp", "2024-05-01T12:00:00Z"),
            ("duration_ms", "fast"),
        ],
    );
    let mut calc = calc(&server, "flat");
    let mut source = source(&server, config("w1"));
    assert_eq!(drain(&mut source, &mut calc), 2);
    let stats = source.stats();
    assert_eq!(
        (stats.applied, stats.invalid, stats.dead_lettered),
        (1, 1, 1)
    );
    assert_eq!(totals(&server, "flat", "tool_runs"), 1);
    let dead = dead_letters(&server);
    assert_eq!(dead.len(), 1);
    assert!(dead[0]["error"].contains("duration_ms"), "{dead:?}");
    assert_eq!(dead[0]["duration_ms"], "fast");
    assert_eq!(group_pending(&server), 0);
}

#[test]
fn invalid_entries_go_to_the_dead_letter_stream_with_their_error() {
    let server = RedisServer::start();
    let good = xadd(&server, &[("event", &tool_json("s1", 5))]);
    let bad_json = xadd(&server, &[("event", "{not json")]);
    let negative = xadd(
        &server,
        &[(
            "event",
            &tool_json("s1", 5).replace("\"duration_ms\":5", "\"duration_ms\":-5"),
        )],
    );
    let mut calc = calc(&server, "dead");
    let mut source = source(&server, config("w1"));
    drain(&mut source, &mut calc);
    let stats = source.stats();
    assert_eq!((stats.applied, stats.invalid, stats.acked), (1, 2, 3));
    let dead = dead_letters(&server);
    let ids: Vec<&str> = dead.iter().map(|d| d["entry_id"].as_str()).collect();
    assert_eq!(ids, [bad_json.as_str(), negative.as_str()]);
    assert!(dead[0]["error"].contains("malformed JSON"), "{dead:?}");
    assert!(dead[1]["error"].contains("duration_ms"), "{dead:?}");
    assert_eq!(dead[1]["consumer"], "w1");
    assert!(!ids.contains(&good.as_str()));
    assert_eq!(totals(&server, "dead", "events"), 1);
    assert_eq!(group_pending(&server), 0);
}

#[test]
fn a_consumer_that_died_after_applying_is_claimed_and_not_counted_twice() {
    let server = RedisServer::start();
    let ids: Vec<String> = (0..30)
        .map(|i| xadd(&server, &[("event", &tool_json("s1", i))]))
        .collect();
    // The group, and a consumer "ghost" that reads 20 entries, applies them
    // (with the ids the source gives them) and dies before XACK.
    let mut calc = calc(&server, "claim");
    let mut reader = source(&server, config("w1"));
    let _: redis::Value = server.cmd(&[
        "XREADGROUP",
        "GROUP",
        GROUP,
        "ghost",
        "COUNT",
        "20",
        "STREAMS",
        STREAM,
        ">",
    ]);
    let applied: Vec<Event> = ids[..20]
        .iter()
        .map(|id| {
            Event::from_json(&tool_json("s1", 1))
                .expect("event")
                .with_event_id(format!("{STREAM}:{id}"))
        })
        .collect();
    calc.process_batch(&applied).expect("ghost's batch");
    assert_eq!(totals(&server, "claim", "events"), 20);
    assert_eq!(group_pending(&server), 20);

    // The live worker reads the 10 others; with min_idle 0 it claims the
    // ghost's 20 at once (claims are due at the first poll).
    drop(reader);
    reader = source(&server, config("w1").with_min_idle(Duration::ZERO));
    assert_eq!(drain(&mut reader, &mut calc), 30);
    let stats = reader.stats();
    assert_eq!(stats.claimed, 20);
    assert_eq!((stats.applied, stats.duplicates, stats.acked), (10, 20, 30));
    assert_eq!(totals(&server, "claim", "events"), 30);
    assert_eq!(group_pending(&server), 0);
}

#[test]
fn entries_of_a_live_consumer_are_not_claimed_before_min_idle() {
    let server = RedisServer::start();
    for i in 0..5 {
        xadd(&server, &[("event", &tool_json("s1", i))]);
    }
    let mut calc = calc(&server, "idle");
    let mut source = source(
        &server,
        config("w1").with_min_idle(Duration::from_secs(3600)),
    );
    let _: redis::Value = server.cmd(&[
        "XREADGROUP",
        "GROUP",
        GROUP,
        "other",
        "COUNT",
        "5",
        "STREAMS",
        STREAM,
        ">",
    ]);
    assert_eq!(drain(&mut source, &mut calc), 0);
    assert_eq!(source.stats().claimed, 0);
    assert_eq!(group_pending(&server), 5);
}

#[test]
fn an_event_id_field_is_the_event_id() {
    let server = RedisServer::start();
    let json =
        tool_json("s1", 3).replace("{\"event_type\"", "{\"event_id\":\"e-1\",\"event_type\"");
    xadd(&server, &[("event", &json)]);
    xadd(&server, &[("event", &json)]);
    xadd(
        &server,
        &[("event", &tool_json("s1", 3)), ("event_id", "e-2")],
    );
    xadd(
        &server,
        &[("event", &tool_json("s1", 3)), ("event_id", "e-2")],
    );
    let mut calc = calc(&server, "ids");
    let mut source = source(&server, config("w1"));
    drain(&mut source, &mut calc);
    let stats = source.stats();
    assert_eq!((stats.applied, stats.duplicates, stats.acked), (2, 2, 4));
    assert_eq!(totals(&server, "ids", "events"), 2);
}

#[test]
fn an_entry_delivered_more_than_max_deliveries_is_dead_lettered() {
    let server = RedisServer::start();
    let id = xadd(&server, &[("event", &tool_json("s1", 3))]);
    let mut calc = calc(&server, "over");
    let mut source = source(
        &server,
        config("w1")
            .with_min_idle(Duration::ZERO)
            .with_max_deliveries(1),
    );
    // Delivered once to a consumer that dies; the claim is its second delivery.
    let _: redis::Value = server.cmd(&[
        "XREADGROUP",
        "GROUP",
        GROUP,
        "ghost",
        "COUNT",
        "1",
        "STREAMS",
        STREAM,
        ">",
    ]);
    drain(&mut source, &mut calc);
    let stats = source.stats();
    assert_eq!(
        (stats.applied, stats.over_delivered, stats.acked),
        (0, 1, 1)
    );
    let dead = dead_letters(&server);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["entry_id"], id);
    assert_eq!(dead[0]["deliveries"], "2");
    assert!(dead[0]["error"].contains("delivered 2 times"), "{dead:?}");
    assert_eq!(totals(&server, "over", "events"), 0);
    assert_eq!(group_pending(&server), 0);
}

#[test]
fn a_failed_batch_is_not_acknowledged_and_is_read_again_then_dead_lettered() {
    let server = RedisServer::start();
    xadd(&server, &[("event", &tool_json("a", 1))]);
    xadd(&server, &[("event", &tool_json("b", 1))]);
    // Two sessions over a limit of one: every attempt fails, all or none.
    let state = MemoryState::with_config(
        MemoryConfig::default().with_max_sessions(1),
        ManualClock::new(Duration::ZERO),
    )
    .expect("state");
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .scheduler(
            Box::new(composite_metrics::Never) as Box<dyn composite_metrics::CompositeScheduler>
        )
        .build()
        .expect("calculator");
    let mut source = source(&server, config("w1").with_max_deliveries(2));
    let err = source.poll(&mut calc).unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
    assert_eq!(group_pending(&server), 2, "not acknowledged");
    // Read again (second delivery), fails again.
    assert!(source.poll(&mut calc).is_err());
    assert_eq!(group_pending(&server), 2);
    // Third delivery: over max_deliveries, dead-lettered and acknowledged.
    assert_eq!(source.poll(&mut calc).expect("poll"), 2);
    let stats = source.stats();
    assert_eq!(
        (stats.batch_errors, stats.over_delivered, stats.acked),
        (2, 2, 2)
    );
    assert_eq!(dead_letters(&server).len(), 2);
    assert_eq!(group_pending(&server), 0);
    assert_eq!(calc.stats().events, 0);
}

#[test]
fn lag_reports_pending_entries_and_the_oldest_unacknowledged_age() {
    let server = RedisServer::start();
    // An entry stamped one minute ago by the server's clock.
    let time: Vec<String> = server.cmd(&["TIME"]);
    let now_ms: u64 = time[0].parse::<u64>().expect("secs") * 1000;
    let old_id = format!("{}-0", now_ms - 60_000);
    let _: String = server.cmd(&["XADD", STREAM, &old_id, "event", &tool_json("s1", 1)]);
    for i in 0..9 {
        xadd(&server, &[("event", &tool_json("s1", i))]);
    }
    let mut source = source(&server, config("w1"));
    let lag = source.refresh_lag().expect("lag");
    assert_eq!((lag.pending, lag.undelivered), (0, Some(10)));
    assert!(lag.oldest_unacked_age.expect("age") >= Duration::from_secs(60));

    let _: redis::Value = server.cmd(&[
        "XREADGROUP",
        "GROUP",
        GROUP,
        "other",
        "COUNT",
        "4",
        "STREAMS",
        STREAM,
        ">",
    ]);
    let lag = source.refresh_lag().expect("lag");
    assert_eq!((lag.pending, lag.undelivered), (4, Some(6)));
    assert!(lag.oldest_unacked_age.expect("age") >= Duration::from_secs(60));

    let mut calc = calc(&server, "lag");
    let mut source =
        StreamSource::connect(&server.url(), config("w1").with_min_idle(Duration::ZERO))
            .expect("source");
    drain(&mut source, &mut calc);
    let lag = source.refresh_lag().expect("lag");
    assert_eq!(
        (lag.pending, lag.undelivered, lag.oldest_unacked_age),
        (0, Some(0), None)
    );
}

#[cfg(feature = "metrics")]
#[test]
fn lag_is_exported_as_gauges() {
    use composite_metrics::ingest::{STREAM_OLDEST_UNACKED_SECONDS, STREAM_PENDING};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let server = RedisServer::start();
    for i in 0..3 {
        xadd(&server, &[("event", &tool_json("s1", i))]);
    }
    let mut source = source(&server, config("w1"));
    let _: redis::Value = server.cmd(&[
        "XREADGROUP",
        "GROUP",
        GROUP,
        "other",
        "COUNT",
        "2",
        "STREAMS",
        STREAM,
        ">",
    ]);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || source.refresh_lag().expect("lag"));
    let gauges: HashMap<String, f64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            assert_eq!(labels, ["stream=events", "group=metrics"]);
            match value {
                DebugValue::Gauge(v) => Some((key.key().name().to_owned(), v.into_inner())),
                _ => None,
            }
        })
        .collect();
    assert_eq!(gauges[STREAM_PENDING], 2.0);
    assert!(gauges[STREAM_OLDEST_UNACKED_SECONDS] >= 0.0);
}

/// Issue 21, point 5: the dead-letter stream is bounded. Filled with 1 000
/// dead letters past a bound of 50, it keeps at least the newest 50 and at
/// most 50 + `stream-node-max-entries` - 1 (Redis trims whole nodes with
/// `MAXLEN ~`), and its length is read with the lag.
#[test]
fn the_dead_letter_stream_is_trimmed_to_its_bound() {
    const BOUND: u64 = 50;
    const DEAD: u64 = 1_000;
    let server = RedisServer::start();
    let good = xadd(&server, &[("event", &tool_json("s1", 5))]);
    // 1 000 invalid entries in one call.
    let _: () = server.cmd(&[
        "EVAL",
        "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'event', '{not json ' .. i) end",
        "1",
        STREAM,
        &DEAD.to_string(),
    ]);
    let last_bad = xadd(&server, &[("event", "{not json, the last")]);
    let node: Vec<String> = server.cmd(&["CONFIG", "GET", "stream-node-max-entries"]);
    let node: u64 = node[1].parse().expect("stream-node-max-entries");
    let mut calc = calc(&server, "deadbound");
    let mut source = source(&server, config("w1").with_dead_letter_max_len(BOUND));
    drain(&mut source, &mut calc);

    let stats = source.stats();
    assert_eq!((stats.applied, stats.dead_lettered), (1, DEAD + 1));
    let len: u64 = server.cmd(&["XLEN", &format!("{STREAM}:dead")]);
    assert!(
        (BOUND..BOUND + node).contains(&len),
        "{len} dead letters kept, bound {BOUND} (nodes of {node})"
    );
    // The newest are kept: the last dead letter is the last invalid entry.
    let dead = dead_letters(&server);
    assert_eq!(dead.len() as u64, len);
    assert_eq!(dead[dead.len() - 1]["entry_id"], last_bad);
    assert!(dead.iter().all(|d| d["entry_id"] != good));
    assert_eq!(group_pending(&server), 0);

    // The length is read with the lag (and exported as a gauge).
    let read = source.refresh_lag().expect("lag");
    assert_eq!(read.dead_letter_len, len);
    #[cfg(feature = "metrics")]
    {
        use composite_metrics::ingest::STREAM_DEAD_LETTER_LENGTH;
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || source.refresh_lag().expect("lag"));
        let gauge = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(key, _, _, _)| key.key().name() == STREAM_DEAD_LETTER_LENGTH)
            .map(|(_, _, _, value)| value);
        match gauge {
            Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), len as f64),
            other => panic!("{STREAM_DEAD_LETTER_LENGTH}: {other:?}"),
        }
    }
}

/// Without dead letters the length reads 0 (the stream does not exist).
#[test]
fn the_dead_letter_length_reads_zero_before_any_dead_letter() {
    let server = RedisServer::start();
    xadd(&server, &[("event", &tool_json("s1", 5))]);
    let mut calc = calc(&server, "deadzero");
    let mut source = source(&server, config("w1"));
    drain(&mut source, &mut calc);
    assert_eq!(source.refresh_lag().expect("lag").dead_letter_len, 0);
}

#[test]
fn invalid_configurations_are_refused() {
    let server = RedisServer::start();
    for config in [
        StreamConfig::new("", GROUP, "w"),
        StreamConfig::new(STREAM, GROUP, "w").with_count(0),
        StreamConfig::new(STREAM, GROUP, "w").with_max_deliveries(0),
        StreamConfig::new(STREAM, GROUP, "w").with_dead_letter(STREAM),
        StreamConfig::new(STREAM, GROUP, "w").with_dead_letter_max_len(0),
        StreamConfig::new(&"s".repeat(100), GROUP, "w"),
    ] {
        assert!(StreamSource::connect(&server.url(), config).is_err());
    }
}
