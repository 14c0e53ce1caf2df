//! Issue 11 point 2: strategies and backends from configuration.

use std::time::Duration;

use composite_metrics::config::{
    BackgroundSpec, CalculatorConfig, EventBasedSpec, HybridLockSpec, MemoryConfigSpec,
    StrategyConfig, TimeBasedSpec,
};
use composite_metrics::sim::Strategy;
use composite_metrics::{BackgroundConfig, ConfigError, Error, HybridLockConfig};

fn parse(text: &str) -> Result<StrategyConfig, ConfigError> {
    StrategyConfig::from_toml(text)
}

fn parse_err(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Parse { message }) => message,
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

fn build_err(text: &str) -> ConfigError {
    match parse(text).expect("parses").build() {
        Err(e) => e,
        Ok(s) => panic!("expected {text:?} to be refused, built {s:?}"),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn every_strategy_round_trips_through_toml() {
    let mut hybrid = HybridLockSpec::default();
    hybrid.max_staleness = secs(60);
    hybrid.min_interval = Duration::from_millis(1_500);
    hybrid.every_events = 250;
    hybrid.lease = secs(1);
    let mut background = BackgroundSpec::default();
    background.interval = secs(90);
    background.jitter = secs(7);
    background.coordinated = true;
    let mut time_based = TimeBasedSpec::default();
    time_based.period = secs(20);
    let mut event_based = EventBasedSpec::default();
    event_based.every = 7;
    let all = [
        StrategyConfig::Never {},
        StrategyConfig::TimeBased(time_based),
        StrategyConfig::EventBased(event_based),
        StrategyConfig::HybridLock(hybrid),
        StrategyConfig::Background(background),
    ];
    for config in all {
        let text = toml::to_string(&config).expect("serialises");
        assert!(
            text.contains(&format!("strategy = \"{}\"", config.name())),
            "{text}"
        );
        assert_eq!(parse(&text).expect(&text), config, "{text}");
        assert_eq!(config.build().expect("valid").name(), config.name());
    }
}

#[test]
fn durations_are_written_as_humantime() {
    let text = toml::to_string(&StrategyConfig::HybridLock(HybridLockSpec::default())).unwrap();
    assert!(text.contains("max_staleness = \"30s\""), "{text}");
    assert!(text.contains("lease = \"5s\""), "{text}");
    let config = parse(
        "strategy = \"hybrid-lock\"\nmin_interval = \"1m 30s\"\nmax_staleness = \"2m\"\nlease = \"250ms\"",
    )
    .unwrap();
    let StrategyConfig::HybridLock(spec) = config else {
        panic!("{config:?}")
    };
    assert_eq!(spec.min_interval, secs(90));
    assert_eq!(spec.max_staleness, secs(120));
    assert_eq!(spec.lease, Duration::from_millis(250));
    let message = parse_err("strategy = \"background\"\ninterval = \"30\"");
    assert!(message.contains("field `interval`"), "{message}");
}

#[test]
fn omitted_fields_take_the_builders_defaults() {
    let StrategyConfig::HybridLock(spec) = parse("strategy = \"hybrid-lock\"").unwrap() else {
        panic!()
    };
    assert_eq!(spec.to_config().unwrap(), HybridLockConfig::default());
    let StrategyConfig::Background(spec) =
        parse("strategy = \"background\"\ncoordinated = true").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        spec.to_config().unwrap(),
        BackgroundConfig::default().with_coordination(true)
    );
    let StrategyConfig::EventBased(spec) = parse("strategy = \"event-based\"").unwrap() else {
        panic!()
    };
    assert_eq!(spec.build().unwrap().n(), 100);
    let StrategyConfig::TimeBased(spec) = parse("strategy = \"time-based\"").unwrap() else {
        panic!()
    };
    assert_eq!(spec.build().unwrap().period_secs(), 10);
    assert_eq!(
        CalculatorConfig::from_toml("").unwrap(),
        CalculatorConfig::default()
    );
    assert_eq!(
        CalculatorConfig::default().scheduler,
        StrategyConfig::Never {}
    );
}

#[test]
fn bare_names_parse_to_the_defaults() {
    for name in StrategyConfig::NAMES {
        let config: StrategyConfig = name.parse().expect(name);
        assert_eq!(config.name(), name);
        assert_eq!(config.to_string(), name);
        assert_eq!(
            config,
            parse(&format!("strategy = \"{name}\"")).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        "hybrid-lock".parse::<StrategyConfig>().unwrap(),
        StrategyConfig::HybridLock(HybridLockSpec::default())
    );
    let err = "hybrid".parse::<StrategyConfig>().unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownStrategy {
            name: "hybrid".into()
        }
    );
    assert!(err.to_string().contains("`hybrid`"), "{err}");
    assert!(err.to_string().contains("hybrid-lock"), "{err}");
}

#[test]
fn an_unknown_strategy_is_named() {
    let message = parse_err("strategy = \"coalesce-ish\"");
    assert!(message.contains("coalesce-ish"), "{message}");
    assert!(message.contains("hybrid-lock"), "{message}");
    let message = parse_err("max_staleness = \"30s\"");
    assert!(message.contains("missing field `strategy`"), "{message}");
}

#[test]
fn an_unknown_field_is_named_for_every_strategy() {
    for name in StrategyConfig::NAMES {
        let message = parse_err(&format!("strategy = \"{name}\"\nmax_stalenes = \"30s\""));
        assert!(
            message.contains("unknown field `max_stalenes`"),
            "{name}: {message}"
        );
    }
    let message = match CalculatorConfig::from_toml("[schedular]\nstrategy = \"never\"") {
        Err(ConfigError::Parse { message }) => message,
        other => panic!("{other:?}"),
    };
    assert!(message.contains("unknown field `schedular`"), "{message}");
    let message = match CalculatorConfig::from_toml("[memory]\nsession_tll = \"1h\"") {
        Err(ConfigError::Parse { message }) => message,
        other => panic!("{other:?}"),
    };
    assert!(message.contains("unknown field `session_tll`"), "{message}");
}

#[test]
fn a_wrong_type_is_named() {
    let message = parse_err("strategy = \"event-based\"\nevery = -3");
    assert!(message.contains("field `every`"), "{message}");
    let message = parse_err("strategy = \"background\"\ncoordinated = \"yes\"");
    assert!(message.contains("field `coordinated`"), "{message}");
}

#[test]
fn every_validation_error_names_its_field() {
    use ConfigError::*;
    let hybrid = |extra: &str| build_err(&format!("strategy = \"hybrid-lock\"\n{extra}"));
    assert_eq!(
        hybrid("every_events = 0"),
        Zero {
            field: "every_events"
        }
    );
    for field in ["max_staleness", "min_interval", "lease"] {
        assert!(
            matches!(hybrid(&format!("{field} = \"0s\"")), OutOfRange { field: f, .. } if f == field),
            "{field}"
        );
    }
    assert!(matches!(
        hybrid("min_interval = \"60s\""),
        Order {
            lower: "min_interval",
            upper: "max_staleness",
            ..
        }
    ));
    assert!(matches!(
        hybrid("lease = \"40s\""),
        Order {
            lower: "lease",
            upper: "min_interval",
            ..
        }
    ));
    let background = |extra: &str| build_err(&format!("strategy = \"background\"\n{extra}"));
    for field in ["interval", "lease"] {
        assert!(
            matches!(background(&format!("{field} = \"0s\"")), OutOfRange { field: f, .. } if f == field),
            "{field}"
        );
    }
    assert!(matches!(
        background("jitter = \"15s\""),
        OutOfRange {
            field: "jitter",
            ..
        }
    ));
    assert!(matches!(
        background("lease = \"28s\""),
        Order { lower: "lease", .. }
    ));
    assert_eq!(
        build_err("strategy = \"event-based\"\nevery = 0"),
        Zero { field: "every" }
    );
    for period in ["0s", "1500ms"] {
        assert!(matches!(
            build_err(&format!("strategy = \"time-based\"\nperiod = \"{period}\"")),
            OutOfRange {
                field: "period",
                ..
            }
        ));
    }
    // The message names the field too.
    assert!(hybrid("every_events = 0")
        .to_string()
        .contains("every_events"));
}

#[test]
fn memory_config_builds_through_its_builders_and_names_bad_fields() {
    let config = CalculatorConfig::from_toml(
        "[memory]\nsession_ttl = \"2h\"\nmax_sessions = 5\nmax_tools = 3",
    )
    .unwrap();
    let memory = config.memory.to_config().unwrap();
    assert_eq!(memory.session_ttl(), secs(7_200));
    assert_eq!(memory.max_sessions(), 5);
    assert_eq!(memory.max_tools(), 3);
    assert_eq!(
        MemoryConfigSpec::default().to_config().unwrap(),
        composite_metrics::state::MemoryConfig::default()
    );
    for (field, text) in [
        ("session_ttl", "session_ttl = \"0s\""),
        ("max_sessions", "max_sessions = 0"),
        ("max_tools", "max_tools = 0"),
    ] {
        let config = CalculatorConfig::from_toml(&format!("[memory]\n{text}")).unwrap();
        assert_eq!(
            config.memory.to_config(),
            Err(ConfigError::Zero { field }),
            "{field}"
        );
        assert_eq!(config.validate(), Err(ConfigError::Zero { field }));
        match config.builder() {
            Err(Error::Config(ConfigError::Zero { field: f })) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let text = toml::to_string(&CalculatorConfig::default()).unwrap();
    assert_eq!(
        CalculatorConfig::from_toml(&text).unwrap(),
        CalculatorConfig::default()
    );
}

#[test]
fn a_calculator_config_turns_into_a_working_calculator() {
    let config = CalculatorConfig::from_toml(
        r#"
        [scheduler]
        strategy = "event-based"
        every = 2

        [memory]
        max_sessions = 1
        "#,
    )
    .unwrap();
    let mut calc = config.builder().unwrap().build().unwrap();
    assert_eq!(calc.scheduler_name(), "event-based");
    let event = |s: &str| composite_metrics::Event::tool_use(s, "bash").with_success(true);
    calc.process(&event("s1")).unwrap();
    calc.process(&event("s1")).unwrap();
    assert_eq!(calc.stats().composites, 1);
    // The memory limit from the file holds.
    assert!(calc.process(&event("s2")).is_err());
}

#[test]
fn a_strategy_list_feeds_the_simulator() {
    let list = StrategyConfig::list_from_toml(
        r#"
        [[strategies]]
        strategy = "never"

        [[strategies]]
        strategy = "hybrid-lock"
        min_interval = "10s"

        [[strategies]]
        strategy = "background"
        interval = "15s"
        coordinated = true
        "#,
    )
    .unwrap();
    let sims: Vec<Strategy> = list.iter().map(|c| c.sim_strategy().unwrap()).collect();
    assert_eq!(sims[0], Strategy::Never);
    assert_eq!(
        sims[1],
        Strategy::HybridLock(HybridLockConfig::default().with_min_interval(secs(10)))
    );
    assert_eq!(
        sims[2],
        Strategy::Background(
            BackgroundConfig::default()
                .with_interval(secs(15))
                .with_coordination(true)
        )
    );
    // Values are checked for the whole list; the error names the field.
    let err =
        StrategyConfig::list_from_toml("[[strategies]]\nstrategy = \"event-based\"\nevery = 0")
            .unwrap_err();
    assert_eq!(err, ConfigError::Zero { field: "every" });
    let err = StrategyConfig::list_from_toml("[[strategy]]\nstrategy = \"never\"").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `strategy`"),
        "{err}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    fn duration() -> impl proptest::strategy::Strategy<Value = Duration> {
        (0u64..10 * 86_400_000_000_000).prop_map(Duration::from_nanos)
    }

    fn any_config() -> impl proptest::strategy::Strategy<Value = StrategyConfig> {
        prop_oneof![
            Just(StrategyConfig::Never {}),
            (1u64..100_000).prop_map(|s| {
                let mut spec = TimeBasedSpec::default();
                spec.period = secs(s);
                StrategyConfig::TimeBased(spec)
            }),
            any::<u64>().prop_map(|n| {
                let mut spec = EventBasedSpec::default();
                spec.every = n;
                StrategyConfig::EventBased(spec)
            }),
            (duration(), duration(), any::<u64>(), duration()).prop_map(|(a, b, n, c)| {
                let mut spec = HybridLockSpec::default();
                spec.max_staleness = a;
                spec.min_interval = b;
                spec.every_events = n;
                spec.lease = c;
                StrategyConfig::HybridLock(spec)
            }),
            (duration(), duration(), any::<bool>(), duration()).prop_map(|(a, b, on, c)| {
                let mut spec = BackgroundSpec::default();
                spec.interval = a;
                spec.jitter = b;
                spec.coordinated = on;
                spec.lease = c;
                StrategyConfig::Background(spec)
            }),
        ]
    }

    proptest! {
        /// Whatever the values (valid or not), writing a strategy and reading
        /// it back gives the same strategy, and building it succeeds exactly
        /// when the builders' own validation accepts the values.
        #[test]
        fn any_strategy_round_trips_and_builds_as_its_builder_validates(config in any_config()) {
            let text = toml::to_string(&config).unwrap();
            prop_assert_eq!(parse(&text).unwrap(), config);
            let expected = match config {
                StrategyConfig::HybridLock(s) => HybridLockConfig::default()
                    .with_max_staleness(s.max_staleness)
                    .with_min_interval(s.min_interval)
                    .with_every_events(s.every_events)
                    .with_lease(s.lease)
                    .validate()
                    .is_ok(),
                StrategyConfig::Background(s) => BackgroundConfig::default()
                    .with_interval(s.interval)
                    .with_jitter(s.jitter)
                    .with_coordination(s.coordinated)
                    .with_lease(s.lease)
                    .validate()
                    .is_ok(),
                StrategyConfig::EventBased(s) => s.every > 0,
                _ => true,
            };
            prop_assert_eq!(config.build().is_ok(), expected);
            prop_assert_eq!(config.sim_strategy().is_ok(), expected);
        }
    }
}
