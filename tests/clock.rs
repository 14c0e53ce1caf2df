//! Issue 2, point 5: the clock, and every time-dependent metric reading the
//! calculator's clock rather than wall time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use composite_metrics::clock::{Clock, ManualClock, SystemClock, Wake};
use composite_metrics::metric::names;
use composite_metrics::{
    Category, Event, EventType, MemoryState, Metric, MetricsCalculator, Never, StateBackend,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn manual_clock_clones_share_one_time() {
    let a = ManualClock::new(secs(1_000));
    let b = a.clone();
    let c = b.clone();
    assert_eq!(
        (a.now(), b.now(), c.now()),
        (secs(1_000), secs(1_000), secs(1_000))
    );
    b.advance(Duration::from_millis(1_500));
    assert_eq!(a.now(), Duration::from_millis(1_001_500));
    assert_eq!(c.now(), a.now());
    c.set(secs(42));
    assert_eq!(a.now(), secs(42), "set may move time backwards");
    a.set(secs(90_000));
    assert_eq!(b.now(), secs(90_000));
    // A separate clock does not share.
    let other = ManualClock::new(secs(1));
    other.advance(secs(5));
    assert_eq!(a.now(), secs(90_000));
    assert_eq!(other.now(), secs(6));
}

#[test]
fn manual_clock_default_is_2024() {
    // 2024-01-01T00:00:00Z: 54 years after 1970 with 13 leap days.
    let want = (54 * 365 + 13) * 86_400;
    assert_eq!(ManualClock::default().now(), secs(want));
}

#[test]
fn manual_clock_works_through_the_trait_object_and_arc() {
    let clock = ManualClock::new(secs(10));
    let dynamic: Arc<dyn Clock> = Arc::new(clock.clone());
    clock.advance(secs(5));
    assert_eq!(dynamic.now(), secs(15));
    assert_eq!(Clock::now(&dynamic), secs(15));
}

#[test]
fn manual_clock_wakes_a_waiter_when_advanced() {
    let clock = ManualClock::new(secs(100));
    let waiter = {
        let clock = clock.clone();
        std::thread::spawn(move || {
            let wake = Arc::new(Wake::new());
            while clock.now() < secs(200) {
                clock.wait_until(secs(200), &wake);
            }
            clock.now()
        })
    };
    clock.advance(secs(100));
    assert_eq!(waiter.join().unwrap(), secs(200));
}

#[test]
fn system_clock_reads_wall_time() {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = SystemClock.now();
    let diff = now.abs_diff(wall);
    assert!(diff < secs(5), "{now:?} vs {wall:?}");
}

/// A clock that is not a ManualClock: proves the calculator uses the clock it is given.
#[derive(Debug)]
struct Fixed(Duration);

impl Clock for Fixed {
    fn now(&self) -> Duration {
        self.0
    }
    fn wait_until(&self, _deadline: Duration, wake: &Arc<Wake>) {
        wake.wait_for(Duration::from_millis(1));
    }
}

#[test]
fn a_custom_clock_stamps_every_metric() {
    let mut calc = MetricsCalculator::builder()
        .clock(Fixed(secs(77)))
        .build()
        .unwrap();
    let m = calc
        .process(&Event::tool_use("s", "bash").with_duration_ms(1.0))
        .unwrap();
    assert!(!m.is_empty());
    assert!(m.iter().all(|m| m.at == secs(77)));
    assert_eq!(calc.clock().now(), secs(77));
}

fn eps(m: &[Metric]) -> f64 {
    m.iter()
        .find(|m| m.is(Category::Realtime, names::EVENTS_PER_SECOND))
        .unwrap()
        .value
}

fn manual_calc(start: u64) -> (MetricsCalculator<Never>, ManualClock) {
    // 1970-01-12: far from wall time, so a wall-clock reading would show.
    let clock = ManualClock::new(secs(start));
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .build()
        .unwrap();
    (calc, clock)
}

#[test]
fn events_per_second_follows_the_manual_clock() {
    let (mut calc, clock) = manual_calc(1_000_000);
    let ping = || Event::new(EventType::Other, "s");
    let mut last = Vec::new();
    for _ in 0..30 {
        last = calc.process(&ping()).unwrap();
    }
    // 30 events in the last 60 s.
    assert_eq!(eps(&last), 0.5);
    assert!(last.iter().all(|m| m.at == secs(1_000_000)));
    clock.advance(secs(59));
    // Second 1_000_059: the window 1_000_000..=1_000_059 holds all 31.
    assert_eq!(eps(&calc.process(&ping()).unwrap()), 31.0 / 60.0);
    clock.advance(secs(1));
    // Second 1_000_060: the 30 of second 1_000_000 have left the window.
    assert_eq!(eps(&calc.process(&ping()).unwrap()), 2.0 / 60.0);
    clock.advance(Duration::from_millis(999));
    // Still second 1_000_060.
    assert_eq!(eps(&calc.process(&ping()).unwrap()), 3.0 / 60.0);
    clock.advance(secs(3_600));
    assert_eq!(eps(&calc.process(&ping()).unwrap()), 1.0 / 60.0);
}

#[test]
fn session_duration_follows_the_manual_clock_not_the_timestamps() {
    let (mut calc, clock) = manual_calc(2_000_000);
    // Timestamps claim the session lasted a year; the clock says 3 hours.
    let year_ago = SystemTime::now() - secs(365 * 86_400);
    calc.process(&Event::new(EventType::SessionStart, "s").with_timestamp(year_ago))
        .unwrap();
    for _ in 0..9 {
        clock.advance(secs(1_200));
        calc.process(&Event::tool_use("s", "bash")).unwrap();
    }
    clock.advance(secs(3 * 3_600 - 9 * 1_200));
    let m = calc
        .process(&Event::new(EventType::SessionEnd, "s"))
        .unwrap();
    let value = |name| {
        m.iter()
            .find(|m| m.is(Category::Session, name))
            .unwrap()
            .value
    };
    assert_eq!(value(names::SESSION_DURATION), 10_800.0);
    // 9 tool runs in 180 minutes.
    assert_eq!(value(names::TOOLS_PER_MINUTE), 0.05);
    assert_eq!(value(names::PROMPTS_PER_SESSION), 0.0);
}

#[test]
fn session_expiry_follows_the_manual_clock() {
    let clock = ManualClock::new(secs(3_000_000));
    let state = MemoryState::with_clock(clock.clone());
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state.clone())
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s", "bash")).unwrap();
    assert_eq!(state.active_sessions().unwrap().len(), 1);
    clock.advance(secs(24 * 3_600 - 1));
    assert_eq!(state.active_sessions().unwrap().len(), 1);
    clock.advance(secs(1));
    // Wall time has hardly moved; the clock says a day passed.
    assert!(state.active_sessions().unwrap().is_empty());
    calc.process(&Event::tool_use("t", "bash")).unwrap();
    assert_eq!(state.footprint().sessions, 1);
    assert_eq!(
        state
            .active_sessions()
            .unwrap()
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>(),
        ["t"]
    );
}

#[test]
fn advancing_by_a_huge_duration_never_moves_time_back() {
    let clock = ManualClock::new(secs(1_000));
    clock.advance(Duration::MAX);
    assert!(clock.now() >= secs(1_000), "{:?}", clock.now());
    let after = clock.now();
    clock.advance(secs(1));
    assert!(clock.now() >= after);
}

#[test]
fn throughput_counts_the_event_after_the_clock_steps_back() {
    let (mut calc, clock) = manual_calc(20_000);
    let ping = || Event::new(EventType::Other, "s");
    assert_eq!(eps(&calc.process(&ping()).unwrap()), 1.0 / 60.0);
    // The wall clock jumps back an hour (NTP): the events still happened.
    clock.set(secs(20_000 - 3_600));
    let m = calc.process(&ping()).unwrap();
    assert_eq!(
        eps(&m),
        2.0 / 60.0,
        "this event and the one before, in the last 60 s"
    );
}
