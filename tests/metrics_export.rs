//! Issue 11 point 1: export through the `metrics` facade, checked with exact
//! values through `metrics-util`'s debugging recorder (a local recorder per
//! test, so tests never share the global one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::schedule::{CompositeScheduler, Decision, EventContext};
use composite_metrics::sink::MetricsSink;
use composite_metrics::state::MemoryConfig;
use composite_metrics::telemetry::names::{self, SERIES};
use composite_metrics::{
    CallbackSink, CompositeScope, Error, Event, EventBased, EventType, HybridLock,
    HybridLockConfig, MemoryState, Metric, MetricSink, MetricsCalculator, SinkError,
};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

/// One series of a snapshot: kind, name, sorted labels.
type SeriesKey = (MetricKind, String, Vec<(String, String)>);

#[derive(Debug)]
struct Exported {
    values: HashMap<SeriesKey, DebugValue>,
    units: HashMap<String, Unit>,
    help: HashMap<String, String>,
}

impl Exported {
    fn take(snapshotter: &metrics_util::debugging::Snapshotter) -> Self {
        let mut values = HashMap::new();
        let mut units = HashMap::new();
        let mut help = HashMap::new();
        for (ck, unit, desc, value) in snapshotter.snapshot().into_vec() {
            let name = ck.key().name().to_owned();
            let mut labels: Vec<(String, String)> = ck
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            if let Some(u) = unit {
                units.insert(name.clone(), u);
            }
            if let Some(d) = desc {
                help.insert(name.clone(), d.to_string());
            }
            values.insert((ck.kind(), name, labels), value);
        }
        Self {
            values,
            units,
            help,
        }
    }

    fn get(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.values.get(&(kind, name.to_owned(), labels))
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(MetricKind::Gauge, name, labels) {
            Some(DebugValue::Gauge(v)) => v.into_inner(),
            other => panic!("gauge {name} {labels:?}: {other:?}"),
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.get(MetricKind::Counter, name, labels) {
            Some(DebugValue::Counter(v)) => *v,
            other => panic!("counter {name} {labels:?}: {other:?}"),
        }
    }

    fn histogram_len(&self, name: &str) -> usize {
        match self.get(MetricKind::Histogram, name, &[]) {
            Some(DebugValue::Histogram(v)) => v.len(),
            other => panic!("histogram {name}: {other:?}"),
        }
    }
}

fn at(secs: u64) -> ManualClock {
    ManualClock::new(Duration::from_secs(secs))
}

/// A session of every event type the calculator derives metrics from.
fn mixed_events() -> Vec<Event> {
    vec![
        Event::new(EventType::SessionStart, "s1"),
        Event::tool_use("s1", "bash")
            .with_duration_ms(40.0)
            .with_success(true),
        Event::tool_use("s1", "bash")
            .with_duration_ms(10.0)
            .with_success(false),
        Event::tool_use("s1", "grep")
            .with_duration_ms(30.0)
            .with_success(true),
        Event::tool_use("s1", "bash")
            .with_duration_ms(20.0)
            .with_success(true),
        Event::new(EventType::FileEdit, "s1").with_accepted(true),
        Event::new(EventType::FileEdit, "s1").with_accepted(false),
        Event::new(EventType::FileEdit, "s1").with_accepted(true),
        Event::new(EventType::UserPrompt, "s1").with_prompt_length(42),
        Event::new(EventType::UserPrompt, "s2").with_prompt_length(7),
        Event::new(EventType::SessionEnd, "s1"),
    ]
}

#[test]
fn every_derived_metric_is_a_gauge_holding_its_latest_value_labelled_only_by_tool() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = at(1_000);
    let returned: Vec<Metric> = metrics::with_local_recorder(&recorder, || {
        let mut calc = MetricsCalculator::builder()
            .clock(clock.clone())
            .state(MemoryState::with_clock(clock.clone()))
            .sink(MetricsSink::new())
            .scheduler(EventBased::every(4))
            .build()?;
        let mut out = Vec::new();
        for event in mixed_events() {
            clock.advance(Duration::from_secs(6));
            calc.process_into(&event, &mut out)?;
        }
        Ok::<_, Error>(out)
    })
    .expect("replay");
    let exported = Exported::take(&snapshotter);

