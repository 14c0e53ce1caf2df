//! Event time (issue 11, point 3): the events' timestamps drive session
//! duration, tools per minute, events per second and idle expiry; late
//! events beyond the allowance are rejected and counted; processing time
//! stays the default.

#[cfg(feature = "redis")]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use composite_metrics::clock::{Clock, ManualClock, SystemClock};
use composite_metrics::state::MemoryConfig;
use composite_metrics::{
    Error, Event, EventError, EventType, MemoryState, Metric, MetricsCalculator, StateBackend,
    TimeSource,
};
use proptest::prelude::*;

/// 2024-05-01T12:00:00Z plus `secs`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800 + secs)
}

fn event_time(lateness: u64) -> TimeSource {
    TimeSource::EventTime {
        allowed_lateness: Duration::from_secs(lateness),
    }
}

fn value(metrics: &[Metric], name: &str) -> Option<f64> {
    metrics.iter().find(|m| m.name == name).map(|m| m.value)
}

/// A historic session as JSONL: start at 0 s, `tools` tool runs spread over
/// the session, end at `span` s.
fn session_log(session: &str, span: u64, tools: u64) -> Vec<String> {
    let line = |t: u64, kind: &str, extra: &str| {
        let ts = humanize(at(t));
        format!(r#"{{"event_type":"{kind}","session_id":"{session}","timestamp":"{ts}"{extra}}}"#)
    };
    let mut lines = vec![line(0, "session_start", "")];
    for i in 0..tools {
        let t = 1 + i * (span - 2) / tools.max(1);
        lines.push(line(
            t,
            "tool_use",
            r#","tool_name":"bash","duration_ms":10,"payload":{"success":true}"#,
        ));
    }
    lines.push(line(span, "session_end", ""));
    lines
}

/// RFC 3339 of a whole-second time after 2024.
fn humanize(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // 2024-05-01 is day 19844 since the epoch; the test stays within May 2024.
    let day_of_may = days - 19_844 + 1;
    assert!(day_of_may <= 31, "test times stay in May 2024");
    format!(
        "2024-05-{day_of_may:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn replayed_log_on_the_system_clock_gives_the_session_span() {
    let mut calc = MetricsCalculator::builder()
        .clock(SystemClock)
        .time(event_time(5))
        .build()
        .unwrap();
    let mut last = Vec::new();
    for line in session_log("hist", 120, 6) {
        last = calc.process_json(&line).unwrap();
    }
    assert_eq!(value(&last, "session_duration"), Some(120.0));
    // 6 tool runs in 120 s: 3 per minute.
    assert_eq!(value(&last, "tools_per_minute"), Some(3.0));
    assert_eq!(calc.stats().events, 8);
    assert_eq!(calc.stats().late_events, 0);
    // The metrics carry the event time.
    assert_eq!(last[0].at, at(120).duration_since(UNIX_EPOCH).unwrap());
    assert_eq!(
        calc.watermark(),
        Some(at(120).duration_since(UNIX_EPOCH).unwrap())
    );
}

#[test]
fn processing_time_stays_the_default() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(calc.time_source(), TimeSource::Processing);
    let mut last = Vec::new();
    for line in session_log("hist", 120, 6) {
        last = calc.process_json(&line).unwrap();
    }
    // The clock did not move: the replay took no processing time.
    assert_eq!(value(&last, "session_duration"), Some(0.0));
    assert_eq!(value(&last, "tools_per_minute"), None);
    assert_eq!(calc.watermark(), None);
}

#[test]
fn events_per_second_counts_the_last_60_s_of_event_time() {
    let mut calc = MetricsCalculator::builder()
        .time(event_time(0))
        .build()
        .unwrap();
    // 120 events, one per second of event time.
    let mut last = Vec::new();
    for s in 0..120 {
        last = calc
            .process(&Event::tool_use("s1", "bash").with_timestamp(at(s)))
            .unwrap();
    }
    // The window holds the events of seconds 60..=119: 60 events / 60 s.
    assert_eq!(value(&last, "events_per_second"), Some(1.0));
}

#[test]
fn late_events_are_rejected_counted_and_change_nothing() {
    let mut calc = MetricsCalculator::builder()
        .time(event_time(10))
        .build()
        .unwrap();
    calc.process(&Event::new(EventType::SessionStart, "s1").with_timestamp(at(100)))
        .unwrap();
    // Within the allowance: recorded at its own time.
    calc.process(&Event::tool_use("s1", "bash").with_timestamp(at(90)))
        .unwrap();
    // 11 s behind: late.
    let err = calc
        .process(&Event::tool_use("s1", "bash").with_timestamp(at(89)))
        .unwrap_err();
    match err {
        Error::Event(EventError::Late { behind, allowed }) => {
            assert_eq!(behind, Duration::from_secs(11));
            assert_eq!(allowed, Duration::from_secs(10));
        }
        other => panic!("{other:?}"),
    }
    let s = calc.stats();
    assert_eq!((s.events, s.rejected, s.late_events), (2, 1, 1));
    // The watermark did not move back; the late tool run was not counted:
    // the session (started at 100 by session_start; the out-of-order run
    // does not move its start) ends 20 s later with one tool run.
    let end = calc
        .process(&Event::new(EventType::SessionEnd, "s1").with_timestamp(at(120)))
        .unwrap();
    assert_eq!(value(&end, "session_duration"), Some(20.0));
    assert_eq!(value(&end, "tools_per_minute"), Some(3.0));
}

#[test]
fn a_late_event_in_a_batch_refuses_the_batch() {
    let mut calc = MetricsCalculator::builder()
        .time(event_time(5))
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s1", "bash").with_timestamp(at(100)))
        .unwrap();
    let batch = [
        Event::tool_use("s1", "bash").with_timestamp(at(101)),
        Event::tool_use("s1", "bash").with_timestamp(at(90)),
    ];
    let err = calc.process_batch(&batch).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchEvent {
                index: 1,
                source: EventError::Late { .. }
            }
        ),
        "{err:?}"
    );
    let s = calc.stats();
    assert_eq!((s.events, s.rejected, s.late_events), (1, 2, 1));
    // A batch in order is recorded at its newest event time.
    let ok = calc
        .process_batch(&[
            Event::tool_use("s1", "bash").with_timestamp(at(102)),
            Event::tool_use("s1", "bash").with_timestamp(at(104)),
        ])
        .unwrap();
    let newest = at(104).duration_since(UNIX_EPOCH).unwrap();
    assert!(ok.iter().all(|m| m.at == newest));
    assert_eq!(calc.watermark(), Some(newest));
}

