//! The auto-batching handle (`Batcher`): many producers, backpressure,
//! per-event replies, flush on shutdown and on drop, failed batches.

#[cfg(feature = "redis")]
mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use composite_metrics::ingest::{Batcher, BatcherConfig, IngestError, TrySendError};
use composite_metrics::state::{MemoryConfig, Scope};
use composite_metrics::{
    CallbackSink, Delivery, Event, EventType, ManualClock, MemoryState, MetricsCalculator,
    SinkError, StateBackend,
};

fn tool_runs(state: &MemoryState) -> u64 {
    state
        .composite_inputs(Scope::Global)
        .expect("composite inputs")
        .tool_runs
}

fn memory_batcher(config: BatcherConfig) -> (Batcher, MemoryState) {
    let state = MemoryState::new();
    let shared = state.clone();
    let batcher = Batcher::start(config, move |_| {
        MetricsCalculator::builder().state(shared.clone()).build()
    })
    .expect("start");
    (batcher, state)
}

const TASKS: usize = 100;
const PER_TASK: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_tokio_tasks_send_100k_events_totals_exact() {
    // A small queue, so the async senders really wait for room.
    let config = BatcherConfig::default()
        .with_workers(2)
        .with_capacity(256)
        .with_max_batch(100);
    let (batcher, state) = memory_batcher(config);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    let event = Event::tool_use(format!("s{t}"), "bash")
                        .with_duration_ms((i % 50) as f64)
                        .with_success(i % 3 != 0);
                    batcher.send_async(event).await.expect("send");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let stats = batcher.shutdown();
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(stats.accepted, total);
    assert_eq!(stats.applied, total);
    assert_eq!(stats.failed + stats.rejected + stats.duplicates, 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(tool_runs(&state), total);
    // Batched: at most 100 per batch, so at least 1000 batches, and far
    // fewer than one per event.
    assert!(stats.batches >= total / 100, "{stats:?}");
    assert!(stats.batches < total / 2, "{stats:?}");
}

#[test]
fn threads_blocking_send_totals_exact() {
    let (batcher, state) = memory_batcher(BatcherConfig::default().with_capacity(10));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let batcher = batcher.clone();
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    batcher
                        .send(Event::tool_use(format!("t{t}"), "grep"))
                        .expect("send");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer");
    }
    let stats = batcher.shutdown();
    assert_eq!((stats.accepted, stats.applied), (8_000, 8_000));
    assert_eq!(tool_runs(&state), 8_000);
}

/// A calculator whose sink blocks until the test releases it, so the worker
/// stays inside its batch and the queue fills.
fn gated_batcher(config: BatcherConfig) -> (Batcher, mpsc::Sender<()>, MemoryState) {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let state = MemoryState::new();
    let shared = state.clone();
    let batcher = Batcher::start(config, move |_| {
        let gate = Arc::clone(&gate);
        MetricsCalculator::builder()
            .state(shared.clone())
            .sink(CallbackSink::new(move |_| {
                gate.lock()
                    .map_err(|_| SinkError::new("gate", "poisoned"))?
                    .recv()
                    .map_err(|_| SinkError::new("gate", "closed"))
            }))
            .build()
    })
    .expect("start");
    (batcher, release, state)
}

/// Waits (bounded) until the worker took the queued events.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn try_send_says_full_and_hands_the_event_back() {
    let config = BatcherConfig::default()
        .with_capacity(2)
        .with_max_batch(1)
        .with_max_delay(Duration::ZERO);
    let (batcher, release, state) = gated_batcher(config);
    batcher.try_send(Event::tool_use("s", "a")).expect("first");
    // The worker takes it and blocks in the sink.
    wait_until("the first batch", || batcher.stats().batches == 1);
    batcher.try_send(Event::tool_use("s", "b")).expect("second");
    batcher.try_send(Event::tool_use("s", "c")).expect("third");
    let refused = batcher.try_send(Event::tool_use("s", "d")).unwrap_err();
    assert!(matches!(refused, TrySendError::Full(_)));
    assert_eq!(refused.into_event().tool_name.as_deref(), Some("d"));
    let stats = batcher.stats();
    assert_eq!(
        (stats.accepted, stats.refused_full, stats.queued),
        (3, 1, 2)
    );
    for _ in 0..3 {
        release.send(()).expect("release");
    }
    let stats = batcher.shutdown();
    assert_eq!(stats.applied, 3);
    assert_eq!(tool_runs(&state), 3);
}