    // The latest value of each exported series, from what the calculator returned.
    // (The tool shares are refreshed together instead: checked below.)
    let mut latest: HashMap<(String, Option<String>), f64> = HashMap::new();
    for m in returned.iter().filter(|m| m.name != "tool_frequency") {
        let name = format!("composite_metrics_{}_{}", m.category, m.name);
        let per_tool = SERIES
            .iter()
            .any(|s| s.category == m.category && s.name == m.name && s.per_tool);
        let tool = m.tool.as_deref().filter(|_| per_tool).map(str::to_owned);
        latest.insert((name, tool), m.value);
    }
    assert!(latest.len() >= 12, "{latest:?}");
    for ((name, tool), value) in &latest {
        let labels: Vec<(&str, &str)> = tool.iter().map(|t| ("tool", t.as_str())).collect();
        assert_eq!(exported.gauge(name, &labels), *value, "{name} {tool:?}");
    }
    // Known answers: bash 2 of 3 successful, grep 1 of 1; 2 of 3 accepted.
    let success = "composite_metrics_tools_tool_success_rate";
    assert_eq!(exported.gauge(success, &[("tool", "bash")]), 200.0 / 3.0);
    assert_eq!(exported.gauge(success, &[("tool", "grep")]), 100.0);
    // Shares of the 4 named runs (bash 3, grep 1), both as of the last run:
    // the grep gauge does not keep the share computed at grep's own run.
    let freq = "composite_metrics_tools_tool_frequency";
    assert_eq!(exported.gauge(freq, &[("tool", "bash")]), 75.0);
    assert_eq!(exported.gauge(freq, &[("tool", "grep")]), 25.0);
    assert_eq!(
        exported.gauge("composite_metrics_session_acceptance_rate", &[]),
        200.0 / 3.0
    );
    // The prompt of s2 came last: a session's value, exported unlabelled.
    assert_eq!(
        exported.gauge("composite_metrics_session_prompt_length", &[]),
        7.0
    );
    assert!(exported.gauge("composite_metrics_composite_productivity_score", &[]) > 0.0);
    // No series carries a session, and only per-tool series carry a tool.
    for (kind, name, labels) in exported.values.keys() {
        for (key, _) in labels {
            assert_ne!(key, "session", "{name}");
        }
        if *kind == MetricKind::Gauge && name.starts_with("composite_metrics_tools_") {
            let per_tool = name.ends_with("tool_success_rate") || name.ends_with("tool_frequency");
            assert_eq!(
                labels.iter().any(|(k, _)| k == "tool"),
                per_tool,
                "{name} {labels:?}"
            );
        }
    }
}

#[test]
fn the_series_table_follows_the_naming_rule() {
    for s in &SERIES {
        assert_eq!(
            s.exported,
            format!("composite_metrics_{}_{}", s.category, s.name)
        );
    }
    let mut exported: Vec<_> = SERIES.iter().map(|s| s.exported).collect();
    exported.sort_unstable();
    exported.dedup();
    assert_eq!(exported.len(), SERIES.len());
}

#[test]
fn decisions_are_counted_by_strategy_and_outcome_and_every_calculation_is_timed() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let stats = metrics::with_local_recorder(&recorder, || {
        let mut calc = MetricsCalculator::builder()
            .scheduler(EventBased::every(3))
            .build()?;
        for _ in 0..10 {
            calc.process(&Event::tool_use("s1", "bash").with_success(true))?;
        }
        calc.compute_now(None)?;
        Ok::<_, Error>(calc.stats())
    })
    .expect("run");
    let exported = Exported::take(&snapshotter);
    let decisions = |outcome| {
        exported.counter(
            names::DECISIONS,
            &[("strategy", "event-based"), ("outcome", outcome)],
        )
    };
    assert_eq!(decisions("compute"), 3);
    assert_eq!(decisions("skip"), 7);
    assert_eq!(decisions("error"), 0);
    // Three scheduled calculations and one on demand.
    assert_eq!(stats.composites, 4);
    assert_eq!(exported.histogram_len(names::CALCULATION_SECONDS), 4);
}

#[test]
fn skips_are_published_once_per_clock_second_and_when_the_calculator_is_dropped() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let skips = |exported: &Exported| {
        exported.counter(
            names::DECISIONS,
            &[("strategy", "never"), ("outcome", "skip")],
        )
    };
    metrics::with_local_recorder(&recorder, || {
        let clock = at(5_000);
        let mut calc = MetricsCalculator::builder().clock(clock.clone()).build()?;
        for _ in 0..10 {
            calc.process(&Event::tool_use("s1", "bash"))?;
        }
        // Counted locally: the event path wrote nothing shared.
        assert_eq!(skips(&Exported::take(&snapshotter)), 0);
        clock.advance(Duration::from_secs(1));
        calc.process(&Event::tool_use("s1", "bash"))?; // publishes the 10 before it
        assert_eq!(skips(&Exported::take(&snapshotter)), 10);
        for _ in 0..300 {
            calc.process(&Event::tool_use("s1", "bash"))?; // 256 pending publish
        }
        assert_eq!(skips(&Exported::take(&snapshotter)), 256);
        drop(calc); // the last 45
        assert_eq!(skips(&Exported::take(&snapshotter)), 45);
        Ok::<_, Error>(())
    })
    .expect("run");
}

