//! The worker's configuration: one TOML file, environment variables and
//! flags, merged with the precedence **flags > environment > file >
//! defaults**.
//!
//! The file's `[scheduler]`, `[memory]` and `[redis]` tables are the
//! library's own [`CalculatorConfig`] tables (`StrategyConfig`,
//! `MemoryConfigSpec`, `RedisConfigSpec`), so a calculator configuration
//! file is a valid worker file. The worker adds the tables the library has
//! no type for: `[source]`, `[sinks]`, `[http]`, `[worker]`, `[cluster]`
//! and `[tls]`.
//!
//! Every key `<table>.<key>` can also be set by the environment variable
//! `COMPOSITE_METRICS_<TABLE>__<KEY>` (upper case, a double underscore
//! between the table and the key), e.g. `COMPOSITE_METRICS_REDIS__URL` or
//! `COMPOSITE_METRICS_SCHEDULER__MIN_INTERVAL=10s`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use composite_metrics::config::{
    CalculatorConfig, MemoryConfigSpec, RedisConfigSpec, StrategyConfig,
};
use composite_metrics::ingest::StreamConfig;
use composite_metrics::ConfigError;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// The prefix of every environment variable the worker reads.
pub const ENV_PREFIX: &str = "COMPOSITE_METRICS_";
/// The environment variable naming the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "COMPOSITE_METRICS_CONFIG";

/// The whole configuration, as merged from defaults, file, environment and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// The composite's strategy (the library's `StrategyConfig`).
    pub scheduler: StrategyConfig,
    /// The memory backend, used when there is no `[redis]` table (the library's `MemoryConfigSpec`).
    pub memory: MemoryConfigSpec,
    /// The Redis backend; when present it replaces the memory backend (the library's `RedisConfigSpec`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfigSpec>,
    /// Redis Cluster: seed URLs; when not empty, state and sink use the cluster.
    pub cluster: ClusterOptions,
    /// TLS files for `rediss://` URLs.
    pub tls: TlsOptions,
    /// Where events come from.
    pub source: SourceOptions,
    /// Where metrics go.
    pub sinks: SinkOptions,
    /// The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub http: HttpOptions,
    /// Process-level settings.
    pub worker: ProcessOptions,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterOptions {
    /// Seed nodes of a Redis Cluster (any of its nodes); empty: no cluster.
    pub seeds: Vec<String>,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of CA certificates to trust instead of the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (with `client_key`), for servers that require one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's PEM private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// Which source feeds the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A Redis Stream read in a consumer group.
    #[default]
    RedisStream,
    /// JSON lines from a file or stdin.
    Jsonl,
}

/// `[source]`: the stream options mirror the library's `StreamConfig` (which
/// has no serde form), with its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceOptions {
    /// `redis-stream` or `jsonl`.
    pub kind: SourceKind,
    /// The stream's server (default: `redis.url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The stream.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// This consumer's name (default: the host name); keep it across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Most entries per read, applied as one batch.
    pub count: usize,
    /// Longest wait of a read.
    #[serde(with = "humantime_serde")]
    pub block: Duration,
    /// Idle time after which another consumer's pending entries are claimed.
    #[serde(with = "humantime_serde")]
    pub min_idle: Duration,
    /// How often to look for such entries.
    #[serde(with = "humantime_serde")]
    pub claim_every: Duration,
    /// Deliveries after which an entry is dead-lettered.
    pub max_deliveries: u64,
    /// The dead-letter stream (default `<stream>:dead`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// The entry field holding the event JSON (entries without it are read as flat fields).
    pub json_field: String,
    /// Where a group the worker creates starts (`0` or `$`).
    pub start_id: String,
    /// Bound on opening the stream connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Bound on every other stream call.
    #[serde(with = "humantime_serde")]
    pub io_timeout: Duration,
    /// How often the stream lag is read.
    #[serde(with = "humantime_serde")]
    pub lag_every: Duration,
    /// `jsonl`: the file to read, `-` for stdin.
    pub path: String,
}

impl Default for SourceOptions {
    fn default() -> Self {
        // The library's defaults, read from its own type.
        let d = StreamConfig::new("telemetry:events", "composite-metrics", "default");
        Self {
            kind: SourceKind::RedisStream,
            url: None,
            stream: d.stream().to_owned(),
            group: d.group().to_owned(),
            consumer: None,
            count: d.count(),
            block: d.block(),
            min_idle: d.min_idle(),
            claim_every: d.claim_every(),
            max_deliveries: d.max_deliveries(),
            dead_letter: None,
            json_field: d.json_field().to_owned(),
            start_id: d.start_id().to_owned(),
            connect_timeout: d.connect_timeout(),
            io_timeout: d.io_timeout(),
            lag_every: d.lag_every(),
            path: "-".to_owned(),
        }
    }
}

