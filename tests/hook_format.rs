//! The capture format real hooks write (issue 11, point 5): a hand-written
//! JSONL session (`tests/data/hook_session.jsonl`) in the pipeline's
//! canonical event format, replayed; every metric checked against figures
//! worked out by hand from the file.
//!
//! The session (event time, 60 s): a prompt; Claude Code `PreToolUse` /
//! `PostToolUse` pairs for `Bash` (2000 ms, ok; tool name at the top level)
//! and `Edit` (1000 ms, failed; tool name, duration and outcome inside
//! `payload`), the `Bash` post hook delivered twice (a retry, same
//! `event_id`); a Cursor MCP pair (`github.search`, 3000 ms, ok); a shell
//! pair (500 ms, ok); two `acceptance_decision`s (accept, reject) and a
//! `file_edit` (accept); one each of `assistant_response`, `file_read`,
//! `context_compact`, `error`; start and end.

#[cfg(feature = "redis")]
mod support;

use std::time::Duration;

use composite_metrics::clock::SystemClock;
use composite_metrics::{
    Event, EventType, MemoryState, Metric, MetricsCalculator, Never, StateBackend, TimeSource,
};

const SESSION: &str = include_str!("data/hook_session.jsonl");

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The metrics of each line, in order.
fn replay(state: impl StateBackend + 'static) -> (MetricsCalculator<Never>, Vec<Vec<Metric>>) {
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .clock(SystemClock)
        .time(TimeSource::EventTime {
            allowed_lateness: Duration::from_secs(5),
        })
        .build()
        .unwrap();
    let per_line = SESSION
        .lines()
        .map(|line| calc.process_json(line).unwrap())
        .collect();
    (calc, per_line)
}

fn get(metrics: &[Metric], name: &str, tool: Option<&str>) -> Option<f64> {
    metrics
        .iter()
        .find(|m| m.name == name && m.tool.as_deref() == tool)
        .map(|m| m.value)
}

/// Only the throughput figure: the line counted as "other".
fn throughput_only(metrics: &[Metric]) -> bool {
    metrics.len() == 1 && metrics[0].name == "events_per_second"
}

fn check(calc: &mut MetricsCalculator<Never>, m: &[Vec<Metric>]) {
    assert_eq!(m.len(), 19);
    // Line 2: the prompt.
    assert_eq!(get(&m[1], "prompt_length", None), Some(42.0));
    assert_eq!(get(&m[1], "prompts_per_session", None), Some(1.0));
    // Line 3: PreToolUse: not a run.
    assert!(throughput_only(&m[2]), "{:?}", m[2]);
    // Line 4: PostToolUse Bash: the run.
    assert_eq!(get(&m[3], "tool_latency_avg", None), Some(2000.0));
    assert_eq!(get(&m[3], "tool_frequency", Some("Bash")), Some(100.0));
    assert_eq!(get(&m[3], "tool_success_rate", Some("Bash")), Some(100.0));
    assert_eq!(get(&m[3], "overall_success_rate", None), Some(100.0));
    // Line 5: the retry of line 4 (same event_id): nothing.
    assert!(m[4].is_empty(), "{:?}", m[4]);
    // Line 6: PreToolUse with the tool name in the payload: not a run.
    assert!(throughput_only(&m[5]), "{:?}", m[5]);
    // Line 7: PostToolUse Edit, everything in the payload: 1000 ms, failed.
    assert_eq!(get(&m[6], "tool_latency_avg", None), Some(1500.0));
    assert_eq!(get(&m[6], "tool_frequency", Some("Edit")), Some(50.0));
    assert_eq!(get(&m[6], "tool_success_rate", Some("Edit")), Some(0.0));
    assert_eq!(get(&m[6], "overall_success_rate", None), Some(50.0));
    // Line 8: beforeMCPExecution: not a run.
    assert!(throughput_only(&m[7]), "{:?}", m[7]);
    // Line 9: afterMCPExecution: the third run.
    assert_eq!(get(&m[8], "tool_latency_avg", None), Some(2000.0));
    let freq = get(&m[8], "tool_frequency", Some("github.search")).unwrap();
    assert!(close(freq, 100.0 / 3.0), "{freq}");
    let overall = get(&m[8], "overall_success_rate", None).unwrap();
    assert!(close(overall, 200.0 / 3.0), "{overall}");
    // Line 10: beforeShellExecution: not a run.
    assert!(throughput_only(&m[9]), "{:?}", m[9]);
    // Line 11: afterShellExecution: a run of `shell`, 500 ms.
    assert_eq!(get(&m[10], "tool_latency_avg", None), Some(1625.0));
    assert_eq!(get(&m[10], "tool_frequency", Some("shell")), Some(25.0));
    assert_eq!(get(&m[10], "tool_success_rate", Some("shell")), Some(100.0));
    assert_eq!(get(&m[10], "overall_success_rate", None), Some(75.0));
    // Lines 12-14: decisions accept, reject, accept.
    assert_eq!(get(&m[11], "acceptance_rate", None), Some(100.0));
    assert_eq!(get(&m[12], "acceptance_rate", None), Some(50.0));
    assert_eq!(get(&m[12], "rejection_rate", None), Some(50.0));
    let accepted = get(&m[13], "acceptance_rate", None).unwrap();
    assert!(close(accepted, 200.0 / 3.0), "{accepted}");
    // Lines 15-18: known types, throughput only.
    for line in &m[14..18] {
        assert!(throughput_only(line), "{line:?}");
    }
    // Line 19: the end, 60 s after the start; 4 tool runs.
    let end = &m[18];
    assert_eq!(get(end, "session_duration", None), Some(60.0));
    assert_eq!(get(end, "tools_per_minute", None), Some(4.0));
    assert_eq!(get(end, "prompts_per_session", None), Some(1.0));
    // 17 events in the last 60 s of event time (the start, at 0 s, is out).
    let eps = get(end, "events_per_second", None).unwrap();
    assert!(close(eps, 17.0 / 60.0), "{eps}");

    let s = calc.stats();
    assert_eq!((s.events, s.duplicates, s.rejected), (18, 1, 0));
    assert_eq!((s.unknown_types, s.ignored_fields), (0, 0));
    // S = 75 %, A = 66.7 %: 50 + 0.25*75 - 0.15*25 + 0.10*66.7 = 71.67.
    let score = calc.compute_now(None).unwrap().unwrap();
    assert!(
        close(score.value, 50.0 + 18.75 - 3.75 + 20.0 / 3.0),
        "{score:?}"
    );
}

