//! Exports the crate's metrics to Prometheus through the `metrics` facade:
//! installs `metrics-exporter-prometheus` with an HTTP listener on
//! 127.0.0.1, replays a few hundred events of the simulator's event mix
//! through two `HybridLock` workers, and keeps serving `/metrics` for a
//! bounded time.
//!
//! ```sh
//! cargo run --features metrics --example prometheus
//! cargo run --features metrics --example prometheus -- --port 9898 --events 500 --serve-secs 120
//! curl -s http://127.0.0.1:9898/metrics | grep composite_metrics
//! ```
//!
//! The `composite_metrics_tools_tool_frequency{tool}` gauges add up to 100 %
//! (the sink refreshes them together; see `MetricsSink`). Across processes,
//! and for success rates, divide the per-tool counters in PromQL:
//!
//! ```text
//! # share of the named tool runs, %
//! 100 * sum by (tool) (rate(composite_metrics_tool_runs_total[5m]))
//!   / ignoring (tool) group_left sum(rate(composite_metrics_tool_runs_total[5m]))
//! # success rate over explicit outcomes, %
//! 100 * sum by (tool) (rate(composite_metrics_tool_successes_total[5m]))
//!   / (sum by (tool) (rate(composite_metrics_tool_successes_total[5m]))
//!      + sum by (tool) (rate(composite_metrics_tool_failures_total[5m])))
//! ```

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::sim::EventMix;
use composite_metrics::sink::MetricsSink;
use composite_metrics::{Clock, HybridLock, MemoryState, Metric, MetricsCalculator, Stats};
use metrics_exporter_prometheus::PrometheusBuilder;

const HELP: &str = "\
prometheus: export composite-metrics through metrics-exporter-prometheus

USAGE:
    cargo run --features metrics --example prometheus -- [OPTIONS]

OPTIONS:
    --port N          port on 127.0.0.1 to serve /metrics on [a free one]
    --events N        events to replay [400]
    --serve-secs S    how long to keep serving after the replay [60]
    -h, --help        this text
";

/// The example's options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Port to listen on; `None` picks a free one.
    pub port: Option<u16>,
    /// Events to replay.
    pub events: usize,
    /// How long to keep serving after the replay.
    pub serve: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: None,
            events: 400,
            serve: Duration::from_secs(60),
        }
    }
}

/// What the replay produced, for checking a scrape against.
#[derive(Debug)]
pub struct Replay {
    /// Where `/metrics` is served.
    pub addr: SocketAddr,
    /// Every metric the calculators returned, in order.
    pub metrics: Vec<Metric>,
    /// Each worker's stats.
    pub stats: Vec<Stats>,
}

/// Parses the command line (without the program name); `None` for `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value()?;
                o.port = Some(
                    v.parse()
                        .map_err(|_| format!("--port: `{v}` is not a port"))?,
                );
            }
            "--events" => {
                let v = value()?;
                o.events = v
                    .parse()
                    .map_err(|_| format!("--events: `{v}` is not a count"))?;
            }
            "--serve-secs" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--serve-secs: `{v}` is not a number"))?;
                o.serve = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--serve-secs: `{v}` must be a non-negative number"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(o))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Installs the Prometheus exporter as the global recorder (listening on
/// 127.0.0.1), describes the crate's series, and replays `events` events of
/// the simulator's mix through two `HybridLock` workers sharing one
/// `MemoryState`, on a manual clock advanced 250 ms per event. Then drops
/// the workers (which adds their last per-tool run counts to the counters)
/// and refreshes the share gauges with every run. Returns where `/metrics` is
/// served and what the replay produced; the listener keeps serving on its
/// own thread.
pub fn install_and_replay(options: &Options) -> Result<Replay, Box<dyn Error>> {
    let port = match options.port {
        Some(p) => p,
        None => free_port()?,
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    composite_metrics::telemetry::describe();

    let clock = ManualClock::new(Duration::from_secs(1_704_067_200));
    let state = MemoryState::with_clock(clock.clone());
    // One sink for both workers: it holds the series handles.
    let sink = Arc::new(MetricsSink::new());
    let mut workers = (0..2)
        .map(|_| {
            MetricsCalculator::builder()
                .clock(clock.clone())
                .state(state.clone())
                .sink(Arc::clone(&sink))
                .scheduler(HybridLock::default())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut mix = EventMix::new(workers.len(), 4, 7);
    let mut metrics = Vec::new();
    for i in 0..options.events {
        let w = i % workers.len();
        let event = mix.next_event(w, clock.now());
        workers[w].process_into(&event, &mut metrics)?;
        clock.advance(Duration::from_millis(250));
    }
    let stats = workers.iter().map(MetricsCalculator::stats).collect();
    drop(workers);
    sink.refresh_shares();
    Ok(Replay {
        addr,
        metrics,
        stats,
    })
}

#[allow(dead_code)] // the scrape test includes this file and runs `install_and_replay` only
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("prometheus: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match install_and_replay(&options) {
        Ok(replay) => {
            let composites: u64 = replay.stats.iter().map(|s| s.composites).sum();
            println!(
                "replayed {} events ({} metrics, {composites} composites)",
                options.events,
                replay.metrics.len()
            );
            println!("serving http://{}/metrics", replay.addr);
            println!("for {} s", options.serve.as_secs_f64());
            std::thread::sleep(options.serve);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prometheus: {e}");
            ExitCode::FAILURE
        }
    }
}