impl SourceOptions {
    /// The library's stream configuration for consumer `consumer`.
    pub fn stream_config(&self, consumer: &str) -> StreamConfig {
        let mut c = StreamConfig::new(&self.stream, &self.group, consumer)
            .with_count(self.count)
            .with_block(self.block)
            .with_min_idle(self.min_idle)
            .with_claim_every(self.claim_every)
            .with_max_deliveries(self.max_deliveries)
            .with_json_field(&self.json_field)
            .with_start_id(&self.start_id)
            .with_connect_timeout(self.connect_timeout)
            .with_io_timeout(self.io_timeout)
            .with_lag_every(self.lag_every);
        if let Some(dead) = &self.dead_letter {
            c = c.with_dead_letter(dead);
        }
        c
    }

    /// The consumer name: the configured one, else `$HOSTNAME`, else
    /// `/etc/hostname`, else `worker-<pid>`.
    pub fn consumer_name(&self) -> String {
        if let Some(c) = &self.consumer {
            return c.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| format!("worker-{}", std::process::id()))
    }
}

/// `[sinks]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkOptions {
    /// Record metrics in Redis (`RedisSink`: `{ns}:latest` and series);
    /// default: on when a `[redis]` table is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<bool>,
    /// Export metrics through the `metrics` facade, served at `/metrics`.
    pub prometheus: bool,
    /// Print every metric as one JSON line on stdout.
    pub stdout: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            redis: None,
            prometheus: true,
            stdout: false,
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOptions {
    /// The address of `/metrics`, `/healthz` and `/readyz` (port 0: any free port, logged).
    pub listen: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9187".to_owned(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines, with a progress line every `progress_every`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[worker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessOptions {
    /// After SIGTERM/SIGINT, the longest the drain may take before the
    /// process gives up and exits 1.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Attempts to reach Redis at start before exiting 1.
    pub connect_attempts: u32,
    /// Pause after the first failed attempt, doubled after each (at most 30 s).
    #[serde(with = "humantime_serde")]
    pub connect_backoff: Duration,
    /// How often the progress line is logged.
    #[serde(with = "humantime_serde")]
    pub progress_every: Duration,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            shutdown_timeout: Duration::from_secs(25),
            connect_attempts: 5,
            connect_backoff: Duration::from_secs(1),
            progress_every: Duration::from_secs(10),
            log_format: LogFormat::Text,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "environment variable {v}"),
            Self::Flag(n) => write!(f, "flag {n}"),
            Self::Default => f.write_str("the defaults"),
        }
    }
}

/// A configuration that cannot be used: where, which key, which rule.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, key, rule).
        message: String,
    },
    /// An override is not usable.
    #[error("{origin}: key `{key}`: {message}")]
    Override {
        /// The environment variable or flag.
        origin: Origin,
        /// The key it sets.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value breaks a rule.
    #[error("{origin}: key `{key}`: {rule}")]
    Rule {
        /// Where the offending value came from.
        origin: Origin,
        /// The key.
        key: String,
        /// The rule it breaks.
        rule: String,
    },
}

/// One override: a key path, its text value, and its origin.
#[derive(Debug, Clone)]
pub struct Override {
    /// `table.key`.
    pub key: String,
    /// The value as text (typed by the key's default, else inferred).
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The merged configuration and the origin of each key set by file, env or flag.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: WorkerConfig,
    /// `table.key` → where its value came from (absent: the default).
    pub origins: BTreeMap<String, Origin>,
}

