//! Event-path costs on the in-memory backend: the scheduling decision of each
//! strategy (not-due path), the whole `process` call of each strategy against
//! `Never`, and one composite calculation. Prints the `process` ratios to
//! `Never` at the end.
//!
//! Run: `cargo bench --bench calculator`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::clock::ManualClock;
use composite_metrics::schedule::{CompositeScheduler, Decision, EventContext};
use composite_metrics::sim::EventMix;
use composite_metrics::{
    Background, BackgroundConfig, Coalesce, CoalesceConfig, CompositeScope, Event, EventBased,
    HybridLock, MemoryState, MetricsCalculator, Never, TimeBased,
};
use criterion::{criterion_group, Criterion, Throughput};

/// A second that is not a multiple of 10, so `TimeBased` is not due.
const NOT_DUE_SECOND: u64 = 1_704_067_201;

/// The simulator's realistic mix (tools with durations and outcomes, edits,
/// prompts, session starts and ends over 8 sessions), as `examples/event_path.rs` uses.
fn events() -> Vec<Event> {
    let mut mix = EventMix::new(1, 8, 42);
    let at = Duration::from_secs(NOT_DUE_SECOND);
    (0..1024).map(|_| mix.next_event(0, at)).collect()
}

fn decision(c: &mut Criterion) {
    let clock = ManualClock::new(Duration::from_secs(NOT_DUE_SECOND));
    let state = MemoryState::with_clock(clock.clone());
    let session: Arc<str> = Arc::from("s1");
    let ctx = EventContext {
        now: Duration::from_secs(NOT_DUE_SECOND),
        session: &session,
        scope: CompositeScope::Global,
        backend: &state,
    };
    let mut hybrid = HybridLock::default();
    // The first decision computes (no calculation known yet); afterwards the
    // worker knows of it and every event within min_interval is not due.
    if let Ok(Decision::Compute(ticket)) = hybrid.on_event(&ctx) {
        let _ = hybrid.on_computed(&ctx, ticket);
    }
    // Coalesce learns of that calculation on its first decision (too soon)
    // and arms its deadline; afterwards every event within it is not due.
    let mut coalesce = Coalesce::manual(CoalesceConfig::default()).expect("default is valid");
    let _ = coalesce.on_event(&ctx);
    let mut strategies: Vec<(&str, Box<dyn CompositeScheduler>)> = vec![
        ("never", Box::new(Never)),
        ("time-based", Box::new(TimeBased::default())),
        ("event-based", Box::new(EventBased::every(u64::MAX))),
        ("hybrid-lock", Box::new(hybrid)),
        ("background", Box::new(Background::default())),
        ("coalesce", Box::new(coalesce)),
    ];
    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));
    for (name, scheduler) in &mut strategies {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(scheduler.on_event(black_box(&ctx))))
        });
    }
    group.finish();
}

fn bench_process<S: CompositeScheduler>(c: &mut Criterion, name: &str, scheduler: S) {
    let mut calc = calculator(scheduler);
    let events = events();
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    let mut group = c.benchmark_group("process");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            let event = &events[i % events.len()];
            i += 1;
            calc.process_into(black_box(event), &mut out)
                .expect("valid event");
            black_box(out.len())
        })
    });
    group.finish();
}

fn process(c: &mut Criterion) {
    bench_process(c, "never", Never);
    bench_process(c, "time-based", TimeBased::default());
    bench_process(c, "event-based", EventBased::every(100));
    bench_process(c, "hybrid-lock", HybridLock::default());
    let background = Background::new(BackgroundConfig::default()).expect("default is valid");
    bench_process(c, "background", background);
    let coalesce = Coalesce::new(CoalesceConfig::default()).expect("default is valid");
    bench_process(c, "coalesce", coalesce);
}

fn composite(c: &mut Criterion) {
    let mut calc = MetricsCalculator::builder()
        .state(MemoryState::new())
        .build()
        .expect("defaults are valid");
    for event in events() {
        calc.process(&event).expect("valid event");
    }
    c.bench_function("composite/memory", |b| {
        b.iter(|| black_box(calc.compute_now(None).expect("memory never fails")))
    });
}

criterion_group!(benches, decision, process, composite);

/// Reads criterion's estimate (ns) for `group/id` from this run's output:
/// the slope when criterion fitted one, else the mean.
fn estimate_ns(group: &str, id: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{target}/criterion/{group}/{id}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

fn calculator<S: CompositeScheduler>(scheduler: S) -> MetricsCalculator<S> {
    let clock = ManualClock::new(Duration::from_secs(NOT_DUE_SECOND));
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .scheduler(scheduler)
        .build()
        .expect("valid configuration")
}

fn time_events<S: CompositeScheduler>(
    calc: &mut MetricsCalculator<S>,
    events: &[Event],
    n: usize,
) -> f64 {
    let mut out = Vec::with_capacity(16);
    let started = Instant::now();
    for i in 0..n {
        out.clear();
        calc.process_into(black_box(&events[i % events.len()]), &mut out)
            .expect("valid event");
    }
    started.elapsed().as_secs_f64()
}

/// `process` with a scheduler against `Never`, interleaved in alternating
/// rounds so that drift in machine load hits both sides alike, over several
/// fresh pairs of calculators so that one pair's memory layout does not
/// decide the result: the median of all per-round time ratios.
fn interleaved_ratio<S: CompositeScheduler>(make: impl Fn() -> S) -> f64 {
    const PAIRS: usize = 7;
    const ROUNDS: usize = 9;
    const EVENTS: usize = 20_000;
    let events = events();
    let mut ratios = Vec::with_capacity(PAIRS * ROUNDS);
    for _ in 0..PAIRS {
        let mut base = calculator(Never);
        let mut other = calculator(make());
        time_events(&mut base, &events, EVENTS);
        time_events(&mut other, &events, EVENTS);
        for round in 0..ROUNDS {
            // Alternate which side goes first.
            ratios.push(if round % 2 == 0 {
                let a = time_events(&mut base, &events, EVENTS);
                time_events(&mut other, &events, EVENTS) / a
            } else {
                let b = time_events(&mut other, &events, EVENTS);
                b / time_events(&mut base, &events, EVENTS)
            });
        }
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    let Some(never) = estimate_ns("process", "never") else {
        return;
    };
    println!("\nprocess per event against never ({never:.1} ns per event):");
    println!(
        "  strategy      criterion   ratio   interleaved ratio (median of 7 pairs x 9 rounds)"
    );
    // A control: `Never` against a second `Never` shows the method's own bias.
    let control = interleaved_ratio(|| Never);
    println!(
        "  {:<12} {:>11}  {:>7}  {control:>6.3}x  (control)",
        "never", "", ""
    );
    let interleaved = [
        ("time-based", interleaved_ratio(TimeBased::default)),
        ("event-based", interleaved_ratio(|| EventBased::every(100))),
        ("hybrid-lock", interleaved_ratio(HybridLock::default)),
        (
            "background",
            interleaved_ratio(|| Background::new(BackgroundConfig::default()).expect("valid")),
        ),
        (
            "coalesce",
            interleaved_ratio(|| Coalesce::new(CoalesceConfig::default()).expect("valid")),
        ),
    ];
    for (id, ab) in interleaved {
        if let Some(ns) = estimate_ns("process", id) {
            println!("  {id:<12} {ns:>8.1} ns  {:>6.3}x  {ab:>6.3}x", ns / never);
        }
    }
}