#[test]
fn a_timestamp_before_1970_is_refused_under_event_time() {
    let mut calc = MetricsCalculator::builder()
        .time(event_time(5))
        .build()
        .unwrap();
    let err = calc
        .process_json(
            r#"{"event_type":"tool_use","session_id":"s","timestamp":"1969-12-31T23:59:59Z"}"#,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Event(EventError::InvalidField {
                field: "timestamp",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(calc.stats().rejected, 1);
}

#[test]
fn idle_sessions_expire_by_event_time_on_memory_state() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let state = MemoryState::with_config(
        MemoryConfig::default().with_session_ttl(Duration::from_secs(300)),
        clock.clone(),
    )
    .unwrap();
    let mut calc = MetricsCalculator::builder()
        .state(state.clone())
        .time(event_time(5))
        .build()
        .unwrap();
    calc.process(&Event::tool_use("old", "bash").with_timestamp(at(0)))
        .unwrap();
    assert_eq!(state.footprint().sessions, 1);
    // The processing clock never moves; event time moves 10 minutes on.
    calc.process(&Event::tool_use("new", "bash").with_timestamp(at(600)))
        .unwrap();
    assert_eq!(state.footprint().sessions, 1, "the idle session expired");
}

#[cfg(feature = "redis")]
#[test]
fn on_redis_event_time_drives_duration_and_rate() {
    use composite_metrics::state::{RedisConfig, RedisState};
    let server = support::RedisServer::start();
    let state =
        RedisState::connect(&server.url(), RedisConfig::default().with_namespace("et")).unwrap();
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .time(event_time(5))
        .build()
        .unwrap();
    let mut last = Vec::new();
    for line in session_log("hist", 120, 6) {
        last = calc.process_json(&line).unwrap();
    }
    assert_eq!(value(&last, "session_duration"), Some(120.0));
    assert_eq!(value(&last, "tools_per_minute"), Some(3.0));
}

