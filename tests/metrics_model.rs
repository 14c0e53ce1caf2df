//! Issue 2, point 3: every per-event metric of DESIGN.md section 2, with its
//! name and category, checked against a plain reference model written here.

use std::collections::HashMap;
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::metric::names;
use composite_metrics::{
    Category, Event, EventBased, EventType, MemoryState, Metric, MetricsCalculator,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The reference model: plain Vecs and HashMaps, recomputed from scratch.

/// One expected metric: full name, tool label, session label, value.
type Expected = (String, Option<String>, Option<String>, f64);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    ToolUse,
    Mcp,
    FileEdit,
    CodeChange,
    UserPrompt,
    SessionStart,
    SessionEnd,
    Error,
    Other,
}

impl Kind {
    fn event_type(self) -> EventType {
        match self {
            Kind::ToolUse => EventType::ToolUse,
            Kind::Mcp => EventType::McpExecution,
            Kind::FileEdit => EventType::FileEdit,
            Kind::CodeChange => EventType::CodeChange,
            Kind::UserPrompt => EventType::UserPrompt,
            Kind::SessionStart => EventType::SessionStart,
            Kind::SessionEnd => EventType::SessionEnd,
            Kind::Error => EventType::Error,
            Kind::Other => EventType::Other,
        }
    }
    fn is_tool(self) -> bool {
        matches!(self, Kind::ToolUse | Kind::Mcp)
    }
    fn is_edit(self) -> bool {
        matches!(self, Kind::FileEdit | Kind::CodeChange)
    }
}

#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    kind: Kind,
    session: String,
    tool: Option<String>,
    duration: Option<f64>,
    success: Option<bool>,
    accepted: Option<bool>,
    prompt_length: Option<u64>,
}

impl Step {
    fn event(&self) -> Event {
        let mut e = Event::new(self.kind.event_type(), self.session.as_str());
        if let Some(t) = &self.tool {
            e = e.with_tool(t.as_str());
        }
        if let Some(d) = self.duration {
            e = e.with_duration_ms(d);
        }
        if let Some(s) = self.success {
            e = e.with_success(s);
        }
        if let Some(a) = self.accepted {
            e = e.with_accepted(a);
        }
        if let Some(p) = self.prompt_length {
            e = e.with_prompt_length(p);
        }
        e
    }
}

#[derive(Debug, Clone)]
struct Session {
    started: Duration,
    tool_runs: u64,
    prompts: u64,
    errors: u64,
}

#[derive(Debug, Default)]
struct Model {
    latencies: Vec<f64>,
    decisions: Vec<bool>,
    event_secs: Vec<u64>,
    ok: u64,
    known: u64,
    tool_runs: u64,
    tools: HashMap<String, (u64, u64, u64)>, // runs, ok, known
    sessions: HashMap<String, Session>,
    every: u64,
    seen: u64,
}

/// Nearest rank: the value at 1-based rank ceil(p/100 * n) of the sorted values.
/// Integer arithmetic, because 0.95 * 100.0 is 95.00000000000001 in f64.
fn percentile(values: &[f64], p: usize) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = (p * n).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole as f64
}

impl Model {
    fn new(every: u64) -> Self {
        Self {
            every,
            ..Self::default()
        }
    }

    fn global_s(&self) -> Option<f64> {
        (self.known > 0).then(|| pct(self.ok, self.known))
    }

    fn global_a(&self) -> Option<f64> {
        let n = self.decisions.len() as u64;
        (n > 0).then(|| pct(self.decisions.iter().filter(|d| **d).count() as u64, n))
    }

    /// The default score: 50 + 0.25*S - 0.15*(100-S) + 0.10*A, clamped.
    fn score(&self) -> Option<f64> {
        let s = self.global_s()?;
        let a = self.global_a()?;
        Some((50.0 + 0.25 * s - 0.15 * (100.0 - s) + 0.10 * a).clamp(0.0, 100.0))
    }

