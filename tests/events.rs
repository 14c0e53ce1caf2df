//! Issue 2, point 2: events parse from one JSON object; bad input gives a typed
//! error naming the field, never a panic, and never changes state.

use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::metric::names;
use composite_metrics::sink::SeriesKey;
use composite_metrics::state::{Footprint, Scope};
use composite_metrics::{
    Category, CompositeInputs, Error, Event, EventBased, EventError, EventType, MemorySink,
    MemoryState, MetricsCalculator, StateBackend,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const TS: &str = "2024-05-01T12:00:00Z";

fn valid() -> Value {
    json!({
        "event_type": "tool_use",
        "session_id": "s1",
        "timestamp": TS,
        "tool_name": "bash",
        "duration_ms": 42.5,
        "payload": {"success": true, "accepted": false, "prompt_length": 12}
    })
}

fn with(field: &str, value: Value) -> String {
    let mut v = valid();
    match field.strip_prefix("payload.") {
        Some(inner) => v["payload"][inner] = value,
        None => v[field] = value,
    }
    v.to_string()
}

fn without(field: &str) -> String {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(field);
    v.to_string()
}

/// The field an error names, if any.
fn field_of(e: &EventError) -> Option<&'static str> {
    match e {
        EventError::MissingField { field }
        | EventError::InvalidField { field, .. }
        | EventError::TooLong { field, .. }
        | EventError::InvalidNumber { field, .. } => Some(field),
        EventError::Malformed { .. } => None,
        _ => None,
    }
}

