//! Strict input when asked (issue 11, point 4): unknown event types and
//! ignored fields are counted (and the first occurrence of each unknown type
//! logged) by default, rejected with typed errors in strict mode; bytes that
//! are not UTF-8 are a typed error naming the offset.

use std::sync::{Mutex, OnceLock};

use composite_metrics::{Error, Event, EventError, EventType, MetricsCalculator, Never};
use proptest::prelude::*;

fn line(event_type: &str, extra: &str) -> String {
    format!(
        r#"{{"event_type":"{event_type}","session_id":"s1","timestamp":"2024-05-01T12:00:00Z"{extra}}}"#
    )
}

fn lenient() -> MetricsCalculator<Never> {
    MetricsCalculator::builder().build().unwrap()
}

fn strict() -> MetricsCalculator<Never> {
    MetricsCalculator::builder().strict(true).build().unwrap()
}

/// Captures warnings (the logger is global: tests look for their own texts).
struct Capture;

fn logged() -> &'static Mutex<Vec<String>> {
    static LOGGED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOGGED.get_or_init(|| Mutex::new(Vec::new()))
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        logged().lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        static CAPTURE: Capture = Capture;
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

fn mentions(text: &str) -> usize {
    logged()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

#[test]
fn unknown_type_is_other_counted_and_logged_once_by_default() {
    install_logger();
    let mut calc = lenient();
    for _ in 0..3 {
        let out = calc
            .process_json(&line("code_edit_x1", r#","payload":{"accepted":true}"#))
            .unwrap();
        // Throughput only: the decision was not read.
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].name, "events_per_second");
    }
    let s = calc.stats();
    assert_eq!((s.events, s.unknown_types, s.rejected), (3, 3, 0));
    // `payload.accepted` on an unknown (other) type is ignored, and counted.
    assert_eq!(s.ignored_fields, 3);
    assert_eq!(mentions("`code_edit_x1`"), 1);
}

#[test]
fn unknown_type_logging_is_bounded() {
    install_logger();
    let mut calc = lenient();
    for i in 0..200 {
        calc.process_json(&line(&format!("bounded_{i}_type"), ""))
            .unwrap();
    }
    assert_eq!(calc.stats().unknown_types, 200);
    let first_occurrences = (0..200)
        .filter(|i| mentions(&format!("`bounded_{i}_type`")) > 0)
        .count();
    assert_eq!(first_occurrences, 64);
}

#[test]
fn strict_mode_rejects_an_unknown_type_with_its_name() {
    let mut calc = strict();
    let err = calc
        .process_json(&line("code_edit", r#","payload":{"accepted":true}"#))
        .unwrap_err();
    match err {
        Error::Event(EventError::UnknownEventType { value }) => assert_eq!(value, "code_edit"),
        other => panic!("{other:?}"),
    }
    let s = calc.stats();
    assert_eq!((s.events, s.rejected, s.unknown_types), (0, 1, 1));
    assert_eq!(calc.state().op_counts().records, 0, "state untouched");
    // A long unknown type is quoted up to 64 bytes.
    let long = "x".repeat(300);
    match calc.process_json(&line(&long, "")).unwrap_err() {
        Error::Event(EventError::UnknownEventType { value }) => assert_eq!(value.len(), 64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn strict_mode_rejects_an_ignored_field() {
    let mut calc = strict();
    let err = calc
        .process_json(&line(
            "tool_use",
            r#","tool_name":"bash","payload":{"accepted":true}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Event(EventError::IgnoredField {
                field: "payload.accepted",
                event_type: "tool_use"
            })
        ),
        "{err:?}"
    );
    assert_eq!(calc.stats().rejected, 1);
    // Events built in code follow the same rule.
    let err = calc
        .process(&Event::new(EventType::UserPrompt, "s").with_success(true))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Event(EventError::IgnoredField {
                field: "payload.success",
                ..
            })
        ),
        "{err:?}"
    );
    // In a batch: the batch is refused, naming the index.
    let err = calc
        .process_batch(&[
            Event::tool_use("s", "bash"),
            Event::tool_use("s", "bash").with_prompt_length(3),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchEvent {
                index: 1,
                source: EventError::IgnoredField {
                    field: "payload.prompt_length",
                    ..
                }
            }
        ),
        "{err:?}"
    );
    assert_eq!(calc.stats().rejected, 4);
    assert_eq!(calc.stats().events, 0);
}

#[test]
fn lenient_mode_records_without_the_ignored_field_and_counts_it() {
    let mut calc = lenient();
    let out = calc
        .process_json(&line(
            "tool_use",
            r#","tool_name":"bash","payload":{"accepted":true,"prompt_length":4}"#,
        ))
        .unwrap();
    assert!(out.iter().all(|m| m.name != "acceptance_rate"), "{out:?}");
    let s = calc.stats();
    assert_eq!((s.events, s.ignored_fields), (1, 2));
}

#[test]
fn bytes_entry_point_names_the_offset_of_invalid_utf8() {
    let mut calc = lenient();
    let mut bytes = line("tool_use", "").into_bytes();
    let good = calc.process_json_bytes(&bytes).unwrap();
    assert_eq!(good.last().unwrap().name, "events_per_second");
    bytes[30] = 0xC3; // a lead byte followed by an ASCII byte
    let err = calc.process_json_bytes(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::Event(EventError::InvalidUtf8 { offset: 30 })),
        "{err:?}"
    );
    assert!(err.to_string().contains("byte offset 30"), "{err}");
    assert_eq!(
        Event::from_json_bytes(&bytes),
        Err(EventError::InvalidUtf8 { offset: 30 })
    );
    let s = calc.stats();
    assert_eq!((s.events, s.rejected), (1, 1));
}

/// The README's table, written out independently: which fields each type
/// uses.
fn uses(t: &str, field: &str, pre_hook: bool) -> bool {
    let tool = matches!(t, "tool_use" | "mcp_execution" | "shell_execution");
    match field {
        "tool_name" => matches!(t, "tool_use" | "mcp_execution"),
        "duration_ms" | "success" => tool && !pre_hook,
        "accepted" => matches!(t, "file_edit" | "code_change" | "acceptance_decision"),
        "prompt_length" => t == "user_prompt",
        _ => unreachable!(),
    }
}

const TYPES: [&str; 15] = [
    "tool_use",
    "mcp_execution",
    "shell_execution",
    "file_edit",
    "code_change",
    "acceptance_decision",
    "user_prompt",
    "session_start",
    "session_end",
    "assistant_response",
    "file_read",
    "context_compact",
    "error",
    "code_edit",
    "other",
];

proptest! {
    /// For every type and set of fields: lenient mode records the event and
    /// counts exactly the fields the type does not use; strict mode rejects
    /// exactly the events with one (or an unknown type) and records the rest.
    #[test]
    fn ignored_fields_follow_the_table(
        t in proptest::sample::select(&TYPES[..]),
        pre in any::<bool>(),
        fields in proptest::collection::vec(any::<bool>(), 5),
    ) {
        let names = ["tool_name", "duration_ms", "success", "accepted", "prompt_length"];
        let mut extra = String::new();
        let mut payload = Vec::new();
        for (name, on) in names.iter().zip(&fields) {
            if !on { continue; }
            match *name {
                "tool_name" => extra.push_str(r#","tool_name":"bash""#),
                "duration_ms" => extra.push_str(r#","duration_ms":5"#),
                "success" => payload.push(r#""success":true"#),
                "accepted" => payload.push(r#""accepted":false"#),
                _ => payload.push(r#""prompt_length":7"#),
            }
        }
        if pre {
            extra.push_str(r#","hook_type":"PreToolUse""#);
        }
        extra.push_str(&format!(r#","payload":{{{}}}"#, payload.join(",")));
        let json = line(t, &extra);
        let expected = names
            .iter()
            .zip(&fields)
            .filter(|(name, on)| **on && !uses(t, name, pre))
            .count() as u64;
        let known = EventType::known(t).is_some();

        let mut calc = lenient();
        prop_assert!(calc.process_json(&json).is_ok(), "{}", json);
        prop_assert_eq!(calc.stats().ignored_fields, expected, "{}", json);
        prop_assert_eq!(calc.stats().unknown_types, u64::from(!known));

        let mut calc = strict();
        let rejected = calc.process_json(&json).is_err();
        prop_assert_eq!(rejected, expected > 0 || !known, "{}", json);
        prop_assert_eq!(calc.stats().events, u64::from(!rejected));
    }
}