proptest! {
    /// Whatever the order, an event is rejected exactly when it is more than
    /// the allowance behind the newest event time applied before it; the
    /// others are all recorded.
    #[test]
    fn late_iff_behind_the_watermark_by_more_than_the_allowance(
        offsets in proptest::collection::vec(0u64..200, 1..60),
        lateness in 0u64..30,
    ) {
        let mut calc = MetricsCalculator::builder().time(event_time(lateness)).build().unwrap();
        let mut watermark: Option<u64> = None;
        let (mut applied, mut late) = (0u64, 0u64);
        for t in offsets {
            let result = calc.process(&Event::tool_use("s", "bash").with_timestamp(at(t)));
            let expect_late = watermark.is_some_and(|w| w > t + lateness);
            prop_assert_eq!(result.is_err(), expect_late, "t={} w={:?}", t, watermark);
            if expect_late {
                late += 1;
            } else {
                applied += 1;
                watermark = Some(watermark.map_or(t, |w| w.max(t)));
            }
        }
        let s = calc.stats();
        prop_assert_eq!((s.events, s.late_events, s.rejected), (applied, late, late));
    }
}

/// Issue 11, point 6: one clock given once is enough.
#[test]
fn the_calculator_adopts_the_clock_of_the_memory_state_it_is_given() {
    let clock = ManualClock::new(Duration::from_secs(5_000));
    let mut calc = MetricsCalculator::builder()
        .state(MemoryState::with_clock(clock.clone()))
        .build()
        .unwrap();
    assert_eq!(calc.clock().now(), Duration::from_secs(5_000));
    calc.process(&Event::new(EventType::SessionStart, "s"))
        .unwrap();
    clock.advance(Duration::from_secs(42));
    let end = calc
        .process(&Event::new(EventType::SessionEnd, "s"))
        .unwrap();
    assert_eq!(value(&end, "session_duration"), Some(42.0));
    assert_eq!(end[0].at, Duration::from_secs(5_042));
}

#[test]
fn the_builders_clock_drives_the_default_state_and_wins_for_the_calculator() {
    // `.clock()` alone: the default MemoryState runs on it.
    let clock = ManualClock::new(Duration::from_secs(7_000));
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(
        calc.state().clock().map(|c| c.now()),
        Some(Duration::from_secs(7_000))
    );
    // Both given: the calculator reads the builder's, the state keeps its own.
    let other = ManualClock::new(Duration::from_secs(9_000));
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(other))
        .build()
        .unwrap();
    assert_eq!(calc.clock().now(), Duration::from_secs(7_000));
    assert_eq!(
        calc.state().clock().map(|c| c.now()),
        Some(Duration::from_secs(9_000))
    );
}

/// The rate an event-time calculator reports after each event, by a naive
/// model: every recorded event counts in its own second, unless that second
/// is 60 or more seconds behind the newest recorded so far, then in that
/// newest second; the rate is the events counted in the 60 seconds ending at
/// the newest second, over 60.
fn naive_rates(offsets: &[u64], lateness: u64) -> Vec<Option<f64>> {
    let mut counted: Vec<u64> = Vec::new();
    let mut newest: Option<u64> = None;
    offsets
        .iter()
        .map(|&t| {
            if newest.is_some_and(|w| w > t + lateness) {
                return None; // rejected as late
            }
            let n = newest.map_or(t, |w| w.max(t));
            counted.push(if n - t >= 60 { n } else { t });
            newest = Some(n);
            let inside = counted.iter().filter(|&&s| s + 60 > n).count();
            Some(inside as f64 / 60.0)
        })
        .collect()
}

/// Runs `offsets` (seconds after `at(0)`) through `calc` one by one: the
/// events-per-second each reports, `None` for a rejected one.
fn rates(
    calc: &mut MetricsCalculator<composite_metrics::Never>,
    offsets: &[u64],
) -> Vec<Option<f64>> {
    offsets
        .iter()
        .map(|&t| {
            calc.process(&Event::new(EventType::Other, "s").with_timestamp(at(t)))
                .ok()
                .and_then(|m| value(&m, "events_per_second"))
        })
        .collect()
}

