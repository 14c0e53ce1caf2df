//! Issue 11 point 2: the Redis backend from configuration, against a real server.

mod support;

use std::time::Duration;

use composite_metrics::config::{CalculatorConfig, RedisConfigSpec};
use composite_metrics::state::RedisConfig;
use composite_metrics::{ConfigError, Error, Event};
use support::RedisServer;

fn redis_section(text: &str) -> Result<RedisConfigSpec, ConfigError> {
    let config = CalculatorConfig::from_toml(&format!("[redis]\n{text}"))?;
    Ok(config.redis.expect("a [redis] table"))
}

#[test]
fn redis_config_round_trips_and_builds_through_its_builders() {
    let spec = redis_section(
        "namespace = \"team-a\"\nread_timeout = \"200ms\"\nwindow_ttl = \"1h\"\nmax_tools = 50",
    )
    .unwrap();
    let config = spec.to_config().unwrap();
    assert_eq!(
        config,
        RedisConfig::default()
            .with_namespace("team-a")
            .with_read_timeout(Duration::from_millis(200))
            .with_window_ttl(Duration::from_secs(3_600))
            .with_max_tools(50)
    );
    let text = toml::to_string(&spec).unwrap();
    assert!(text.contains("read_timeout = \"200ms\""), "{text}");
    assert_eq!(redis_section(&text).unwrap(), spec);
    assert_eq!(
        RedisConfigSpec::default().to_config().unwrap(),
        RedisConfig::default()
    );
}

#[test]
fn every_redis_validation_error_names_its_field() {
    for field in [
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "session_ttl",
        "window_ttl",
    ] {
        let spec = redis_section(&format!("{field} = \"0s\"")).unwrap();
        assert!(
            matches!(spec.to_config(), Err(ConfigError::OutOfRange { field: f, .. }) if f == field),
            "{field}"
        );
    }
    for field in ["max_sessions", "max_tools"] {
        let spec = redis_section(&format!("{field} = 0")).unwrap();
        assert_eq!(spec.to_config(), Err(ConfigError::Zero { field }));
    }
    let spec = redis_section("namespace = \"a{b\"").unwrap();
    assert!(matches!(
        spec.to_config(),
        Err(ConfigError::OutOfRange {
            field: "namespace",
            ..
        })
    ));
    assert!(matches!(
        redis_section("namespace = \"ok\"").unwrap().connect(),
        Err(Error::Config(ConfigError::Missing { field: "url" }))
    ));
    match redis_section("read_timeout = 5") {
        Err(ConfigError::Parse { message }) => {
            assert!(message.contains("read_timeout"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_redis_table_replaces_the_memory_backend() {
    let server = RedisServer::start();
    let config = CalculatorConfig::from_toml(&format!(
        "[scheduler]\nstrategy = \"event-based\"\nevery = 1\n\n[redis]\nurl = \"{}\"\nnamespace = \"from-file\"",
        server.url()
    ))
    .unwrap();
    let mut calc = config.builder().unwrap().build().unwrap();
    calc.process(&Event::tool_use("s1", "bash").with_success(true))
        .unwrap();
    assert_eq!(calc.stats().composites, 1);
    let keys: Vec<String> = server.cmd(&["KEYS", "{from-file}:*"]);
    assert!(!keys.is_empty(), "no key under the configured namespace");
}