    /// Applies one event at `now`; returns its metrics and whether the
    /// scheduler (every N events) fires.
    fn apply(&mut self, step: &Step, now: Duration) -> (Vec<Expected>, bool) {
        let mut out = Vec::new();
        let plain = |name: &str, v: f64| (format!("tools/{name}"), None, None, v);
        let sess = |name: &str, v: f64| {
            (
                format!("session/{name}"),
                None,
                Some(step.session.clone()),
                v,
            )
        };
        match step.kind {
            Kind::Other => {}
            Kind::SessionEnd => {
                if let Some(s) = self.sessions.remove(&step.session) {
                    let secs = (now - s.started).as_secs_f64();
                    out.push(sess("session_duration", secs));
                    if secs > 0.0 {
                        out.push(sess("tools_per_minute", s.tool_runs as f64 / (secs / 60.0)));
                    }
                    out.push(sess("prompts_per_session", s.prompts as f64));
                    out.push(sess("errors_per_session", s.errors as f64));
                }
            }
            kind => {
                let session = self
                    .sessions
                    .entry(step.session.clone())
                    .or_insert(Session {
                        started: now,
                        tool_runs: 0,
                        prompts: 0,
                        errors: 0,
                    });
                if kind.is_tool() {
                    self.tool_runs += 1;
                    session.tool_runs += 1;
                    if let Some(d) = step.duration {
                        self.latencies.push(d);
                        if self.latencies.len() > 100 {
                            self.latencies.remove(0);
                        }
                        let l = &self.latencies;
                        out.push(plain("tool_latency_p50", percentile(l, 50)));
                        out.push(plain("tool_latency_p95", percentile(l, 95)));
                        out.push(plain("tool_latency_p99", percentile(l, 99)));
                        // Whole nanoseconds, summed exactly (the window's documented mean).
                        let ns: u128 = l.iter().map(|v| (v * 1e6 + 0.5).floor() as u128).sum();
                        let avg = ns as f64 / (l.len() as f64 * 1e6);
                        out.push(plain("tool_latency_avg", avg));
                    }
                    if let Some(ok) = step.success {
                        self.known += 1;
                        self.ok += u64::from(ok);
                        out.push(plain("overall_success_rate", pct(self.ok, self.known)));
                    }
                    if let Some(tool) = &step.tool {
                        let t = self.tools.entry(tool.clone()).or_default();
                        t.0 += 1;
                        let freq = pct(t.0, self.tool_runs);
                        out.push((
                            "tools/tool_frequency".into(),
                            Some(tool.clone()),
                            None,
                            freq,
                        ));
                        if let Some(ok) = step.success {
                            t.1 += u64::from(ok);
                            t.2 += 1;
                            out.push((
                                "tools/tool_success_rate".into(),
                                Some(tool.clone()),
                                None,
                                pct(t.1, t.2),
                            ));
                        }
                    }
                } else if kind.is_edit() {
                    if let Some(a) = step.accepted {
                        self.decisions.push(a);
                        if self.decisions.len() > 100 {
                            self.decisions.remove(0);
                        }
                        let rate = self.global_a().unwrap();
                        out.push(("session/acceptance_rate".into(), None, None, rate));
                        out.push(("session/rejection_rate".into(), None, None, 100.0 - rate));
                    }
                } else if kind == Kind::UserPrompt {
                    session.prompts += 1;
                    let prompts = session.prompts;
                    if let Some(len) = step.prompt_length {
                        out.push(sess("prompt_length", len as f64));
                    }
                    out.push(sess("prompts_per_session", prompts as f64));
                } else if kind == Kind::SessionStart {
                    session.started = now;
                } else if kind == Kind::Error {
                    session.errors += 1;
                }
            }
        }
        let sec = now.as_secs();
        self.event_secs.push(sec);
        let last_minute = self
            .event_secs
            .iter()
            .filter(|s| **s + 59 >= sec && **s <= sec)
            .count();
        out.push((
            "realtime/events_per_second".into(),
            None,
            None,
            last_minute as f64 / 60.0,
        ));
        self.seen += 1;
        let fires = self.seen.is_multiple_of(self.every);
        (out, fires)
    }
}

fn composite(score: f64) -> Expected {
    ("composite/productivity_score".into(), None, None, score)
}

fn actual(metrics: &[Metric], now: Duration) -> Result<Vec<Expected>, TestCaseError> {
    let mut out = Vec::new();
    for m in metrics {
        prop_assert_eq!(m.at, now, "{} stamped by the clock", m.full_name());
        out.push((
            m.full_name(),
            m.tool.as_deref().map(str::to_owned),
            m.session.as_deref().map(str::to_owned),
            m.value,
        ));
    }
    Ok(out)
}