/// The README's example: runs at 12:02:00, 12:01:30 and 12:02:30 with 30 s
/// of allowed lateness. At 12:02:30 the window is 12:01:31 ..= 12:02:30, so
/// the run stamped 12:01:30 has left it.
#[test]
fn an_event_recorded_at_its_own_time_counts_in_its_own_second() {
    let offsets = [120, 90, 150];
    let want = [Some(1.0 / 60.0), Some(2.0 / 60.0), Some(2.0 / 60.0)];
    assert_eq!(naive_rates(&offsets, 30), want);
    let mut calc = MetricsCalculator::builder()
        .time(event_time(30))
        .build()
        .unwrap();
    assert_eq!(rates(&mut calc, &offsets), want, "memory");
    #[cfg(feature = "redis")]
    {
        use composite_metrics::state::{RedisConfig, RedisState};
        let server = support::RedisServer::start();
        let config = RedisConfig::default().with_namespace("own-second");
        let state = RedisState::connect(&server.url(), config).unwrap();
        let mut calc = MetricsCalculator::builder()
            .state(state)
            .time(event_time(30))
            .build()
            .unwrap();
        assert_eq!(rates(&mut calc, &offsets), want, "redis");
    }
}

/// Out-of-order event times give, on memory and on Redis alike, the rate of
/// the naive model: an event counts in its own second while that is inside
/// the window.
#[test]
fn the_event_time_rate_follows_the_naive_model() {
    // One server for every case, stopped when the test ends.
    #[cfg(feature = "redis")]
    let server = support::RedisServer::start();
    #[cfg(feature = "redis")]
    let case = std::sync::atomic::AtomicU64::new(0);
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        offsets in proptest::collection::vec(0u64..400, 1..40),
        lateness in prop::sample::select(vec![0u64, 5, 30, 59, 90]),
    )| {
        let want = naive_rates(&offsets, lateness);
        let mut calc = MetricsCalculator::builder().time(event_time(lateness)).build().unwrap();
        prop_assert_eq!(rates(&mut calc, &offsets), want.clone(), "memory");
        #[cfg(feature = "redis")]
        {
            use composite_metrics::state::{RedisConfig, RedisState};
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let config = RedisConfig::default().with_namespace(&format!("rate-{n}"));
            let state = RedisState::connect(&server.url(), config).unwrap();
            let mut calc = MetricsCalculator::builder()
                .state(state)
                .time(event_time(lateness))
                .build()
                .unwrap();
            prop_assert_eq!(rates(&mut calc, &offsets), want, "redis");
        }
    });
}

/// Issue 21, point 3: what a listing of a day-old replay gives. The state
/// serves calculators on any time source, and a listing has no event to take
/// a time from, so `active_sessions` and `expire_idle` read the state's
/// clock: on the system clock, yesterday's sessions are all idle past their
/// TTL and none is listed; a `ManualClock` set to the replay's time lists
/// them by event time.
#[test]
fn a_day_old_replay_is_listed_by_the_states_clock() {
    let replay = |clock: ManualClock| {
        let config = MemoryConfig::default().with_session_ttl(Duration::from_secs(300));
        let state = MemoryState::with_config(config, clock).unwrap();
        let mut calc = MetricsCalculator::builder()
            .state(state.clone())
            .time(event_time(5))
            .build()
            .unwrap();
        for (t, s) in [(0, "a"), (60, "b"), (120, "a")] {
            calc.process(&Event::tool_use(s, "bash").with_timestamp(at(t)))
                .unwrap();
        }
        state
    };
    // The state's clock a day after the log: nothing is listed, and
    // `expire_idle` forgets every session.
    let day_later = ManualClock::new(at(24 * 3600).duration_since(UNIX_EPOCH).unwrap());
    let state = replay(day_later);
    assert!(state.active_sessions().unwrap().is_empty());
    assert_eq!(state.footprint().sessions, 2);
    state.expire_idle();
    assert_eq!(state.footprint().sessions, 0);
    // The state's clock set to the replay's last event: listed by event time.
    let at_replay = ManualClock::new(at(120).duration_since(UNIX_EPOCH).unwrap());
    let state = replay(at_replay.clone());
    let mut listed: Vec<String> = state
        .active_sessions()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["a", "b"]);
    // Moved on by the replay's driver, the clock expires them as event time would.
    at_replay.advance(Duration::from_secs(300));
    assert_eq!(state.active_sessions().unwrap().len(), 0);
}