/// Issue 21, point 7: named tool runs and their explicit outcomes are
/// counted per tool (duplicates, unnamed runs and pre hooks are not),
/// locally, and added to the counters with the skips: at most once per
/// second of the clock and when the calculator is dropped.
#[test]
fn tool_runs_and_outcomes_are_counted_per_tool_and_published_with_the_skips() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let counts = |exported: &Exported, tool: &str| {
        let get = |name| match exported.get(MetricKind::Counter, name, &[("tool", tool)]) {
            Some(DebugValue::Counter(v)) => *v,
            _ => 0,
        };
        [
            get(names::TOOL_RUNS),
            get(names::TOOL_SUCCESSES),
            get(names::TOOL_FAILURES),
        ]
    };
    metrics::with_local_recorder(&recorder, || {
        let clock = at(5_000);
        let mut calc = MetricsCalculator::builder().clock(clock.clone()).build()?;
        for event in [
            Event::tool_use("s1", "bash").with_success(true),
            Event::tool_use("s1", "bash").with_success(false),
            Event::tool_use("s1", "bash"),
            Event::tool_use("s1", "grep")
                .with_success(true)
                .with_event_id("once"),
            // A duplicate, an unnamed run and a pre hook: no named run.
            Event::tool_use("s1", "grep")
                .with_success(true)
                .with_event_id("once"),
            Event::tool_use("s1", "").with_success(true),
            Event::tool_use("s1", "bash").with_hook_type("pre_tool_use"),
        ] {
            calc.process(&event)?;
        }
        // Counted locally: the event path wrote nothing shared.
        let exported = Exported::take(&snapshotter);
        assert_eq!(counts(&exported, "bash"), [0, 0, 0]);
        assert_eq!(counts(&exported, "grep"), [0, 0, 0]);
        clock.advance(Duration::from_secs(1));
        // Publishes the runs before it.
        calc.process(&Event::tool_use("s1", "grep").with_success(false))?;
        let exported = Exported::take(&snapshotter);
        assert_eq!(counts(&exported, "bash"), [3, 1, 1]);
        assert_eq!(counts(&exported, "grep"), [1, 1, 0]);
        drop(calc); // the last one
        let exported = Exported::take(&snapshotter);
        assert_eq!(counts(&exported, "bash"), [0, 0, 0]);
        assert_eq!(counts(&exported, "grep"), [1, 0, 1]);
        assert_eq!(counts(&exported, ""), [0, 0, 0]);
        Ok::<_, Error>(())
    })
    .expect("run");
}

#[test]
fn lock_attempts_are_counted_acquired_refused_and_lost() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let clock = at(10_000);
        let state = MemoryState::with_clock(clock.clone());
        let worker = || {
            MetricsCalculator::builder()
                .clock(clock.clone())
                .state(state.clone())
                .scheduler(HybridLock::default())
                .build()
        };
        let (mut a, mut b) = (worker()?, worker()?);
        a.process(&Event::tool_use("s1", "bash"))?; // acquired
        b.process(&Event::tool_use("s1", "bash"))?; // refused: too soon

        // A lease that runs out before its release.
        let config = HybridLockConfig::default();
        let mut lone = HybridLock::new(config)?;
        let other = MemoryState::with_clock(clock.clone());
        let session: Arc<str> = Arc::from("s9");
        clock.advance(Duration::from_secs(60));
        let ctx = EventContext {
            now: clock_now(&clock),
            session: &session,
            scope: CompositeScope::Global,
            backend: &other,
        };
        let Decision::Compute(ticket) = lone.on_event(&ctx)? else {
            panic!("a worker knowing of no calculation is due");
        };
        clock.advance(config.lease() + Duration::from_secs(1));
        lone.on_computed(&ctx, ticket)?;
        assert_eq!(lone.stats().leases_lost, 1);
        Ok::<_, Error>(())
    })
    .expect("run");
    let exported = Exported::take(&snapshotter);
    let locks = |result| {
        exported.counter(
            names::LOCKS,
            &[("strategy", "hybrid-lock"), ("result", result)],
        )
    };
    assert_eq!(locks("acquired"), 2);
    assert_eq!(locks("refused"), 1);
    assert_eq!(locks("lost"), 1);
}

