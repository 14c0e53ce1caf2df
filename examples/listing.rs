//! Measures the paged session listing at scale against a Redis server.
//!
//! ```text
//! cargo run --release --features redis --example listing -- redis://127.0.0.1:6379/ [sessions]
//! ```
//!
//! Opens `sessions` sessions (default 1 000 000) in a fresh namespace
//! (`listing-<pid>`, session TTL 10 minutes, so everything it wrote expires
//! by itself), then:
//!
//! 1. lists them with `active_sessions_page` (1 000 per page), as a
//!    per-session `Background` run does, and prints pages/s, the time to list
//!    them all and the slowest page;
//! 2. does the same and also reads each page's composite inputs
//!    (`session_inputs`), the whole read side of a per-session run;
//! 3. tries the one-call `active_sessions()` with the default read timeout,
//!    for comparison.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState, SessionCursor};
use composite_metrics::{Event, EventType, StateBackend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let n: usize = match args.next() {
        Some(s) => s.parse()?,
        None => 1_000_000,
    };
    let config = RedisConfig::default()
        .with_namespace(&format!("listing-{}", std::process::id()))
        .with_session_ttl(Duration::from_secs(600))
        .with_max_sessions(n + 1);
    let read_timeout = config.read_timeout();
    let state = RedisState::connect(&url, config)?;

    let start = Instant::now();
    let mut out = Vec::new();
    let mut events = Vec::with_capacity(1_000);
    for first in (0..n).step_by(1_000) {
        events.clear();
        events.extend(
            (first..(first + 1_000).min(n))
                .map(|i| Event::new(EventType::SessionStart, format!("session-{i}"))),
        );
        out.clear();
        state.record_batch(&events, Duration::ZERO, &mut out)?;
    }
    println!(
        "opened {n} sessions in {:.1} s (batches of 1 000)",
        start.elapsed().as_secs_f64()
    );

    for with_inputs in [false, true] {
        let start = Instant::now();
        let (mut cursor, mut pages, mut slowest, mut listed): (Option<SessionCursor>, u64, _, _) = (
            None,
            0,
            Duration::ZERO,
            HashSet::<Arc<str>>::with_capacity(n),
        );
        let mut inputs = Vec::with_capacity(2_000);
        loop {
            let t = Instant::now();
            let page = state.active_sessions_page(cursor, 1_000)?;
            if with_inputs {
                inputs.clear();
                state.session_inputs(&page.sessions, &mut inputs)?;
            }
            slowest = slowest.max(t.elapsed());
            pages += 1;
            listed.extend(page.sessions);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}: {} sessions in {pages} pages, {secs:.2} s, {:.0} pages/s, slowest page {:.1} ms (read timeout {} ms)",
            if with_inputs {
                "listing + inputs"
            } else {
                "listing         "
            },
            listed.len(),
            pages as f64 / secs,
            slowest.as_secs_f64() * 1e3,
            read_timeout.as_millis(),
        );
        if listed.len() != n {
            return Err(format!("listed {} of {n} sessions", listed.len()).into());
        }
    }

    let start = Instant::now();
    match state.active_sessions() {
        Ok(all) => println!(
            "active_sessions() in one call: {} sessions, {:.0} ms",
            all.len(),
            start.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => println!(
            "active_sessions() in one call failed after {:.0} ms: {e}",
            start.elapsed().as_secs_f64() * 1e3
        ),
    }
    Ok(())
}
