//! `process_json` allocates once per event in steady state (the returned
//! `Vec`), counted by a global allocator that counts this thread's
//! allocations and reallocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::{EventBased, MemorySink, MemoryState, MetricsCalculator};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread's counter may be gone while it exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to `System` unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A realistic stream: tool runs with durations and outcomes, MCP calls,
/// prompts and edits, over a few sessions and tools, some with escapes in
/// unrelated fields and unknown fields.
fn lines() -> Vec<String> {
    let tools = ["bash", "read", "edit", "grep", "mcp__github__search"];
    let mut out = Vec::new();
    for i in 0..64usize {
        let session = format!("session-{:04}", i % 6);
        let ts = format!("2024-05-01T12:{:02}:{:02}.{:03}Z", i % 60, (i * 7) % 60, i);
        let line = match i % 5 {
            0 | 1 => format!(
                r#"{{"event_type":"tool_use","session_id":"{session}","timestamp":"{ts}","tool_name":"{}","duration_ms":{}.5,"payload":{{"success":{}}}}}"#,
                tools[i % tools.len()],
                10 + i * 3,
                i % 3 != 0
            ),
            2 => format!(
                r#"{{"event_type":"mcp_execution","session_id":"{session}","timestamp":"{ts}","tool_name":"{}","duration_ms":{},"payload":{{"success":true,"extra":"a \"quoted\" note"}}}}"#,
                tools[4],
                200 + i
            ),
            3 => format!(
                r#"{{"event_type":"user_prompt","session_id":"{session}","timestamp":"{ts}","payload":{{"prompt_length":{}}},"client":"cli"}}"#,
                40 + i
            ),
            _ => format!(
                r#"{{"event_type":"file_edit","session_id":"{session}","timestamp":"{ts}","payload":{{"accepted":{}}}}}"#,
                i % 4 != 1
            ),
        };
        out.push(line);
    }
    out
}

#[test]
fn process_json_allocates_once_per_event_in_steady_state() {
    let clock = ManualClock::new(Duration::from_secs(1_714_564_800));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .sink(MemorySink::new())
        .scheduler(EventBased::every(1_000_000))
        .build()
        .expect("calculator");
    let lines = lines();
    // Warm up: every session, tool and series exists, every sink series has
    // reached its capacity (1 000 points), every map its size.
    for line in lines.iter().cycle().take(40_000) {
        calc.process_json(line).expect("valid line");
    }
    let events = 5_000u64;
    let before = allocations();
    let mut metrics = 0usize;
    for line in lines.iter().cycle().take(events as usize) {
        metrics += calc.process_json(line).expect("valid line").len();
    }
    let allocated = allocations() - before;
    assert!(metrics as u64 > events, "every event yields metrics");
    // Exactly the returned Vec of each event, nothing else.
    assert_eq!(
        allocated, events,
        "{allocated} allocations for {events} events"
    );
}

#[test]
fn from_json_allocates_only_the_event_strings() {
    let line = &lines()[0];
    composite_metrics::Event::from_json(line).expect("valid");
    let before = allocations();
    let event = composite_metrics::Event::from_json(line).expect("valid");
    // The session id's and the tool name's `Arc<str>`, nothing else.
    assert_eq!(allocations() - before, 2);
    assert_eq!(event.tool_name.as_deref(), Some("bash"));
}
