//! Issue 9, point 7: at most 20 heap allocations on the client per
//! unbatched event through `MetricsCalculator::process` on Redis, counted
//! by a counting global allocator (its own test binary, one test, so no
//! other test allocates meanwhile).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, MetricsCalculator, Never};
use support::RedisServer;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[test]
fn at_most_20_allocations_per_unbatched_event() {
    let server = RedisServer::start();
    let state = RedisState::connect(
        &server.url(),
        RedisConfig::default().with_namespace("allocs"),
    )
    .unwrap();
    let mut calc: MetricsCalculator<Never> =
        MetricsCalculator::builder().state(state).build().unwrap();
    let events: Vec<Event> = (0..1000)
        .map(|i: u32| match i % 4 {
            3 => Event::new(EventType::FileEdit, "s1").with_accepted(i.is_multiple_of(2)),
            _ => Event::tool_use("s1", if i.is_multiple_of(2) { "bash" } else { "grep" })
                .with_duration_ms(f64::from(i % 250) + 0.5)
                .with_success(!i.is_multiple_of(5)),
        })
        .collect();
    // Warm up: scripts loaded, buffers grown, windows synced.
    for e in &events[..200] {
        calc.process(e).unwrap();
    }
    let before = allocations();
    for e in &events {
        let metrics = calc.process(e).unwrap();
        assert!(!metrics.is_empty());
    }
    let per_event = (allocations() - before) as f64 / events.len() as f64;
    eprintln!("client allocations per unbatched event: {per_event:.2}");
    assert!(per_event <= 20.0, "{per_event} allocations per event");
    // Reading a reply allocates: a count of 0 would mean nothing was measured.
    assert!(per_event >= 1.0, "{per_event}");
}