impl Loaded {
    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// Whether `rest` (a name after `COMPOSITE_METRICS_`) is one of the
/// variables Kubernetes sets for a Service named `composite-metrics`
/// (`_SERVICE_HOST`, `_SERVICE_PORT...`, `_PORT...`).
fn kubernetes_service_variable(rest: &str) -> bool {
    rest.starts_with("SERVICE_HOST")
        || rest.starts_with("SERVICE_PORT")
        || rest == "PORT"
        || rest.starts_with("PORT_")
}

/// The environment's overrides: every `COMPOSITE_METRICS_<TABLE>__<KEY>`
/// variable, in name order. `COMPOSITE_METRICS_CONFIG` and the variables
/// Kubernetes sets for a Service named `composite-metrics` are skipped;
/// any other `COMPOSITE_METRICS_` variable is an error (a typo such as
/// `COMPOSITE_METRICS_REDIS_URL` must not pass unnoticed).
pub fn env_overrides(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, LoadError> {
    let mut out = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != ENV_CONFIG)
        .collect();
    vars.sort();
    for (name, value) in vars {
        let rest = &name[ENV_PREFIX.len()..];
        if kubernetes_service_variable(rest) {
            continue;
        }
        let Some((table, key)) = rest.split_once("__") else {
            return Err(LoadError::Override {
                origin: Origin::Env(name.clone()),
                key: rest.to_ascii_lowercase(),
                message: format!(
                    "not a setting: write {ENV_PREFIX}<TABLE>__<KEY>, e.g. {ENV_PREFIX}REDIS__URL"
                ),
            });
        };
        out.push(Override {
            key: format!(
                "{}.{}",
                table.to_ascii_lowercase(),
                key.to_ascii_lowercase()
            ),
            value,
            origin: Origin::Env(name),
        });
    }
    Ok(out)
}

/// The type a key's value should have, from the defaults (with a `[redis]`
/// table and every strategy's fields), if known.
fn default_value(key: &str) -> Option<Value> {
    // Optional keys filled in, for their types.
    let mut defaults = WorkerConfig {
        redis: Some(RedisConfigSpec::default()),
        ..WorkerConfig::default()
    };
    if let Some(r) = defaults.redis.as_mut() {
        r.url = Some(String::new());
    }
    defaults.source.url = Some(String::new());
    defaults.source.consumer = Some(String::new());
    defaults.source.dead_letter = Some(String::new());
    defaults.tls = TlsOptions {
        ca_file: Some(PathBuf::new()),
        client_cert: Some(PathBuf::new()),
        client_key: Some(PathBuf::new()),
    };
    defaults.sinks.redis = Some(true);
    let (table, field) = key.split_once('.')?;
    if table == "scheduler" {
        for name in StrategyConfig::NAMES {
            defaults.scheduler = name.parse().ok()?;
            let t = Table::try_from(&defaults).ok()?;
            if let Some(v) = t.get(table).and_then(|t| t.get(field)) {
                return Some(v.clone());
            }
        }
        return None;
    }
    let t = Table::try_from(&defaults).ok()?;
    t.get(table)?.get(field).cloned()
}

/// A text value typed for `key`.
fn typed(key: &str, text: &str) -> Value {
    match default_value(key) {
        Some(Value::String(_)) => Value::String(text.to_owned()),
        Some(Value::Array(_)) => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Some(Value::Integer(_)) | Some(Value::Boolean(_)) | Some(Value::Float(_)) | None => {
            match text.parse::<toml::Value>() {
                Ok(v) if !matches!(v, Value::Table(_)) => v,
                _ => text
                    .parse::<i64>()
                    .map(Value::Integer)
                    .or_else(|_| text.parse::<bool>().map(Value::Boolean))
                    .unwrap_or_else(|_| Value::String(text.to_owned())),
            }
        }
        Some(_) => Value::String(text.to_owned()),
    }
}

fn set(table: &mut Table, key: &str, value: Value) -> Result<(), String> {
    let Some((t, field)) = key.split_once('.') else {
        return Err("a key is `<table>.<key>`".to_owned());
    };
    let entry = table
        .entry(t.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    match entry {
        Value::Table(inner) => {
            inner.insert(field.to_owned(), value);
            Ok(())
        }
        _ => Err(format!("`{t}` is not a table")),
    }
}

/// Removes from `table.scheduler` the fields strategy `name` does not have
/// (an unknown name removes nothing: the error names it later); returns them.
fn keep_strategy_fields(table: &mut Table, name: &str) -> Vec<String> {
    let Ok(strategy) = name.parse::<StrategyConfig>() else {
        return Vec::new();
    };
    let Ok(Value::Table(known)) = Value::try_from(strategy) else {
        return Vec::new();
    };
    let Some(Value::Table(scheduler)) = table.get_mut("scheduler") else {
        return Vec::new();
    };
    let dropped: Vec<String> = scheduler
        .keys()
        .filter(|k| !known.contains_key(*k))
        .cloned()
        .collect();
    for k in &dropped {
        scheduler.remove(k);
    }
    dropped
}

fn from_table(table: &Table) -> Result<WorkerConfig, String> {
    WorkerConfig::deserialize(Value::Table(table.clone())).map_err(|e| e.to_string())
}

/// Merges defaults, `file` (if any), then `overrides` in order (environment
/// first, flags last: a later override wins), and checks every rule.
pub fn load(file: Option<&Path>, overrides: &[Override]) -> Result<Loaded, LoadError> {
    let mut origins = BTreeMap::new();
    let mut table = Table::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        // Parsed from the text, the errors carry the line and the key.
        toml::from_str::<WorkerConfig>(&text).map_err(|e| LoadError::File {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        table = toml::from_str(&text).map_err(|e| LoadError::File {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        for (t, v) in &table {
            match v {
                Value::Table(inner) => {
                    for k in inner.keys() {
                        origins.insert(format!("{t}.{k}"), Origin::File(path.to_owned()));
                    }
                }
                _ => {
                    origins.insert(t.clone(), Origin::File(path.to_owned()));
                }
            }
        }
    }
    for o in overrides {
        let fail = |message: String| LoadError::Override {
            origin: o.origin.clone(),
            key: o.key.clone(),
            message,
        };
        set(&mut table, &o.key, typed(&o.key, &o.value)).map_err(fail)?;
        if o.key == "scheduler.strategy" {
            // Another strategy: the parameters it does not have (set for the
            // previous one) are dropped; those it shares are kept.
            for dropped in keep_strategy_fields(&mut table, &o.value) {
                origins.remove(&format!("scheduler.{dropped}"));
            }
        }
        // Checked one at a time, so an error names the override at fault.
        from_table(&table).map_err(fail)?;
        origins.insert(o.key.clone(), o.origin.clone());
    }
    let config = from_table(&table).map_err(|message| LoadError::File {
        path: file.map(Path::to_owned).unwrap_or_default(),
        message,
    })?;
    let loaded = Loaded { config, origins };
    validate(&loaded)?;
    Ok(loaded)
}

/// The field a library `ConfigError` names, if any.
fn error_field(e: &ConfigError) -> Option<&'static str> {
    match e {
        ConfigError::Zero { field }
        | ConfigError::OutOfRange { field, .. }
        | ConfigError::Missing { field } => Some(field),
        ConfigError::Order { lower, .. } => Some(lower),
        _ => None,
    }
}

fn rule(loaded: &Loaded, table: &str, field: Option<&str>, e: impl fmt::Display) -> LoadError {
    let key = match field {
        Some(f) => format!("{table}.{f}"),
        None => table.to_owned(),
    };
    LoadError::Rule {
        origin: loaded.origin(&key),
        key,
        rule: e.to_string(),
    }
}

/// Checks every rule without connecting to anything.
pub fn validate(loaded: &Loaded) -> Result<(), LoadError> {
    let c = &loaded.config;
    if let Err(e) = c.scheduler.sim_strategy() {
        return Err(rule(loaded, "scheduler", error_field(&e), e));
    }
    if let Err(e) = c.memory.to_config() {
        return Err(rule(loaded, "memory", error_field(&e), e));
    }
    if let Some(redis) = &c.redis {
        if let Err(e) = redis.to_config() {
            return Err(rule(loaded, "redis", error_field(&e), e));
        }
        if redis.url.is_none() && c.cluster.seeds.is_empty() {
            return Err(rule(
                loaded,
                "redis",
                Some("url"),
                "is required with a [redis] table (or set cluster.seeds)",
            ));
        }
    }
    if !c.cluster.seeds.is_empty() && c.redis.is_none() {
        return Err(rule(
            loaded,
            "cluster",
            Some("seeds"),
            "needs a [redis] table (namespace, timeouts)",
        ));
    }
    if c.tls.client_cert.is_some() != c.tls.client_key.is_some() {
        return Err(rule(
            loaded,
            "tls",
            Some("client_cert"),
            "client_cert and client_key go together",
        ));
    }
    for (field, path) in [
        ("ca_file", &c.tls.ca_file),
        ("client_cert", &c.tls.client_cert),
        ("client_key", &c.tls.client_key),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(rule(
                    loaded,
                    "tls",
                    Some(field),
                    format!("{} is not a readable file", p.display()),
                ));
            }
        }
    }
    if c.source.kind == SourceKind::RedisStream {
        if c.source.url.is_none() && c.redis.as_ref().and_then(|r| r.url.as_ref()).is_none() {
            return Err(rule(
                loaded,
                "source",
                Some("url"),
                "a redis-stream source needs source.url or redis.url",
            ));
        }
        let sc = c.source.stream_config(&c.source.consumer_name());
        if let Err(e) = sc.validate() {
            return Err(rule(loaded, "source", error_field(&e), e));
        }
    }
    if c.sinks.redis == Some(true) && c.redis.is_none() {
        return Err(rule(
            loaded,
            "sinks",
            Some("redis"),
            "the Redis sink needs a [redis] table",
        ));
    }
    if c.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(rule(
            loaded,
            "http",
            Some("listen"),
            format!("`{}` is not an address like 127.0.0.1:9187", c.http.listen),
        ));
    }
    // The library's own check of its tables, as a whole.
    if let Err(e) = c.calculator().validate() {
        return Err(rule(loaded, "scheduler", error_field(&e), e));
    }
    if c.worker.shutdown_timeout.is_zero() {
        return Err(rule(
            loaded,
            "worker",
            Some("shutdown_timeout"),
            "must be greater than zero",
        ));
    }
    if c.worker.connect_attempts == 0 {
        return Err(rule(
            loaded,
            "worker",
            Some("connect_attempts"),
            "must be at least 1",
        ));
    }
    if c.worker.progress_every.is_zero() {
        return Err(rule(
            loaded,
            "worker",
            Some("progress_every"),
            "must be greater than zero",
        ));
    }
    Ok(())
}

impl WorkerConfig {
    /// The library's calculator configuration (scheduler, memory, redis).
    pub fn calculator(&self) -> CalculatorConfig {
        let mut c = CalculatorConfig::default();
        c.scheduler = self.scheduler;
        c.memory = self.memory;
        c.redis = self.redis.clone();
        c
    }

