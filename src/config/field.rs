//! Field deserialisers that put the field's name in every error. Serde's
//! internally tagged enums buffer their content, so a format's own key and
//! line information is lost for a wrong value inside a strategy table; these
//! wrappers keep the field name in the message whatever the format.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

fn named<E: serde::de::Error>(field: &str, e: impl std::fmt::Display) -> E {
    E::custom(format_args!("field `{field}`: {e}"))
}

macro_rules! duration_fields {
    ($($name:ident),* $(,)?) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            humantime_serde::deserialize(d).map_err(|e| named(stringify!($name), e))
        }
    )*};
}

macro_rules! plain_fields {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            <$ty>::deserialize(d).map_err(|e| named(stringify!($name), e))
        }
    )*};
}

duration_fields!(
    period,
    max_staleness,
    min_interval,
    lease,
    interval,
    jitter,
    session_ttl,
    tick,
    dedup_horizon,
);

plain_fields!(
    every: u64,
    every_events: u64,
    coordinated: bool,
    max_sessions: usize,
    max_tools: usize,
);

// The fields only `RedisConfigSpec` has.
#[cfg(feature = "redis")]
duration_fields!(window_ttl, connect_timeout, read_timeout, write_timeout);

#[cfg(feature = "redis")]
plain_fields!(namespace: String, url: Option<String>);