fn same(mut got: Vec<Expected>, mut want: Vec<Expected>) -> Result<(), TestCaseError> {
    let key = |a: &Expected, b: &Expected| {
        (&a.0, &a.1, &a.2)
            .cmp(&(&b.0, &b.1, &b.2))
            .then(a.3.total_cmp(&b.3))
    };
    got.sort_by(key);
    want.sort_by(key);
    let names = |v: &[Expected]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    prop_assert_eq!(names(&got), names(&want));
    for (g, w) in got.iter().zip(&want) {
        prop_assert_eq!(&g.1, &w.1, "tool label of {}", g.0);
        prop_assert_eq!(&g.2, &w.2, "session label of {}", g.0);
        let tol = 1e-9 * w.3.abs().max(1.0);
        prop_assert!(
            (g.3 - w.3).abs() <= tol,
            "{}: got {}, want {}",
            g.0,
            g.3,
            w.3
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies.

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::ToolUse),
        2 => Just(Kind::Mcp),
        2 => Just(Kind::FileEdit),
        1 => Just(Kind::CodeChange),
        2 => Just(Kind::UserPrompt),
        1 => Just(Kind::SessionStart),
        1 => Just(Kind::SessionEnd),
        1 => Just(Kind::Error),
        1 => Just(Kind::Other),
    ]
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![6 => 0u64..1_500, 2 => Just(0u64), 1 => 0u64..130_000],
        arb_kind(),
        0u8..4,
        prop::option::weighted(0.8, 0u8..4),
        prop::option::weighted(
            0.8,
            prop_oneof![
                // Few distinct values: plenty of duplicates.
                (0u32..12).prop_map(|v| f64::from(v) * 5.0),
                0.0f64..5_000.0,
            ],
        ),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0u64..5_000),
    )
        .prop_map(
            |(advance_ms, kind, s, tool, duration, success, accepted, prompt_length)| Step {
                advance_ms,
                kind,
                session: format!("s{s}"),
                tool: tool.map(|t| ["bash", "grep", "edit", "mcp:search"][usize::from(t)].into()),
                duration,
                success,
                accepted,
                prompt_length,
            },
        )
}

fn calculator(every: u64) -> (MetricsCalculator<EventBased>, ManualClock) {
    let clock = ManualClock::new(Duration::from_secs(1_700_000_000));
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .scheduler(EventBased::every(every))
        .build()
        .unwrap();
    (calc, clock)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Event by event, every metric equals the reference model's.
    #[test]
    fn process_matches_the_reference_model(
        steps in prop::collection::vec(arb_step(), 0..320),
        every in 1u64..8,
    ) {
        let (mut calc, clock) = calculator(every);
        let mut model = Model::new(every);
        for step in &steps {
            clock.advance(Duration::from_millis(step.advance_ms));
            let now = clock.now();
            let (mut want, fires) = model.apply(step, now);
            if fires {
                want.extend(model.score().map(composite));
            }
            let got = calc.process(&step.event()).unwrap();
            same(actual(&got, now)?, want)?;
        }
        prop_assert_eq!(calc.stats().events, steps.len() as u64);
        prop_assert_eq!(calc.stats().composites, steps.len() as u64 / every);
    }

    /// In batches, every event's metrics equal the model's, and the composite
    /// is computed once per batch, after it, when the scheduler fired in it.
    #[test]
    fn process_batch_matches_the_reference_model(
        batches in prop::collection::vec(prop::collection::vec(arb_step(), 1..40), 0..12),
        every in 1u64..8,
    ) {
        let (mut calc, clock) = calculator(every);
        let mut model = Model::new(every);
        let mut composites = 0;
        for batch in &batches {
            clock.advance(Duration::from_millis(batch[0].advance_ms));
            let now = clock.now();
            let mut want = Vec::new();
            let mut fired = false;
            for step in batch {
                let (m, fires) = model.apply(step, now);
                want.extend(m);
                fired |= fires;
            }
            if fired {
                composites += 1;
                want.extend(model.score().map(composite));
            }
            let events: Vec<Event> = batch.iter().map(Step::event).collect();
            let got = calc.process_batch(&events).unwrap();
            same(actual(&got, now)?, want)?;
        }
        let total: usize = batches.iter().map(Vec::len).sum();
        prop_assert_eq!(calc.stats().events, total as u64);
        prop_assert_eq!(calc.stats().composites, composites);
    }
}