#[test]
fn hook_session_replays_to_the_hand_worked_figures_on_memory_state() {
    let state = MemoryState::new();
    let (mut calc, metrics) = replay(state.clone());
    check(&mut calc, &metrics);
    // Four tools: the pre hooks named none of their own.
    assert_eq!(state.footprint().tools, 4);
}

#[cfg(feature = "redis")]
#[test]
fn hook_session_replays_to_the_same_figures_on_redis() {
    use composite_metrics::state::{RedisConfig, RedisState};
    let server = support::RedisServer::start();
    let state = RedisState::connect(
        &server.url(),
        RedisConfig::default().with_namespace("hooks"),
    )
    .unwrap();
    let (mut calc, metrics) = replay(state);
    check(&mut calc, &metrics);
}

#[test]
fn every_line_parses_as_it_is() {
    for (i, line) in SESSION.lines().enumerate() {
        let e = Event::from_json(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert_ne!(e.event_type, EventType::Other, "line {}", i + 1);
        assert!(e.event_id.is_some(), "line {}", i + 1);
    }
    let pre = Event::from_json(SESSION.lines().nth(5).unwrap()).unwrap();
    assert_eq!(pre.hook_type.as_deref(), Some("PreToolUse"));
    assert_eq!(pre.tool_name.as_deref(), Some("Edit"));
    assert!(pre.is_pre_hook() && !pre.is_tool_run());
    let post = Event::from_json(SESSION.lines().nth(6).unwrap()).unwrap();
    assert_eq!(
        (post.tool_name.as_deref(), post.duration_ms),
        (Some("Edit"), Some(1000.0))
    );
    assert!(post.is_tool_run());
}

#[test]
fn hook_type_is_optional_and_a_run_without_it() {
    let e = Event::from_json(
        r#"{"timestamp":"2024-05-01T12:00:00Z","platform":"x","session_id":"s",
            "event_type":"shell_execution","duration_ms":5}"#,
    )
    .unwrap();
    assert_eq!(e.hook_type, None);
    assert!(e.is_tool_run());
    assert_eq!(e.named_tool().map(|t| &**t), Some("shell"));
}

#[test]
fn tool_name_and_duration_at_both_places_must_agree() {
    let both = |inner: &str| {
        Event::from_json(&format!(
            r#"{{"timestamp":"2024-05-01T12:00:00Z","session_id":"s","event_type":"tool_use",
                "tool_name":"Bash","duration_ms":5,"payload":{{{inner}}}}}"#
        ))
    };
    assert!(both(r#""tool_name":"Bash","duration_ms":5"#).is_ok());
    let err = both(r#""tool_name":"Edit""#).unwrap_err();
    assert!(err.to_string().contains("payload.tool_name"), "{err}");
    let err = both(r#""duration_ms":6"#).unwrap_err();
    assert!(err.to_string().contains("payload.duration_ms"), "{err}");
    // A bad value inside the payload names its field.
    let err = both(r#""duration_ms":"slow""#).unwrap_err();
    assert!(err.to_string().contains("payload.duration_ms"), "{err}");
}

#[test]
fn a_pre_hook_is_not_a_run_but_a_post_hook_without_pre_is() {
    let mut calc = MetricsCalculator::builder().build().unwrap();
    for hook in [
        "PreToolUse",
        "beforeMCPExecution",
        "beforeShellExecution",
        "preToolUse",
    ] {
        let out = calc
            .process(
                &Event::tool_use("s", "Bash")
                    .with_hook_type(hook)
                    .with_duration_ms(5.0),
            )
            .unwrap();
        assert!(throughput_only(&out), "{hook}: {out:?}");
    }
    // Not a tool type: a `before` prompt hook is still a prompt.
    let out = calc
        .process(
            &Event::new(EventType::UserPrompt, "s")
                .with_hook_type("beforeSubmitPrompt")
                .with_prompt_length(3),
        )
        .unwrap();
    assert_eq!(get(&out, "prompts_per_session", None), Some(1.0));
    let out = calc
        .process(&Event::tool_use("s", "Bash").with_hook_type("PostToolUse"))
        .unwrap();
    assert_eq!(get(&out, "tool_frequency", Some("Bash")), Some(100.0));
    // The duration on a pre hook was ignored and counted as such.
    assert_eq!(calc.stats().ignored_fields, 4);
}