#[test]
fn replies_carry_metrics_duplicates_and_rejections() {
    let (batcher, _state) = memory_batcher(
        BatcherConfig::default()
            .with_max_batch(10)
            .with_max_delay(Duration::from_millis(50)),
    );
    let first = batcher
        .send_with_reply(
            Event::tool_use("s1", "bash")
                .with_duration_ms(12.0)
                .with_event_id("e1"),
        )
        .expect("send");
    let again = batcher
        .send_with_reply(Event::tool_use("s1", "bash").with_event_id("e1"))
        .expect("send");
    let bad = batcher
        .send_with_reply(Event::tool_use("s1", "bash").with_duration_ms(-1.0))
        .expect("send");
    let edit = batcher
        .send_with_reply(Event::new(EventType::FileEdit, "s1").with_accepted(true))
        .expect("send");

    let first = first.wait().expect("applied");
    assert_eq!(first.delivery, Delivery::Applied);
    assert!(first
        .metrics
        .iter()
        .any(|m| m.full_name() == "tools/tool_latency_p50" && m.value == 12.0));
    let again = again.wait().expect("duplicate");
    assert_eq!(again.delivery, Delivery::Duplicate);
    assert!(again.metrics.is_empty());
    match bad.wait() {
        Err(IngestError::Rejected(e)) => assert!(e.to_string().contains("duration_ms")),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let edit = edit.wait().expect("applied");
    assert!(edit
        .metrics
        .iter()
        .any(|m| m.full_name().contains("acceptance_rate")));
    let stats = batcher.shutdown();
    assert_eq!((stats.applied, stats.duplicates, stats.rejected), (2, 1, 1));
}

#[test]
fn a_failed_batch_answers_every_event_with_its_error() {
    let clock = ManualClock::new(Duration::ZERO);
    let state = MemoryState::with_config(MemoryConfig::default().with_max_sessions(1), clock)
        .expect("state");
    let shared = state.clone();
    let batcher = Batcher::start(
        BatcherConfig::default()
            .with_max_batch(3)
            .with_max_delay(Duration::from_secs(3600)),
        move |_| MetricsCalculator::builder().state(shared.clone()).build(),
    )
    .expect("start");
    // Three sessions in one batch over a limit of one: the batch fails, all or none.
    let replies: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            batcher
                .send_with_reply(Event::tool_use(*s, "bash"))
                .expect("send")
        })
        .collect();
    for r in replies {
        match r.wait() {
            Err(IngestError::Batch(e)) => assert!(e.to_string().contains("capacity"), "{e}"),
            other => panic!("expected a failed batch, got {other:?}"),
        }
    }
    let stats = batcher.shutdown();
    assert_eq!((stats.failed, stats.applied, stats.batches), (3, 0, 1));
    assert_eq!(tool_runs(&state), 0);
}

#[test]
fn shutdown_flushes_every_accepted_event_and_then_refuses() {
    // A batch would wait an hour to fill: shutdown must not.
    let config = BatcherConfig::default()
        .with_workers(3)
        .with_max_batch(1_000_000)
        .with_capacity(1_000_000)
        .with_max_delay(Duration::from_secs(3600));
    let (batcher, state) = memory_batcher(config);
    for i in 0..5_000 {
        batcher
            .try_send(Event::tool_use(format!("s{}", i % 7), "bash"))
            .expect("room");
    }
    let clone = batcher.clone();
    let stats = batcher.shutdown();
    assert_eq!(
        (stats.accepted, stats.applied, stats.queued),
        (5_000, 5_000, 0)
    );
    assert_eq!(tool_runs(&state), 5_000);
    let refused = clone.send(Event::tool_use("late", "bash")).unwrap_err();
    assert_eq!(refused.0.session_id.as_ref(), "late");
    assert!(matches!(
        clone.try_send(Event::tool_use("late", "bash")),
        Err(TrySendError::Closed(_))
    ));
    assert_eq!(clone.shutdown().accepted, 5_000);
}

#[test]
fn dropping_the_last_handle_flushes() {
    let config = BatcherConfig::default()
        .with_max_batch(10_000)
        .with_max_delay(Duration::from_secs(3600));
    let (batcher, state) = memory_batcher(config);
    let clone = batcher.clone();
    for _ in 0..1_234 {
        clone.send(Event::tool_use("s", "bash")).expect("send");
    }
    drop(clone);
    assert_eq!(tool_runs(&state), 0, "still waiting for the batch to fill");
    drop(batcher);
    assert_eq!(tool_runs(&state), 1_234);
}