fn clock_now(clock: &ManualClock) -> Duration {
    composite_metrics::Clock::now(clock)
}

#[test]
fn backend_and_sink_errors_are_counted_by_kind_and_sink() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let stats = metrics::with_local_recorder(&recorder, || {
        let clock = at(1_000);
        let state = MemoryState::with_config(MemoryConfig::default().with_max_sessions(1), clock)?;
        let failing = CallbackSink::new(|_: &[Metric]| Err(SinkError::new("broken", "down")));
        let mut calc = MetricsCalculator::builder()
            .state(state)
            .sink(failing)
            .build()?;
        calc.process(&Event::tool_use("s1", "bash"))?;
        calc.process(&Event::tool_use("s1", "grep"))?;
        assert!(calc.process(&Event::tool_use("s2", "bash")).is_err()); // over capacity
        Ok::<_, Error>(calc.stats())
    })
    .expect("run");
    let exported = Exported::take(&snapshotter);
    assert_eq!(stats.sink_errors, 2);
    assert_eq!(
        exported.counter(names::SINK_ERRORS, &[("sink", "broken")]),
        2
    );
    assert_eq!(
        exported.counter(names::BACKEND_ERRORS, &[("kind", "capacity")]),
        1
    );
}

#[test]
fn tools_beyond_the_limit_are_counted_and_reported_not_exported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let sink = metrics::with_local_recorder(&recorder, || MetricsSink::new().with_max_tools(1));
    let metric = |tool: &str, value| {
        Metric::new(
            composite_metrics::Category::Tools,
            "tool_frequency",
            value,
            Duration::ZERO,
        )
        .with_tool(Arc::from(tool))
    };
    let freq = "composite_metrics_tools_tool_frequency";
    metrics::with_local_recorder(&recorder, || {
        assert!(sink.record(&[metric("bash", 60.0)]).is_ok());
        let err = sink
            .record(&[metric("grep", 40.0), metric("bash", 50.0)])
            .unwrap_err();
        assert!(err.to_string().contains("grep"), "{err}");
    });
    assert_eq!(sink.unexported(), 1);
    // Refreshed at the first run only (the others came in the same second).
    assert_eq!(
        Exported::take(&snapshotter).gauge(freq, &[("tool", "bash")]),
        100.0
    );
    // The runs of the tool beyond the limit count in the total.
    sink.refresh_shares();
    let exported = Exported::take(&snapshotter);
    assert_eq!(exported.gauge(freq, &[("tool", "bash")]), 200.0 / 3.0);
    assert!(exported
        .get(MetricKind::Gauge, freq, &[("tool", "grep")])
        .is_none());
}