    /// Whether metrics go to Redis.
    pub fn redis_sink(&self) -> bool {
        self.sinks.redis.unwrap_or(self.redis.is_some())
    }

    /// The effective configuration as TOML, passwords in URLs redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render the configuration: {e}\n"),
        };
        redact(&mut value);
        toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn redact(v: &mut Value) {
    match v {
        Value::String(s) => *s = redact_url(s),
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact(v)),
        _ => {}
    }
}

/// `redis://user:secret@host/` → `redis://user:***@host/`; other text unchanged.
pub fn redact_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_owned();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return s.to_owned();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        // `redis://secret@host`: some clients read a lone userinfo as the password.
        None => "***".to_owned(),
    };
    format!("{}{}@{}", &s[..scheme_end + 3], user, &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("redis://:pw@h:1/"), "redis://:***@h:1/");
        assert_eq!(redact_url("rediss://u:pw@h/0"), "rediss://u:***@h/0");
        assert_eq!(redact_url("redis://h:1/"), "redis://h:1/");
        assert_eq!(redact_url("plain"), "plain");
    }

    #[test]
    fn env_names_map_to_keys() {
        let o = env_overrides([
            (
                "COMPOSITE_METRICS_REDIS__URL".to_owned(),
                "redis://x/".to_owned(),
            ),
            ("OTHER".to_owned(), "1".to_owned()),
        ])
        .unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].key, "redis.url");
        assert!(env_overrides([("COMPOSITE_METRICS_NOPE".to_owned(), "1".to_owned())]).is_err());
        assert!(
            env_overrides([("COMPOSITE_METRICS_REDIS_URL".to_owned(), "x".to_owned())]).is_err()
        );
        // What Kubernetes sets for a Service named `composite-metrics`.
        let k8s = [
            "COMPOSITE_METRICS_SERVICE_HOST",
            "COMPOSITE_METRICS_SERVICE_PORT",
            "COMPOSITE_METRICS_SERVICE_PORT_METRICS",
            "COMPOSITE_METRICS_PORT",
            "COMPOSITE_METRICS_PORT_9187_TCP_ADDR",
        ];
        let o = env_overrides(k8s.map(|k| (k.to_owned(), "10.0.0.1".to_owned()))).unwrap();
        assert!(o.is_empty(), "{o:?}");
    }

    #[test]
    fn typed_by_defaults() {
        assert_eq!(typed("source.group", "123"), Value::String("123".into()));
        assert_eq!(typed("source.count", "7"), Value::Integer(7));
        assert_eq!(typed("scheduler.every_events", "7"), Value::Integer(7));
        assert_eq!(typed("sinks.stdout", "true"), Value::Boolean(true));
        assert_eq!(
            typed("cluster.seeds", "a, b"),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
        );
    }
}