#[test]
fn drop_waits_at_most_drop_timeout_for_a_stuck_worker() {
    let timeout = Duration::from_millis(200);
    let config = BatcherConfig::default()
        .with_max_batch(1)
        .with_drop_timeout(timeout);
    let (batcher, release, state) = gated_batcher(config);
    batcher.send(Event::tool_use("s", "a")).expect("send");
    batcher.send(Event::tool_use("s", "b")).expect("send");
    wait_until("the first batch", || batcher.stats().batches == 1);
    let started = Instant::now();
    drop(batcher);
    let waited = started.elapsed();
    assert!(waited >= timeout, "returned before its timeout: {waited:?}");
    assert!(waited < timeout + timeout / 2, "waited {waited:?}");
    // The detached worker still flushes what was accepted.
    release.send(()).expect("release");
    release.send(()).expect("release");
    wait_until("the detached flush", || tool_runs(&state) == 2);
}

#[test]
fn an_event_waits_at_most_max_delay_for_its_batch() {
    let (batcher, _state) = memory_batcher(
        BatcherConfig::default()
            .with_max_batch(1_000)
            .with_max_delay(Duration::from_millis(20)),
    );
    let reply = batcher
        .send_with_reply(Event::tool_use("s", "bash"))
        .expect("send");
    let mut reply = Some(reply);
    wait_until("the reply of a lone event", || {
        match reply.take().map(|r| r.try_take()) {
            Some(Ok(result)) => {
                assert_eq!(result.expect("applied").delivery, Delivery::Applied);
                true
            }
            Some(Err(r)) => {
                reply = Some(r);
                false
            }
            None => true,
        }
    });
    assert_eq!(batcher.shutdown().batches, 1);
}

#[test]
fn invalid_configuration_is_refused() {
    for config in [
        BatcherConfig::default().with_workers(0),
        BatcherConfig::default().with_capacity(0),
        BatcherConfig::default().with_max_batch(0),
    ] {
        let err = Batcher::start(config, |_| MetricsCalculator::builder().build()).unwrap_err();
        assert!(err.to_string().contains("greater than zero"), "{err}");
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_tokio_tasks_on_redis_totals_exact() {
    use composite_metrics::state::{RedisConfig, RedisState};

    let server = support::RedisServer::start();
    let url = server.url();
    let batcher = Batcher::start(
        BatcherConfig::default()
            .with_workers(2)
            .with_capacity(1_000)
            .with_max_batch(200),
        |_| {
            let state = RedisState::connect(&url, RedisConfig::default().with_namespace("ingest"))?;
            MetricsCalculator::builder().state(state).build()
        },
    )
    .expect("start");
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    let event = if i % 4 == 3 {
                        Event::new(EventType::FileEdit, format!("s{t}")).with_accepted(true)
                    } else {
                        Event::tool_use(format!("s{t}"), "bash").with_duration_ms(i as f64)
                    };
                    batcher.send_async(event).await.expect("send");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let stats = batcher.shutdown();
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(
        (stats.accepted, stats.applied, stats.failed),
        (total, total, 0)
    );
    let events: u64 = server.cmd(&["HGET", "{ingest}:totals", "events"]);
    assert_eq!(events, total);
    let tool_runs: u64 = server.cmd(&["HGET", "{ingest}:totals", "tool_runs"]);
    assert_eq!(tool_runs, total / 4 * 3);
}

#[tokio::test(flavor = "current_thread")]
async fn async_sends_with_replies_resolve_on_a_single_threaded_runtime() {
    let (batcher, state) = memory_batcher(
        BatcherConfig::default()
            .with_capacity(4)
            .with_max_delay(Duration::from_millis(1)),
    );
    let mut replies = Vec::new();
    for i in 0..20 {
        // The queue holds 4: later sends wait (without blocking the only
        // runtime thread) until the worker thread makes room.
        let reply = batcher
            .send_async_with_reply(
                Event::tool_use("s", "bash").with_event_id(format!("e{}", i % 10)),
            )
            .await
            .expect("send");
        replies.push(reply);
    }
    let mut applied = 0;
    let mut duplicates = 0;
    for reply in replies {
        match reply.await.expect("processed").delivery {
            Delivery::Applied => applied += 1,
            Delivery::Duplicate => duplicates += 1,
        }
    }
    assert_eq!((applied, duplicates), (10, 10));
    let reply = batcher
        .try_send_with_reply(Event::tool_use("s", "grep"))
        .expect("room");
    assert_eq!(reply.await.expect("processed").delivery, Delivery::Applied);
    assert_eq!(tool_runs(&state), 11);
    let stats = batcher.shutdown();
    assert_eq!((stats.applied, stats.duplicates), (11, 10));
}
