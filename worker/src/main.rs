//! `composite-metrics`: run the composite-metrics calculator against a real
//! pipeline without writing Rust.
//!
//! ```text
//! composite-metrics replay [FILE|-] [--format table|json]
//! composite-metrics run --config FILE [flags]
//! composite-metrics check-config --config FILE [--print-config]
//! ```
//!
//! Exit codes: 0 clean stop, 1 runtime failure (after the retries), 2 bad
//! configuration or usage, 130 a second signal during the drain.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

mod config;
mod replay;
mod run;
mod sinks;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use composite_metrics::config::StrategyConfig;

use crate::config::{LogFormat, Origin, Override};

/// Exit code of a bad configuration or usage.
const EXIT_CONFIG: u8 = 2;
/// Exit code of a runtime failure.
const EXIT_RUNTIME: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "composite-metrics",
    version,
    about = "Derive telemetry metrics from AI-coding-assistant events: replay a capture, or run as a stream worker."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a JSONL capture on event time (memory backend) and print the metrics.
    Replay {
        /// The capture; `-` for stdin.
        #[arg(default_value = "-")]
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: replay::Format,
        /// The composite's strategy during the replay (the final score is computed at the end anyway).
        #[arg(long, default_value = "never")]
        strategy: String,
        /// How far behind the newest event time an event may be.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        allowed_lateness: Duration,
    },
    /// Run the worker: source → calculator → sinks, with /metrics, /healthz, /readyz.
    Run(ConfigArgs),
    /// Check a configuration (nothing is connected) and exit 0 if it is usable, 2 if not.
    CheckConfig(ConfigArgs),
}

/// The configuration file and the flags for the main options (each overrides
/// the environment, which overrides the file).
#[derive(Debug, Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = config::ENV_CONFIG)]
    config: Option<PathBuf>,
    /// Print the effective configuration (passwords in URLs redacted) and exit.
    #[arg(long)]
    print_config: bool,
    /// `redis.url`: the Redis state and sink (and the stream, unless `source.url`).
    #[arg(long)]
    redis_url: Option<String>,
    /// `redis.namespace`.
    #[arg(long)]
    namespace: Option<String>,
    /// `scheduler.strategy`.
    #[arg(long)]
    strategy: Option<String>,
    /// `source.kind`: `redis-stream` or `jsonl`.
    #[arg(long)]
    source: Option<String>,
    /// `source.path` (JSONL source): a file, or `-` for stdin.
    #[arg(long)]
    input: Option<String>,
    /// `source.stream`.
    #[arg(long)]
    stream: Option<String>,
    /// `source.group`.
    #[arg(long)]
    group: Option<String>,
    /// `source.consumer`.
    #[arg(long)]
    consumer: Option<String>,
    /// `http.listen`.
    #[arg(long)]
    listen: Option<String>,
    /// `worker.log_format`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// `worker.shutdown_timeout`, e.g. `25s`.
    #[arg(long)]
    shutdown_timeout: Option<String>,
}

impl ConfigArgs {
    fn flag_overrides(&self) -> Vec<Override> {
        let log_format = self.log_format.map(|f| match f {
            LogFormat::Text => "text".to_owned(),
            LogFormat::Json => "json".to_owned(),
        });
        [
            ("--redis-url", "redis.url", &self.redis_url),
            ("--namespace", "redis.namespace", &self.namespace),
            ("--strategy", "scheduler.strategy", &self.strategy),
            ("--source", "source.kind", &self.source),
            ("--input", "source.path", &self.input),
            ("--stream", "source.stream", &self.stream),
            ("--group", "source.group", &self.group),
            ("--consumer", "source.consumer", &self.consumer),
            ("--listen", "http.listen", &self.listen),
            ("--log-format", "worker.log_format", &log_format),
            (
                "--shutdown-timeout",
                "worker.shutdown_timeout",
                &self.shutdown_timeout,
            ),
        ]
        .into_iter()
        .filter_map(|(flag, key, value)| {
            value.as_ref().map(|v| Override {
                key: key.to_owned(),
                value: v.clone(),
                origin: Origin::Flag(flag),
            })
        })
        .collect()
    }

    /// Defaults < file < environment < flags.
    fn load(&self) -> Result<config::Loaded, config::LoadError> {
        let mut overrides = config::env_overrides(std::env::vars())?;
        overrides.extend(self.flag_overrides());
        config::load(self.config.as_deref(), &overrides)
    }
}

fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = result {
        eprintln!("composite-metrics: logs not initialised: {e}");
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Replay {
            file,
            format,
            strategy,
            allowed_lateness,
        } => replay_command(&file, format, &strategy, allowed_lateness),
        Command::CheckConfig(args) => match args.load() {
            Ok(loaded) => {
                if args.print_config {
                    print!("{}", loaded.config.to_redacted_toml());
                } else {
                    println!(
                        "config ok: strategy {}, backend {}, source {:?}",
                        loaded.config.scheduler.name(),
                        if loaded.config.redis.is_some() {
                            "redis"
                        } else {
                            "memory"
                        },
                        loaded.config.source.kind
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("composite-metrics: bad config: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run(args) => {
            let loaded = match args.load() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("composite-metrics: bad config: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            if args.print_config {
                print!("{}", loaded.config.to_redacted_toml());
                return ExitCode::SUCCESS;
            }
            // Before any thread starts, so that every thread but the signal
            // thread inherits the mask.
            if let Err(e) = run::block_stop_signals() {
                eprintln!("composite-metrics: cannot block SIGTERM/SIGINT: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
            init_logs(loaded.config.worker.log_format);
            let handle = match run::install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            match run::run(&loaded.config, handle) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("composite-metrics: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
    }
}

fn replay_command(
    file: &str,
    format: replay::Format,
    strategy: &str,
    allowed_lateness: Duration,
) -> ExitCode {
    let strategy: StrategyConfig = match strategy.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("composite-metrics: --strategy: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let input: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("composite-metrics: cannot read {file}: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    };
    let report = match replay::replay(input, &strategy, allowed_lateness) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("composite-metrics: replay failed: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match replay::print(&report, format, std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("composite-metrics: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