#[test]
fn describe_gives_every_series_its_unit_and_help() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        composite_metrics::telemetry::describe();
        let mut calc = MetricsCalculator::builder()
            .sink(MetricsSink::new())
            .scheduler(EventBased::every(1))
            .build()?;
        calc.process(&Event::tool_use("s1", "bash").with_success(true))?;
        Ok::<_, Error>(())
    })
    .expect("run");
    let exported = Exported::take(&snapshotter);
    for s in &SERIES {
        assert_eq!(
            exported.units.get(s.exported),
            Some(&s.unit),
            "{}",
            s.exported
        );
        assert_eq!(
            exported.help.get(s.exported).map(String::as_str),
            Some(s.help)
        );
    }
    assert_eq!(
        exported.units.get(names::CALCULATION_SECONDS),
        Some(&Unit::Seconds)
    );
    assert_eq!(exported.units.get(names::DECISIONS), Some(&Unit::Count));
    assert!(exported.help[names::DECISIONS].contains("strategy"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const FREQ: &str = "composite_metrics_tools_tool_frequency";

    proptest! {
        /// Issue 21, point 7: whatever the runs and their times, the share
        /// gauges are set together, at the first run and then at the first
        /// run at least one second of metric time after the previous
        /// refresh, and never in between; each refresh sets every tool's
        /// share of the runs counted so far, so they add up to 100 %. (The
        /// debugging recorder's snapshot reads a gauge and resets it to 0:
        /// a step without a refresh reads 0 everywhere.)
        #[test]
        fn tool_shares_add_up_and_refresh_at_most_once_per_second(
            runs in prop::collection::vec((0..4usize, 0..1_500u64), 1..60)
        ) {
            let tools = ["bash", "grep", "edit", "read"];
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            let sink = metrics::with_local_recorder(&recorder, MetricsSink::new);
            let (mut at, mut next_refresh) = (Duration::ZERO, Duration::ZERO);
            let mut counts = [0u64; 4];
            let mut refreshes = 0;
            for &(t, gap_ms) in &runs {
                at += Duration::from_millis(gap_ms);
                let metric = Metric::new(composite_metrics::Category::Tools, "tool_frequency", 1.0, at)
                    .with_tool(Arc::from(tools[t]));
                metrics::with_local_recorder(&recorder, || sink.record(&[metric])).unwrap();
                counts[t] += 1;
                let refreshed = at >= next_refresh;
                if refreshed {
                    next_refresh = at + Duration::from_secs(1);
                    refreshes += 1;
                }
                let exported = Exported::take(&snapshotter);
                let total: u64 = counts.iter().sum();
                let mut sum = 0.0;
                for (i, tool) in tools.iter().enumerate() {
                    match exported.get(MetricKind::Gauge, FREQ, &[("tool", tool)]) {
                        Some(DebugValue::Gauge(v)) => {
                            let want = if refreshed {
                                100.0 * counts[i] as f64 / total as f64
                            } else {
                                0.0
                            };
                            prop_assert!((v.into_inner() - want).abs() < 1e-9, "{} {} {}", tool, v.into_inner(), want);
                            sum += v.into_inner();
                        }
                        _ => prop_assert_eq!(counts[i], 0, "{} ran but has no gauge", tool),
                    }
                }
                let want_sum = if refreshed { 100.0 } else { 0.0 };
                prop_assert!((sum - want_sum).abs() < 1e-9, "{}", sum);
            }
            prop_assert!(refreshes >= 1);
        }

        /// Whatever metrics arrive, in whatever batches, each exported series
        /// holds the last value recorded for it, per-tool series are labelled
        /// with exactly their tool, and no other series appears.
        #[test]
        fn every_series_holds_its_last_value(
            batches in prop::collection::vec(
                prop::collection::vec((0..SERIES.len(), 0..4usize, -1e6..1e6f64), 0..20),
                1..6,
            )
        ) {
            let tools = ["bash", "grep", "edit", "read"];
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            let mut expected: HashMap<(String, Option<&str>), f64> = HashMap::new();
            // Tools with a `tool_frequency` metric: their share gauges are
            // refreshed together (see `tool_shares_add_up_...` below).
            let mut ran: Vec<&str> = Vec::new();
            metrics::with_local_recorder(&recorder, || {
                let sink = MetricsSink::new();
                for batch in &batches {
                    let metrics: Vec<Metric> = batch
                        .iter()
                        .map(|&(i, t, value)| {
                            let s = &SERIES[i];
                            let m = Metric::new(s.category, s.name, value, Duration::ZERO)
                                .with_session(Arc::from("a-session"));
                            if s.name == "tool_frequency" {
                                ran.push(tools[t]);
                                m.with_tool(Arc::from(tools[t]))
                            } else if s.per_tool {
                                expected.insert((s.exported.to_owned(), Some(tools[t])), value);
                                m.with_tool(Arc::from(tools[t]))
                            } else {
                                expected.insert((s.exported.to_owned(), None), value);
                                m
                            }
                        })
                        .collect();
                    sink.record(&metrics).unwrap();
                }
            });
            let exported = Exported::take(&snapshotter);
            for ((name, tool), value) in &expected {
                let labels: Vec<(&str, &str)> = tool.iter().map(|t| ("tool", *t)).collect();
                prop_assert_eq!(exported.gauge(name, &labels), *value);
            }
            // All at one time: the shares were refreshed at the first run
            // only, and add up to 100 %.
            if !ran.is_empty() {
                let sum: f64 = ran.iter().collect::<std::collections::BTreeSet<_>>().iter()
                    .map(|t| exported.gauge(FREQ, &[("tool", t)]))
                    .sum();
                prop_assert!((sum - 100.0).abs() < 1e-9, "{}", sum);
            }
            for (kind, name, labels) in exported.values.keys() {
                prop_assert_eq!(*kind, MetricKind::Gauge);
                let tool = labels.iter().find(|(k, _)| k == "tool").map(|(_, v)| v.as_str());
                prop_assert!(labels.iter().all(|(k, _)| k == "tool"), "{:?}", labels);
                // Per-tool series appear only with a tool that was recorded;
                // unlabelled series are registered up front (reading 0 until set).
                if let Some(tool) = tool {
                    if name == FREQ {
                        prop_assert!(ran.contains(&tool), "{}", tool);
                    } else {
                        prop_assert!(expected.contains_key(&(name.clone(), Some(tool))));
                    }
                } else {
                    prop_assert!(SERIES.iter().any(|s| s.exported == name && !s.per_tool));
                }
            }
        }
    }
}
