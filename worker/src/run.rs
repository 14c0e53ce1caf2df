//! `composite-metrics run`: the long-running worker.
//!
//! Threads: the main thread reads the source and applies batches; one
//! thread serves HTTP; one waits for signals; `Coalesce`/`Background`
//! strategies run their own timer thread inside the library.
//!
//! Shutdown: the first SIGTERM/SIGINT sets `draining` (`/readyz` says 503
//! from then on) and `stop`; the main thread finishes the batch in flight
//! (applied, then acknowledged: the library's `StreamSource::poll` only
//! acknowledges what was applied), stops the strategy's timer, flushes the
//! sinks and exits 0. A watchdog exits 1 if that takes longer than
//! `shutdown_timeout`; a second signal exits 130 at once.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::ingest::{StreamSource, StreamStats};
use composite_metrics::sink::MetricsSink;
use composite_metrics::state::{RedisConfig, RedisState, Scope};
use composite_metrics::{
    BackendError, CompositeScheduler, Event, MetricsCalculator, RedisSink, StateBackend,
    SystemClock,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;

use crate::config::{SourceKind, WorkerConfig};
use crate::sinks::{FanOut, StdoutSink};

/// Entries handled by the worker, a counter labelled `outcome`
/// (`applied`, `duplicate`, `dead_letter`).
pub const ENTRIES: &str = "composite_metrics_worker_entries_total";
/// Entries (or JSONL lines) sent to the dead letters, a counter.
pub const DEAD_LETTERS: &str = "composite_metrics_worker_dead_letters_total";
/// Failed reads or batches (retried), a counter.
pub const POLL_ERRORS: &str = "composite_metrics_worker_poll_errors_total";
/// 1 while `/readyz` would answer 200, else 0; set on every probe.
pub const READY: &str = "composite_metrics_worker_ready";

/// Why the worker stopped with a failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Redis did not answer within the attempts allowed at start.
    #[error("could not reach {what} at {url} after {attempts} attempt(s): {source}")]
    Unreachable {
        /// State, sink or stream.
        what: &'static str,
        /// The URL, password redacted.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        source: composite_metrics::Error,
    },
    /// A configuration rule only found when building.
    #[error("{0}")]
    Build(#[from] composite_metrics::Error),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The input could not be read.
    #[error("reading {path}: {source}")]
    Input {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("installing the SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
    /// The Prometheus recorder could not be installed.
    #[error("installing the Prometheus recorder: {0}")]
    Recorder(String),
}

/// What the HTTP thread and the signal thread share with the main loop.
#[derive(Debug, Default)]
pub struct Health {
    /// Set by the first signal: stop reading, drain, exit.
    pub stop: AtomicBool,
    /// `/readyz` answers 503 from the first signal on.
    pub draining: AtomicBool,
    /// The backend once connected (probed by `/readyz`).
    pub backend: Mutex<Option<Arc<dyn StateBackend>>>,
    /// Set when a read or batch failed, cleared by the next one that works
    /// (the stream may live on another server than the state).
    pub source_failing: AtomicBool,
}

impl Health {
    /// `Ok` when ready; else why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining".to_owned());
        }
        if self.source_failing.load(Ordering::SeqCst) {
            return Err("source: the last read or batch failed".to_owned());
        }
        let backend = self.backend.lock().clone();
        let Some(backend) = backend else {
            return Err("not connected yet".to_owned());
        };
        backend
            .last_computed(Scope::Global)
            .map(|_| ())
            .map_err(|e| format!("backend: {e}"))
    }
}

/// The progress line's arithmetic, on instants given by the caller.
#[derive(Debug)]
pub struct Progress {
    every: Duration,
    last_at: Instant,
    last_applied: u64,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressLine {
    /// Events applied per second since the previous line.
    pub events_per_second: f64,
}

impl Progress {
    /// A progress counter starting at `now`.
    pub fn new(every: Duration, now: Instant) -> Self {
        Self {
            every,
            last_at: now,
            last_applied: 0,
        }
    }

    /// A line when `every` has passed since the previous one.
    pub fn tick(&mut self, now: Instant, applied: u64) -> Option<ProgressLine> {
        let elapsed = now.checked_duration_since(self.last_at)?;
        if elapsed < self.every {
            return None;
        }
        let line = ProgressLine {
            events_per_second: applied.saturating_sub(self.last_applied) as f64
                / elapsed.as_secs_f64(),
        };
        self.last_at = now;
        self.last_applied = applied;
        Some(line)
    }
}

/// Installs the Prometheus recorder and registers the worker's own series.
pub fn install_recorder() -> Result<PrometheusHandle, RunError> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| RunError::Recorder(e.to_string()))?;
    composite_metrics::telemetry::describe();
    metrics::describe_counter!(ENTRIES, "Stream entries handled, by outcome");
    metrics::describe_counter!(DEAD_LETTERS, "Entries or lines sent to the dead letters");
    metrics::describe_counter!(POLL_ERRORS, "Failed reads or batches, retried");
    metrics::describe_gauge!(READY, "1 while /readyz answers 200");
    for outcome in ["applied", "duplicate", "dead_letter"] {
        metrics::counter!(ENTRIES, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(DEAD_LETTERS).absolute(0);
    metrics::counter!(POLL_ERRORS).absolute(0);
    metrics::gauge!(READY).set(0.0);
    Ok(handle)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listen` in a thread;
/// returns the bound address.
pub fn serve_http(
    listen: &str,
    handle: PrometheusHandle,
    health: Arc<Health>,
) -> Result<std::net::SocketAddr, RunError> {
    let server = tiny_http::Server::http(listen).map_err(|e| RunError::Listen {
        addr: listen.to_owned(),
        message: e.to_string(),
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| RunError::Listen {
            addr: listen.to_owned(),
            message: "not an IP address".to_owned(),
        })?;
    std::thread::Builder::new()
        .name("http".to_owned())
        .spawn(move || {
            let text = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .ok();
            for request in server.incoming_requests() {
                let (status, body) = match request.url() {
                    "/metrics" => {
                        handle.run_upkeep();
                        (200, handle.render())
                    }
                    "/healthz" => (200, "ok\n".to_owned()),
                    "/readyz" => match health.ready() {
                        Ok(()) => {
                            metrics::gauge!(READY).set(1.0);
                            (200, "ready\n".to_owned())
                        }
                        Err(why) => {
                            metrics::gauge!(READY).set(0.0);
                            (503, format!("not ready: {why}\n"))
                        }
                    },
                    _ => (404, "not found\n".to_owned()),
                };
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Some(h) = &text {
                    response.add_header(h.clone());
                }
                if let Err(e) = request.respond(response) {
                    tracing::debug!(error = %e, "http response failed");
                }
            }
        })
        .map_err(|e| RunError::Listen {
            addr: listen.to_owned(),
            message: e.to_string(),
        })?;
    Ok(addr)
}

/// SIGTERM and SIGINT.
fn stop_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGTERM);
    set.add(nix::sys::signal::Signal::SIGINT);
    set
}

/// Blocks SIGTERM and SIGINT in the calling thread and the threads it
/// starts from now on, so that a signal never interrupts a Redis call of
/// the main loop (the batch in flight finishes); only the signal thread
/// receives them. Call it first, before any thread is started.
pub fn block_stop_signals() -> nix::Result<()> {
    stop_signals().thread_block()
}

/// Waits for SIGTERM/SIGINT in a thread: the first starts the drain (and a
/// watchdog of `shutdown_timeout`), the second exits 130 at once.
pub fn watch_signals(health: Arc<Health>, shutdown_timeout: Duration) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            if let Err(e) = stop_signals().thread_unblock() {
                tracing::error!(error = %e, "cannot unblock SIGTERM/SIGINT in the signal thread");
            }
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    tracing::error!(signal, "second signal: exiting at once");
                    std::process::exit(130);
                }
                health.draining.store(true, Ordering::SeqCst);
                health.stop.store(true, Ordering::SeqCst);
                metrics::gauge!(READY).set(0.0);
                tracing::info!(signal, ?shutdown_timeout, "signal received: draining");
                let spawned = std::thread::Builder::new()
                    .name("watchdog".to_owned())
                    .spawn(move || {
                        std::thread::sleep(shutdown_timeout);
                        tracing::error!(?shutdown_timeout, "drain not finished in time: exiting 1");
                        std::process::exit(1);
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the shutdown watchdog");
                }
            }
        })?;
    Ok(())
}

/// Sleeps up to `d`, returning early once `stop` is set.
fn pause(health: &Health, d: Duration) {
    let until = Instant::now() + d;
    while !health.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// Retries `f` with doubling pauses (`worker.connect_attempts`,
/// `worker.connect_backoff`); `None` if a signal came meanwhile.
fn with_retries<T>(
    config: &WorkerConfig,
    health: &Health,
    what: &'static str,
    url: &str,
    mut f: impl FnMut() -> Result<T, composite_metrics::Error>,
) -> Result<Option<T>, RunError> {
    let attempts = config.worker.connect_attempts;
    let mut backoff = config.worker.connect_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f() {
            Ok(v) => return Ok(Some(v)),
            Err(e) if attempt >= attempts => {
                return Err(RunError::Unreachable {
                    what,
                    url: crate::config::redact_url(url),
                    attempts,
                    source: e,
                })
            }
            Err(e) => {
                tracing::warn!(
                    what,
                    url = %crate::config::redact_url(url),
                    attempt,
                    attempts,
                    error = %e,
                    "cannot connect; retrying in {backoff:?}"
                );
                pause(health, backoff);
                if health.stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn redis_config(config: &WorkerConfig) -> Result<Option<RedisConfig>, composite_metrics::Error> {
    let Some(spec) = &config.redis else {
        return Ok(None);
    };
    let mut rc = spec.to_config()?;
    if let Some(ca) = &config.tls.ca_file {
        rc = rc.with_tls_ca_file(ca);
    }
    if let (Some(cert), Some(key)) = (&config.tls.client_cert, &config.tls.client_key) {
        rc = rc.with_tls_client_cert(cert, key);
    }
    Ok(Some(rc))
}

fn state_url(config: &WorkerConfig) -> String {
    if !config.cluster.seeds.is_empty() {
        return config.cluster.seeds.join(",");
    }
    config
        .redis
        .as_ref()
        .and_then(|r| r.url.clone())
        .unwrap_or_default()
}

fn connect_state(
    config: &WorkerConfig,
    rc: &Option<RedisConfig>,
) -> Result<Arc<dyn StateBackend>, composite_metrics::Error> {
    let Some(rc) = rc else {
        return Ok(Arc::new(config.memory.build(SystemClock)?));
    };
    let seeds: Vec<&str> = config.cluster.seeds.iter().map(String::as_str).collect();
    let state = if seeds.is_empty() {
        RedisState::connect(&state_url(config), rc.clone())?
    } else {
        RedisState::connect_cluster(&seeds, rc.clone())?
    };
    Ok(Arc::new(state))
}

fn connect_redis_sink(
    config: &WorkerConfig,
    rc: &RedisConfig,
) -> Result<RedisSink, composite_metrics::Error> {
    let seeds: Vec<&str> = config.cluster.seeds.iter().map(String::as_str).collect();
    Ok(if seeds.is_empty() {
        RedisSink::connect(&state_url(config), rc.clone())?
    } else {
        RedisSink::connect_cluster(&seeds, rc.clone())?
    })
}

/// Runs the worker until its input ends (JSONL) or a signal drains it.
pub fn run(config: &WorkerConfig, handle: PrometheusHandle) -> Result<(), RunError> {
    let health = Arc::new(Health::default());
    watch_signals(health.clone(), config.worker.shutdown_timeout).map_err(RunError::Signals)?;
    let addr = serve_http(&config.http.listen, handle, health.clone())?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

    let rc = redis_config(config)?;
    let url = state_url(config);
    let Some(state) = with_retries(config, &health, "state", &url, || {
        connect_state(config, &rc)
    })?
    else {
        return Ok(());
    };
    let mut sinks = FanOut::default();
    if config.redis_sink() {
        if let Some(rc) = &rc {
            let Some(sink) = with_retries(config, &health, "sink", &url, || {
                connect_redis_sink(config, rc)
            })?
            else {
                return Ok(());
            };
            sinks.push(sink);
        }
    }
    if config.sinks.prometheus {
        sinks.push(MetricsSink::new());
    }
    if config.sinks.stdout {
        sinks.push(StdoutSink);
    }
    let scheduler: Box<dyn CompositeScheduler> = config
        .scheduler
        .build()
        .map_err(|e| RunError::Build(composite_metrics::Error::Config(e)))?;
    let mut calc = MetricsCalculator::builder()
        .state(state.clone())
        .scheduler(scheduler)
        .sink(sinks)
        .build()?;
    tracing::info!(
        strategy = calc.scheduler_name(),
        backend = if rc.is_some() { "redis" } else { "memory" },
        "calculator ready"
    );

    let result = match config.source.kind {
        SourceKind::RedisStream => run_stream(config, &health, &mut calc, state),
        SourceKind::Jsonl => {
            *health.backend.lock() = Some(state);
            run_jsonl(config, &health, &mut calc)
        }
    };
    let started = Instant::now();
    // Stops the strategy's timer thread (Coalesce, Background); a lock is
    // only held during a calculation, which the library releases itself.
    calc.shutdown();
    drop(calc);
    let _ = std::io::stdout().flush();
    tracing::info!(elapsed = ?started.elapsed(), "stopped");
    result
}

fn run_stream<S: CompositeScheduler>(
    config: &WorkerConfig,
    health: &Health,
    calc: &mut MetricsCalculator<S>,
    state: Arc<dyn StateBackend>,
) -> Result<(), RunError> {
    let consumer = config.source.consumer_name();
    let url = config
        .source
        .url
        .clone()
        .or_else(|| config.redis.as_ref().and_then(|r| r.url.clone()))
        .unwrap_or_default();
    let stream_config = config.source.stream_config(&consumer);
    let Some(mut source) = with_retries(config, health, "stream", &url, || {
        StreamSource::connect(&url, stream_config.clone())
    })?
    else {
        return Ok(());
    };
    *health.backend.lock() = Some(state);
    tracing::info!(
        stream = %config.source.stream,
        group = %config.source.group,
        consumer = %consumer,
        strategy = config.scheduler.name(),
        "reading the stream"
    );
    let mut progress = Progress::new(config.worker.progress_every, Instant::now());
    let mut last = source.stats();
    let mut failing = false;
    while !health.stop.load(Ordering::SeqCst) {
        match source.poll(calc) {
            Ok(_) => {
                if failing {
                    tracing::info!("stream and backend answer again");
                    failing = false;
                    health.source_failing.store(false, Ordering::SeqCst);
                }
            }
            Err(e) => {
                health.source_failing.store(true, Ordering::SeqCst);
                metrics::counter!(POLL_ERRORS).increment(1);
                if !failing && !health.stop.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "poll failed; retrying (entries not applied stay pending)");
                }
                failing = true;
                pause(health, config.source.block.min(Duration::from_secs(1)));
            }
        }
        let s = source.stats();
        publish(&last, &s);
        last = s;
        if let Some(line) = progress.tick(Instant::now(), s.applied) {
            tracing::info!(
                events_per_second = format_args!("{:.1}", line.events_per_second),
                undelivered = s.undelivered.unwrap_or(0),
                oldest_unacked_s = s.oldest_unacked_age.map_or(0.0, |a| a.as_secs_f64()),
                pending = s.pending,
                dead_letters = s.dead_lettered,
                applied = s.applied,
                "progress"
            );
        }
    }
    let s = source.stats();
    tracing::info!(
        applied = s.applied,
        duplicates = s.duplicates,
        dead_letters = s.dead_lettered,
        claimed = s.claimed,
        acked = s.acked,
        "drained: the batch in flight was applied and acknowledged"
    );
    Ok(())
}

fn publish(before: &StreamStats, now: &StreamStats) {
    let applied = now.applied.saturating_sub(before.applied);
    let duplicates = now.duplicates.saturating_sub(before.duplicates);
    let dead = now.dead_lettered.saturating_sub(before.dead_lettered);
    if applied > 0 {
        metrics::counter!(ENTRIES, "outcome" => "applied").increment(applied);
    }
    if duplicates > 0 {
        metrics::counter!(ENTRIES, "outcome" => "duplicate").increment(duplicates);
    }
    if dead > 0 {
        metrics::counter!(ENTRIES, "outcome" => "dead_letter").increment(dead);
        metrics::counter!(DEAD_LETTERS).increment(dead);
    }
}

/// Lines read by the reader thread, in chunks.
enum Chunk {
    Lines(Vec<(usize, String)>),
    Failed(std::io::Error),
}

fn run_jsonl<S: CompositeScheduler>(
    config: &WorkerConfig,
    health: &Health,
    calc: &mut MetricsCalculator<S>,
) -> Result<(), RunError> {
    let path = config.source.path.clone();
    let input: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&path).map_err(|source| RunError::Input {
            path: path.clone(),
            source,
        })?;
        Box::new(std::io::BufReader::new(file))
    };
    let count = config.source.count;
    let (tx, rx) = mpsc::sync_channel::<Chunk>(4);
    std::thread::Builder::new()
        .name("jsonl".to_owned())
        .spawn(move || {
            let mut chunk = Vec::with_capacity(count);
            for (n, line) in input.lines().enumerate() {
                match line {
                    Ok(l) if l.trim().is_empty() => {}
                    Ok(l) => chunk.push((n + 1, l)),
                    Err(e) => {
                        let _ = tx.send(Chunk::Failed(e));
                        return;
                    }
                }
                if chunk.len() >= count
                    && tx
                        .send(Chunk::Lines(std::mem::replace(
                            &mut chunk,
                            Vec::with_capacity(count),
                        )))
                        .is_err()
                {
                    return;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(Chunk::Lines(chunk));
            }
        })
        .map_err(|source| RunError::Input {
            path: path.clone(),
            source,
        })?;
    tracing::info!(path = %path, "reading JSON lines");
    let mut progress = Progress::new(config.worker.progress_every, Instant::now());
    let (mut applied, mut dead) = (0u64, 0u64);
    let (mut events, mut out, mut deliveries) = (Vec::new(), Vec::new(), Vec::new());
    while !health.stop.load(Ordering::SeqCst) {
        let chunk = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Chunk::Lines(c)) => c,
            Ok(Chunk::Failed(source)) => return Err(RunError::Input { path, source }),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                tracing::info!(applied, dead_letters = dead, "end of input");
                break;
            }
        };
        events.clear();
        for (n, line) in &chunk {
            match Event::from_json(line) {
                Ok(e) => events.push(e),
                Err(e) => {
                    dead += 1;
                    metrics::counter!(DEAD_LETTERS).increment(1);
                    metrics::counter!(ENTRIES, "outcome" => "dead_letter").increment(1);
                    tracing::warn!(line = n, error = %e, "invalid event");
                }
            }
        }
        // A failed batch is retried until it is applied or a signal stops the worker.
        loop {
            out.clear();
            match calc.process_batch_into(&events, &mut out, &mut deliveries) {
                Ok(()) => {
                    let dup = deliveries
                        .iter()
                        .filter(|(d, _)| *d == composite_metrics::Delivery::Duplicate)
                        .count() as u64;
                    let n = events.len() as u64 - dup;
                    applied += n;
                    metrics::counter!(ENTRIES, "outcome" => "applied").increment(n);
                    metrics::counter!(ENTRIES, "outcome" => "duplicate").increment(dup);
                    break;
                }
                Err(composite_metrics::Error::Backend(e)) if retryable(&e) => {
                    metrics::counter!(POLL_ERRORS).increment(1);
                    tracing::warn!(error = %e, "batch failed; retrying");
                    pause(health, Duration::from_secs(1));
                    if health.stop.load(Ordering::SeqCst) {
                        tracing::warn!(lines = chunk.len(), "stopped with a batch not applied");
                        return Ok(());
                    }
                }
                Err(e) => {
                    // An event the backend refuses (late, over a limit): dead letters.
                    dead += events.len() as u64;
                    metrics::counter!(DEAD_LETTERS).increment(events.len() as u64);
                    tracing::warn!(error = %e, events = events.len(), "batch refused");
                    break;
                }
            }
        }
        if let Some(line) = progress.tick(Instant::now(), applied) {
            tracing::info!(
                events_per_second = format_args!("{:.1}", line.events_per_second),
                dead_letters = dead,
                applied,
                "progress"
            );
        }
    }
    Ok(())
}

fn retryable(e: &BackendError) -> bool {
    !matches!(
        e,
        BackendError::CapacityExceeded { .. } | BackendError::InvalidConfig { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reports_once_per_period_with_the_rate() {
        let t0 = Instant::now();
        let mut p = Progress::new(Duration::from_secs(10), t0);
        assert_eq!(p.tick(t0 + Duration::from_secs(9), 500), None);
        let line = p.tick(t0 + Duration::from_secs(10), 1_000).unwrap();
        assert!((line.events_per_second - 100.0).abs() < 1e-9);
        assert_eq!(p.tick(t0 + Duration::from_secs(15), 2_000), None);
        let line = p.tick(t0 + Duration::from_secs(30), 3_000).unwrap();
        assert!((line.events_per_second - 100.0).abs() < 1e-9);
    }
}