// ---------------------------------------------------------------------------
// Deterministic checks, expectations worked out by hand.

fn one(metrics: &[Metric], category: Category, name: &str) -> f64 {
    let found: Vec<_> = metrics.iter().filter(|m| m.is(category, name)).collect();
    assert_eq!(found.len(), 1, "{category}/{name} in {metrics:?}");
    found[0].value
}

#[test]
fn every_metric_of_the_design_has_its_name_and_category() {
    let clock = ManualClock::new(Duration::from_secs(1_700_000_000));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    let mut all: Vec<Metric> = Vec::new();
    all.extend(
        calc.process(&Event::new(EventType::SessionStart, "s1"))
            .unwrap(),
    );
    clock.advance(Duration::from_secs(30));
    all.extend(
        calc.process(
            &Event::tool_use("s1", "bash")
                .with_duration_ms(100.0)
                .with_success(true),
        )
        .unwrap(),
    );
    clock.advance(Duration::from_secs(30));
    all.extend(
        calc.process(&Event::new(EventType::FileEdit, "s1").with_accepted(true))
            .unwrap(),
    );
    clock.advance(Duration::from_secs(30));
    all.extend(
        calc.process(&Event::new(EventType::UserPrompt, "s1").with_prompt_length(42))
            .unwrap(),
    );
    clock.advance(Duration::from_secs(30));
    let end = calc
        .process(&Event::new(EventType::SessionEnd, "s1"))
        .unwrap();
    // 120 s from session_start to session_end; 1 tool run; 1 prompt.
    assert_eq!(one(&end, Category::Session, names::SESSION_DURATION), 120.0);
    assert_eq!(one(&end, Category::Session, names::TOOLS_PER_MINUTE), 0.5);
    assert_eq!(
        one(&end, Category::Session, names::PROMPTS_PER_SESSION),
        1.0
    );
    assert_eq!(one(&end, Category::Session, names::ERRORS_PER_SESSION), 0.0);
    all.extend(end);

    let mut full: Vec<String> = all.iter().map(Metric::full_name).collect();
    full.sort();
    full.dedup();
    let mut want = vec![
        "tools/tool_latency_p50",
        "tools/tool_latency_p95",
        "tools/tool_latency_p99",
        "tools/tool_latency_avg",
        "tools/tool_success_rate",
        "tools/overall_success_rate",
        "tools/tool_frequency",
        "session/acceptance_rate",
        "session/rejection_rate",
        "session/prompt_length",
        "session/prompts_per_session",
        "session/errors_per_session",
        "session/session_duration",
        "session/tools_per_minute",
        "realtime/events_per_second",
        "composite/productivity_score",
    ];
    want.sort();
    assert_eq!(full, want);
    for m in &all {
        assert_eq!(m.full_name(), format!("{}/{}", m.category.as_str(), m.name));
        let per_tool = m.name == "tool_success_rate" || m.name == "tool_frequency";
        assert_eq!(m.tool.as_deref(), per_tool.then_some("bash"), "{m:?}");
        let per_session = matches!(
            m.name,
            "prompt_length"
                | "prompts_per_session"
                | "errors_per_session"
                | "session_duration"
                | "tools_per_minute"
        );
        assert_eq!(m.session.as_deref(), per_session.then_some("s1"), "{m:?}");
    }
    // S = 100, A = 100: 50 + 25 - 0 + 10 = 85.
    let score = all
        .iter()
        .rev()
        .find(|m| m.is(Category::Composite, "productivity_score"))
        .unwrap();
    assert_eq!(score.value, 85.0);
}

fn tool_calc() -> MetricsCalculator<composite_metrics::Never> {
    let clock = ManualClock::new(Duration::from_secs(1_700_000_000));
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .build()
        .unwrap()
}

fn latency(calc: &mut MetricsCalculator<composite_metrics::Never>, ms: f64) -> [f64; 4] {
    let m = calc
        .process(&Event::tool_use("s", "bash").with_duration_ms(ms))
        .unwrap();
    [
        one(&m, Category::Tools, "tool_latency_p50"),
        one(&m, Category::Tools, "tool_latency_p95"),
        one(&m, Category::Tools, "tool_latency_p99"),
        one(&m, Category::Tools, "tool_latency_avg"),
    ]
}