#[test]
fn a_valid_line_parses_every_field() {
    let e = Event::from_json(&valid().to_string()).unwrap();
    assert_eq!(e.event_type, EventType::ToolUse);
    assert_eq!(&*e.session_id, "s1");
    assert_eq!(e.tool_name.as_deref(), Some("bash"));
    assert_eq!(e.duration_ms, Some(42.5));
    assert_eq!(e.payload.success, Some(true));
    assert_eq!(e.payload.accepted, Some(false));
    assert_eq!(e.payload.prompt_length, Some(12));
    // 2024-05-01T12:00:00Z is 1_714_564_800 s after the epoch.
    assert_eq!(
        e.timestamp
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_714_564_800
    );
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let line = format!(r#"{{"event_type":"user_prompt","session_id":"s","timestamp":"{TS}"}}"#);
    let e = Event::from_json(&line).unwrap();
    assert_eq!(e.tool_name, None);
    assert_eq!(e.duration_ms, None);
    assert_eq!(e.payload, Default::default());

    for field in [
        "tool_name",
        "duration_ms",
        "payload",
        "payload.success",
        "payload.accepted",
        "payload.prompt_length",
    ] {
        let e = Event::from_json(&with(field, Value::Null))
            .unwrap_or_else(|err| panic!("null {field}: {err}"));
        match field {
            "tool_name" => assert_eq!(e.tool_name, None),
            "duration_ms" => assert_eq!(e.duration_ms, None),
            "payload" => assert_eq!(e.payload, Default::default()),
            "payload.success" => assert_eq!(e.payload.success, None),
            "payload.accepted" => assert_eq!(e.payload.accepted, None),
            _ => assert_eq!(e.payload.prompt_length, None),
        }
    }
}

#[test]
fn malformed_json_is_a_malformed_error() {
    for bad in [
        "",
        "{",
        "}",
        "nope",
        r#"{"event_type":"tool_use","#,
        r#"{"event_type" "tool_use"}"#,
        r#"{"event_type":"tool_use"} trailing"#,
        "[1,2,3]",
        "42",
        "\"a string\"",
        "null",
    ] {
        match Event::from_json(bad) {
            Err(EventError::Malformed { line, column, .. }) => {
                assert!(line >= 1, "{bad:?}: line {line}");
                let _ = column;
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn missing_required_fields_are_named() {
    for field in ["event_type", "session_id", "timestamp"] {
        assert_eq!(
            Event::from_json(&without(field)),
            Err(EventError::MissingField { field }),
            "{field}"
        );
    }
}

#[test]
fn wrong_field_types_name_the_field() {
    let cases: &[(&str, Value)] = &[
        ("event_type", json!(7)),
        ("event_type", json!(null)),
        ("event_type", json!(["tool_use"])),
        ("session_id", json!(12)),
        ("session_id", json!(null)),
        ("session_id", json!({"id": "s"})),
        ("timestamp", json!(1_714_564_800)),
        ("timestamp", json!(true)),
        ("tool_name", json!(3)),
        ("tool_name", json!(["bash"])),
        ("duration_ms", json!("42")),
        ("duration_ms", json!(true)),
        ("duration_ms", json!({"ms": 1})),
        ("payload", json!("ok")),
        ("payload", json!([true])),
        ("payload", json!(1)),
        ("payload.success", json!("true")),
        ("payload.success", json!(1)),
        ("payload.success", json!([])),
        ("payload.accepted", json!("yes")),
        ("payload.accepted", json!(0)),
        ("payload.accepted", json!({})),
        ("payload.prompt_length", json!("12")),
        ("payload.prompt_length", json!(-1)),
        ("payload.prompt_length", json!(1.5)),
        ("payload.prompt_length", json!(false)),
    ];
    for (field, value) in cases {
        let line = with(field, value.clone());
        match Event::from_json(&line) {
            Err(EventError::InvalidField { field: named, .. }) => {
                assert_eq!(named, *field, "{line}")
            }
            other => panic!("{field} = {value}: {other:?}"),
        }
    }
}

#[test]
fn negative_duration_is_rejected_naming_the_field() {
    for ms in [json!(-1), json!(-0.001), json!(-1e300)] {
        match Event::from_json(&with("duration_ms", ms.clone())) {
            Err(EventError::InvalidNumber { field, value }) => {
                assert_eq!(field, "duration_ms");
                assert_eq!(value, ms.as_f64().unwrap());
            }
            other => panic!("{ms}: {other:?}"),
        }
    }
    // Zero is a valid duration.
    let e = Event::from_json(&with("duration_ms", json!(0))).unwrap();
    assert_eq!(e.duration_ms, Some(0.0));
}

#[test]
fn huge_exponents_in_json_name_duration_ms() {
    // JSON cannot carry NaN or infinity; an exponent beyond f64 is the closest it gets.
    for text in ["1e999", "-1e999", "9e400"] {
        let line = format!(
            r#"{{"event_type":"tool_use","session_id":"s","timestamp":"{TS}","duration_ms":{text}}}"#
        );
        let err = Event::from_json(&line).unwrap_err();
        assert_eq!(field_of(&err), Some("duration_ms"), "{text}: {err:?}");
        assert!(err.to_string().contains("duration_ms"), "{err}");
    }
    // NaN and infinity literals are not JSON at all.
    for text in ["NaN", "Infinity", "-Infinity"] {
        let line = format!(
            r#"{{"event_type":"tool_use","session_id":"s","timestamp":"{TS}","duration_ms":{text}}}"#
        );
        assert!(Event::from_json(&line).is_err(), "{text}");
    }
}

#[test]
fn nan_and_infinite_durations_are_rejected_by_validate_and_process() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let mut calc = MetricsCalculator::builder()
        .clock(clock)
        .state(state.clone())
        .build()
        .unwrap();
    for (i, ms) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0]
        .into_iter()
        .enumerate()
    {
        let e = Event::tool_use("s", "bash").with_duration_ms(ms);
        match e.validate() {
            Err(EventError::InvalidNumber { field, value }) => {
                assert_eq!(field, "duration_ms");
                assert!(value.is_nan() && ms.is_nan() || value == ms);
            }
            other => panic!("{ms}: {other:?}"),
        }
        match calc.process(&e) {
            Err(Error::Event(EventError::InvalidNumber { field, .. })) => {
                assert_eq!(field, "duration_ms")
            }
            other => panic!("{ms}: {other:?}"),
        }
        assert_eq!(calc.stats().rejected, i as u64 + 1);
        assert_eq!(calc.stats().events, 0);
        assert_eq!(state.op_counts().records, 0);
        assert_eq!(state.footprint().sessions, 0);
    }
}

#[test]
fn over_long_ids_and_names_are_rejected() {
    let id_ok = "s".repeat(256);
    let id_long = "s".repeat(257);
    let tool_ok = "t".repeat(128);
    let tool_long = "t".repeat(129);
    assert!(Event::from_json(&with("session_id", json!(id_ok))).is_ok());
    assert!(Event::from_json(&with("tool_name", json!(tool_ok))).is_ok());
    assert_eq!(
        Event::from_json(&with("session_id", json!(id_long))),
        Err(EventError::TooLong {
            field: "session_id",
            len: 257,
            max: 256
        })
    );
    assert_eq!(
        Event::from_json(&with("tool_name", json!(tool_long))),
        Err(EventError::TooLong {
            field: "tool_name",
            len: 129,
            max: 128
        })
    );
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    let wide = "é".repeat(129);
    assert_eq!(
        Event::from_json(&with("session_id", json!(wide))),
        Err(EventError::TooLong {
            field: "session_id",
            len: 258,
            max: 256
        })
    );
    let wide_tool = "é".repeat(65);
    assert_eq!(
        Event::from_json(&with("tool_name", json!(wide_tool))),
        Err(EventError::TooLong {
            field: "tool_name",
            len: 130,
            max: 128
        })
    );
    // The same limits hold for events built in code.
    assert!(matches!(
        Event::tool_use("s".repeat(257), "bash").validate(),
        Err(EventError::TooLong {
            field: "session_id",
            ..
        })
    ));
    assert!(matches!(
        Event::tool_use("s", "t".repeat(129)).validate(),
        Err(EventError::TooLong {
            field: "tool_name",
            ..
        })
    ));
}

#[test]
fn unparsable_timestamps_name_the_field() {
    for ts in [
        "",
        "yesterday",
        "2024-05-01",
        "2024-05-01 12:00:00",
        "2024-13-01T12:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00",
        "1714564800",
    ] {
        match Event::from_json(&with("timestamp", json!(ts))) {
            Err(EventError::InvalidField { field, .. }) => assert_eq!(field, "timestamp", "{ts}"),
            other => panic!("{ts:?}: {other:?}"),
        }
    }
    for ts in [
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T12:00:00.123456Z",
        "1970-01-01T00:00:00Z",
    ] {
        assert!(
            Event::from_json(&with("timestamp", json!(ts))).is_ok(),
            "{ts}"
        );
    }
}

#[test]
fn duplicate_fields_are_rejected_naming_the_field() {
    let line = format!(
        r#"{{"event_type":"tool_use","session_id":"a","session_id":"b","timestamp":"{TS}"}}"#
    );
    let err = Event::from_json(&line).unwrap_err();
    assert_eq!(field_of(&err), Some("session_id"), "{err:?}");
    // A first `null` still counts as the field being given.
    let line = format!(
        r#"{{"event_type":"tool_use","session_id":"a","timestamp":"{TS}","tool_name":null,"tool_name":"bash"}}"#
    );
    let err = Event::from_json(&line).unwrap_err();
    assert_eq!(field_of(&err), Some("tool_name"), "{err:?}");
    // Inside the payload too.
    let line = format!(
        r#"{{"event_type":"tool_use","session_id":"a","timestamp":"{TS}","payload":{{"success":true,"success":false}}}}"#
    );
    let err = Event::from_json(&line).unwrap_err();
    assert_eq!(field_of(&err), Some("payload.success"), "{err:?}");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = valid();
    v["extra"] = json!({"deep": [1, 2, {"x": "@@"}]});
    v["payload"]["other"] = json!([null]);
    // Unknown fields are skipped unread, even numbers beyond f64.
    let line = v.to_string().replace("\"@@\"", "1e999");
    let e = Event::from_json(&line).unwrap();
    assert_eq!(e.tool_name.as_deref(), Some("bash"));
}

#[test]
fn unknown_event_types_count_toward_throughput_only() {
    let e = Event::from_json(&with("event_type", json!("telemetry_v9"))).unwrap();
    assert_eq!(e.event_type, EventType::Other);

    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state.clone())
        .sink(sink.clone())
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    // The event carries every detail a tool run, an edit and a prompt could.
    let metrics = calc.process(&e).unwrap();
    let full: Vec<String> = metrics.iter().map(|m| m.full_name()).collect();
    assert_eq!(full, ["realtime/events_per_second"]);
    assert_eq!(metrics[0].value, 1.0 / 60.0);
    let line = r#"{"event_type":"brand_new","session_id":"s2","timestamp":"2024-05-01T12:00:00Z"}"#;
    let metrics = calc.process_json(line).unwrap();
    assert_eq!(metrics.len(), 1);
    assert!(metrics[0].is(Category::Realtime, names::EVENTS_PER_SECOND));
    assert_eq!(metrics[0].value, 2.0 / 60.0);

    assert_eq!(calc.stats().events, 2);
    assert_eq!(state.op_counts().records, 2);
    assert_eq!(state.footprint().sessions, 0);
    assert_eq!(state.footprint().tools, 0);
    assert_eq!(
        state.composite_inputs(Scope::Global).unwrap(),
        CompositeInputs::default()
    );
    assert_eq!(
        sink.keys(),
        [SeriesKey::new(Category::Realtime, "events_per_second")]
    );
}

// ---------------------------------------------------------------------------
// Property tests: arbitrary input never panics and never changes state.

/// A snapshot of everything a rejected event must leave alone.
#[derive(Debug, PartialEq)]
struct Snapshot {
    events: u64,
    records: u64,
    footprint: Footprint,
    inputs: CompositeInputs,
    sink: Vec<(SeriesKey, Vec<(Duration, f64)>)>,
}

struct Harness {
    calc: MetricsCalculator<EventBased>,
    state: MemoryState,
    sink: MemorySink,
    clock: ManualClock,
}

impl Harness {
    fn new() -> Self {
        let clock = ManualClock::default();
        let state = MemoryState::with_clock(clock.clone());
        let sink = MemorySink::new();
        let calc = MetricsCalculator::builder()
            .clock(clock.clone())
            .state(state.clone())
            .sink(sink.clone())
            .scheduler(EventBased::every(3))
            .build()
            .unwrap();
        let mut h = Self {
            calc,
            state,
            sink,
            clock,
        };
        // Some state to protect.
        for line in [
            valid().to_string(),
            with("event_type", json!("file_edit")),
            with("event_type", json!("user_prompt")),
        ] {
            h.calc.process_json(&line).unwrap();
        }
        h
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            events: self.calc.stats().events,
            records: self.state.op_counts().records,
            footprint: self.state.footprint(),
            inputs: self.state.composite_inputs(Scope::Global).unwrap(),
            sink: self
                .sink
                .keys()
                .into_iter()
                .map(|k| {
                    let s = self.sink.series(&k);
                    (k, s)
                })
                .collect(),
        }
    }

    /// Feeds one line; on rejection checks that nothing changed.
    fn feed(&mut self, line: &str) -> Result<(), TestCaseError> {
        self.clock.advance(Duration::from_millis(250));
        let before = self.snapshot();
        let rejected = self.calc.stats().rejected;
        match self.calc.process_json(line) {
            Ok(metrics) => {
                prop_assert!(!metrics.is_empty());
                prop_assert_eq!(self.calc.stats().events, before.events + 1);
                prop_assert_eq!(self.calc.stats().rejected, rejected);
            }
            Err(Error::Event(_)) => {
                prop_assert_eq!(self.calc.stats().rejected, rejected + 1);
                let after = self.snapshot();
                prop_assert_eq!(after, before, "state changed after rejecting {:?}", line);
            }
            Err(other) => prop_assert!(false, "unexpected error {:?} for {:?}", other, line),
        }
        Ok(())
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN/inf become null
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("tool_use"),
            Just("session_end"),
            Just("file_edit"),
            Just(TS),
            Just("bash")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("event_type".to_owned()),
                        Just("session_id".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("tool_name".to_owned()),
                        Just("duration_ms".to_owned()),
                        Just("payload".to_owned()),
                        Just("success".to_owned()),
                        Just("accepted".to_owned()),
                        Just("prompt_length".to_owned()),
                        "[a-z_]{0,8}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const FIELDS: [&str; 9] = [
    "event_type",
    "session_id",
    "timestamp",
    "tool_name",
    "duration_ms",
    "payload",
    "payload.success",
    "payload.accepted",
    "payload.prompt_length",
];

/// A valid event with one field removed or replaced.
fn arb_near_valid() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just(Value::from(-1.0)),
        Just(Value::from(-0.5)),
        Just(Value::from("s".repeat(257))),
        Just(Value::from("t".repeat(129))),
        Just(Value::from("2024-02-30T00:00:00Z")),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
    ];
    let value = prop_oneof![3 => arb_json(), 1 => special];
    (
        prop::sample::select(&FIELDS[..]),
        prop::option::weighted(0.85, value),
    )
        .prop_map(|(field, value)| match value {
            Some(v) => with(field, v),
            None => match field.strip_prefix("payload.") {
                Some(inner) => {
                    let mut v = valid();
                    v["payload"].as_object_mut().unwrap().remove(inner);
                    v.to_string()
                }
                None => without(field),
            },
        })
}

/// A near-valid line with raw text spliced in (numbers JSON values cannot hold).
fn arb_raw_splice() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&FIELDS[..]),
        prop_oneof![
            Just("1e999"),
            Just("-1e999"),
            Just("NaN"),
            Just("-0"),
            Just("1E+400"),
            Just("\"\\ud800\""),
            Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]"),
            Just("18446744073709551616"),
        ],
    )
        .prop_map(|(field, raw)| {
            let marker = "\"@@SPLICE@@\"";
            with(field, json!("@@SPLICE@@")).replace(marker, raw)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic_or_change_state(lines in prop::collection::vec(".{0,80}", 1..8)) {
        let mut h = Harness::new();
        for line in &lines {
            h.feed(line)?;
        }
    }

    #[test]
    fn arbitrary_json_never_panics_or_changes_state(values in prop::collection::vec(arb_json(), 1..8)) {
        let mut h = Harness::new();
        for v in &values {
            h.feed(&v.to_string())?;
        }
    }

    #[test]
    fn near_valid_events_never_panic_or_change_state(
        lines in prop::collection::vec(prop_oneof![3 => arb_near_valid(), 1 => arb_raw_splice()], 1..8)
    ) {
        let mut h = Harness::new();
        for line in &lines {
            h.feed(line)?;
        }
    }

    /// A value of the wrong JSON type in one field: the error names exactly that field.
    #[test]
    fn wrong_types_name_their_field(field in prop::sample::select(&FIELDS[..]), v in arb_json()) {
        let wrong = match field {
            "event_type" | "session_id" | "timestamp" => !v.is_string(),
            "tool_name" => !v.is_string() && !v.is_null(),
            "duration_ms" => !v.is_number() && !v.is_null(),
            "payload" => !v.is_object() && !v.is_null(),
            "payload.success" | "payload.accepted" => !v.is_boolean() && !v.is_null(),
            _ => !v.is_u64() && !v.is_null(),
        };
        prop_assume!(wrong);
        let err = Event::from_json(&with(field, v.clone())).unwrap_err();
        match err {
            EventError::InvalidField { field: named, .. } => prop_assert_eq!(named, field),
            other => prop_assert!(false, "{} = {}: {:?}", field, v, other),
        }
    }
}

#[test]
fn extreme_timestamps_never_panic() {
    for ts in [
        "0000-01-01T00:00:00Z",
        "0000-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59.999999999-23:59",
        "9999-12-31T23:59:59.999999999Z",
        "2016-12-31T23:59:60Z",
        "2024-02-29T00:00:00Z",
        "1969-12-31T23:59:59.5Z",
    ] {
        match Event::from_json(&with("timestamp", json!(ts))) {
            Ok(_) => {}
            Err(EventError::InvalidField { field, .. }) => assert_eq!(field, "timestamp", "{ts}"),
            Err(other) => panic!("{ts}: {other:?}"),
        }
    }
    assert!(Event::from_json(&with("timestamp", json!("2023-02-29T00:00:00Z"))).is_err());
}