#[test]
fn hundred_equal_latencies_give_equal_percentiles_and_mean() {
    let mut calc = tool_calc();
    let mut last = [0.0; 4];
    for _ in 0..100 {
        last = latency(&mut calc, 37.5);
    }
    assert_eq!(last, [37.5; 4]);
}

#[test]
fn windows_keep_duplicates_and_evict_beyond_100() {
    let mut calc = tool_calc();
    // [5, 5, 5, 100]: a set would keep {5, 100} and give avg 52.5.
    for ms in [5.0, 5.0, 5.0] {
        latency(&mut calc, ms);
    }
    let [p50, p95, p99, avg] = latency(&mut calc, 100.0);
    // n = 4: p50 at rank 2, p95 and p99 at rank 4; mean 115 / 4.
    assert_eq!((p50, p95, p99, avg), (5.0, 100.0, 100.0, 28.75));

    let mut calc = tool_calc();
    for _ in 0..100 {
        latency(&mut calc, 10.0);
    }
    let mut last = [0.0; 4];
    for _ in 0..50 {
        last = latency(&mut calc, 20.0);
    }
    // The window holds 50 x 10 and 50 x 20: p50 at rank 50 is 10, p95 at rank 95 is 20.
    assert_eq!(last, [10.0, 20.0, 20.0, 15.0]);
    for _ in 0..49 {
        latency(&mut calc, 20.0);
    }
    // 1 x 10 and 99 x 20 left; the 30 evicts that last 10.
    let [p50, _, _, avg] = latency(&mut calc, 30.0);
    assert_eq!(p50, 20.0);
    assert_eq!(avg, (99.0 * 20.0 + 30.0) / 100.0);

    // 1..=100 then 101: the window is 2..=101. p50 = 51, p95 = 96, p99 = 100.
    let mut calc = tool_calc();
    for v in 1..=101 {
        last = latency(&mut calc, f64::from(v));
    }
    assert_eq!(last, [51.0, 96.0, 100.0, 51.5]);
}

#[test]
fn acceptance_window_keeps_the_last_100_explicit_decisions() {
    let mut calc = tool_calc();
    let edit = |a: Option<bool>| {
        let e = Event::new(EventType::FileEdit, "s");
        match a {
            Some(a) => e.with_accepted(a),
            None => e,
        }
    };
    for _ in 0..100 {
        calc.process(&edit(Some(true))).unwrap();
    }
    let mut m = Vec::new();
    for _ in 0..30 {
        m = calc.process(&edit(Some(false))).unwrap();
    }
    assert_eq!(one(&m, Category::Session, "acceptance_rate"), 70.0);
    assert_eq!(one(&m, Category::Session, "rejection_rate"), 30.0);
    // Edits without a decision count for nothing.
    let m = calc.process(&edit(None)).unwrap();
    assert!(m.iter().all(|m| m.name != "acceptance_rate"));
    let m = calc
        .process(&Event::new(EventType::CodeChange, "s").with_accepted(false))
        .unwrap();
    assert_eq!(one(&m, Category::Session, "acceptance_rate"), 69.0);
}

#[test]
fn success_rates_count_only_explicit_outcomes() {
    let mut calc = tool_calc();
    let m = calc.process(&Event::tool_use("s", "bash")).unwrap();
    assert!(m.iter().all(|m| !m.name.contains("success")));
    assert_eq!(one(&m, Category::Tools, "tool_frequency"), 100.0);
    calc.process(&Event::tool_use("s", "bash").with_success(true))
        .unwrap();
    let m = calc
        .process(&Event::tool_use("s", "grep").with_success(false))
        .unwrap();
    // bash ran twice, grep once: grep is 1/3 of tool runs.
    assert!((one(&m, Category::Tools, "tool_frequency") - 100.0 / 3.0).abs() < 1e-12);
    assert_eq!(one(&m, Category::Tools, "tool_success_rate"), 0.0);
    // Two explicit outcomes, one success; the run without an outcome is not a failure.
    assert_eq!(one(&m, Category::Tools, "overall_success_rate"), 50.0);
    let m = calc
        .process(&Event::tool_use("s", "bash").with_success(true))
        .unwrap();
    assert_eq!(one(&m, Category::Tools, "tool_success_rate"), 100.0);
    assert!((one(&m, Category::Tools, "overall_success_rate") - 200.0 / 3.0).abs() < 1e-12);
}
