//! The main job: a measured, side-by-side comparison of the composite
//! scheduling strategies, printed as the design note's comparison table plus a
//! fuller per-profile table, and written to `target/compare/` as
//! `results.csv`, `results.json` and `chart.svg`.
//!
//! ```sh
//! cargo run --release --example compare
//! cargo run --release --example compare -- --workers 8 --rates 10,1000 --duration 120
//! cargo run --release --example compare -- --help
//! ```
//!
//! By default it runs on virtual time over the in-memory backend (seconds of
//! real time for hours of simulated load). `--time-scale F` runs the same
//! scenarios in real time with every duration multiplied by F, on the memory
//! backend or, with `--redis URL` (feature `redis`), against a real Redis.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use composite_metrics::sim::{
    LoadProfile, MemoryBackends, RealTimeRunner, RunReport, SimConfig, SimError, Simulator,
    Strategy,
};
use composite_metrics::{BackgroundConfig, CoalesceConfig, HybridLockConfig};

const HELP: &str = "\
compare: measure the composite scheduling strategies side by side

USAGE:
    cargo run --release --example compare -- [OPTIONS]

LOAD:
    --workers N           workers, each its own calculator and scheduler [3]
    --rates LIST          steady Poisson rates, events/s over all workers;
                          `1/min` and `10/s` forms accepted [1/min,10,1000,10000]
    --duration SECS       simulated seconds per profile [600]
    --min-events N        a steady profile lasts at least N / rate, so slow
                          rates still see enough events [240]
    --no-bursty           skip the bursty profile
    --bursty SPEC         the bursty profile as BURST_SECS@RATE/GAP_SECS
                          (15 s at 2000/s, then 105 s quiet, repeated) [15@2000/105]
    --profile NAME=SPEC   add a profile of phases DURATION@RATE,... e.g.
                          ramp=60s@10,60s@1000,2m@0 (repeatable)
    --seed N              seed of arrivals and event contents [42]
    --calc-ms MS          simulated duration of one composite calculation,
                          for counting overlapping calculations [5]

STRATEGIES:
    --strategies LIST     which to run, from never,time-based,event-based,
                          hybrid-lock,background,coalesce [all six]
    --period S            TimeBased period, whole seconds [10]
    --every N             EventBased: every N events per worker [100]
    --max-staleness S     HybridLock and Coalesce freshness bound [30]
    --min-interval S      HybridLock and Coalesce rate ceiling across workers [30]
    --every-events N      HybridLock and Coalesce activity trigger per worker [100]
    --lease S             HybridLock, Background and Coalesce lock lease [5]
    --tick S              Coalesce timer tick [1]
    --interval S          Background interval [30]
    --no-coordination     Background without cluster coordination
    --strategy-file FILE  run the strategies of a TOML file of [[strategies]]
                          tables instead (see the README's Configuration)

REAL TIME:
    --time-scale F        run in real time on the system clock, every duration
                          multiplied by F (e.g. 0.01: 30 s becomes 300 ms);
                          memory backend unless --redis is given
    --redis URL           run against a real Redis (needs the `redis` feature;
                          implies real time, --time-scale defaults to 0.01)

OUTPUT:
    --out DIR             where results.csv/json and chart.svg go [target/compare]
    -h, --help            this text
";

#[derive(Debug, Clone)]
struct Options {
    workers: usize,
    rates: Vec<f64>,
    duration: f64,
    min_events: f64,
    bursty: Option<(f64, f64, f64)>,
    profiles: Vec<LoadProfile>,
    seed: u64,
    calc_ms: f64,
    strategies: Vec<String>,
    from_file: Option<Vec<Strategy>>,
    period: u64,
    every: u64,
    hybrid: HybridLockConfig,
    interval: f64,
    tick: f64,
    lease: f64,
    coordinated: bool,
    time_scale: Option<f64>,
    redis: Option<String>,
    out: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 3,
            rates: vec![1.0 / 60.0, 10.0, 1_000.0, 10_000.0],
            duration: 600.0,
            min_events: 240.0,
            bursty: Some((15.0, 2_000.0, 105.0)),
            profiles: Vec::new(),
            seed: 42,
            calc_ms: 5.0,
            strategies: Strategy::defaults()
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
            from_file: None,
            period: 10,
            every: 100,
            hybrid: HybridLockConfig::default(),
            interval: 30.0,
            tick: 1.0,
            lease: 5.0,
            coordinated: true,
            time_scale: None,
            redis: None,
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compare"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("compare: {e}\n\nRun with --help for the options.");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- arguments

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--workers" => o.workers = number(&value(flag)?, flag)?,
            "--rates" => {
                o.rates = value(flag)?
                    .split(',')
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| parse_rate(r).map_err(|e| format!("--rates: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--duration" => o.duration = seconds(&value(flag)?, flag)?,
            "--min-events" => o.min_events = number(&value(flag)?, flag)?,
            "--no-bursty" => o.bursty = None,
            "--bursty" => o.bursty = Some(parse_bursty(&value(flag)?)?),
            "--profile" => {
                let spec = value(flag)?;
                let (name, phases) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--profile wants NAME=SPEC, got `{spec}`"))?;
                let profile = LoadProfile::parse(name, phases).map_err(|e| e.to_string())?;
                o.profiles.push(profile);
            }
            "--seed" => o.seed = number(&value(flag)?, flag)?,
            "--calc-ms" => o.calc_ms = number(&value(flag)?, flag)?,
            "--strategies" => {
                let known: Vec<&str> = Strategy::defaults().iter().map(|s| s.name()).collect();
                o.strategies = Vec::new();
                for name in value(flag)?.split(',').map(str::trim) {
                    if !known.contains(&name) {
                        return Err(format!("unknown strategy `{name}`; known: {known:?}"));
                    }
                    o.strategies.push(name.to_owned());
                }
            }
            "--strategy-file" => o.from_file = Some(strategy_file(&value(flag)?)?),
            "--period" => o.period = number(&value(flag)?, flag)?,
            "--every" => o.every = number(&value(flag)?, flag)?,
            "--max-staleness" => {
                o.hybrid = o
                    .hybrid
                    .with_max_staleness(secs(seconds(&value(flag)?, flag)?))
            }
            "--min-interval" => {
                o.hybrid = o
                    .hybrid
                    .with_min_interval(secs(seconds(&value(flag)?, flag)?))
            }
            "--every-events" => o.hybrid = o.hybrid.with_every_events(number(&value(flag)?, flag)?),
            "--lease" => o.lease = seconds(&value(flag)?, flag)?,
            "--interval" => o.interval = seconds(&value(flag)?, flag)?,
            "--tick" => o.tick = seconds(&value(flag)?, flag)?,
            "--no-coordination" => o.coordinated = false,
            "--time-scale" => {
                let f: f64 = number(&value(flag)?, flag)?;
                if !(f.is_finite() && f > 0.0) {
                    return Err("--time-scale must be above zero".into());
                }
                o.time_scale = Some(f);
            }
            "--redis" => o.redis = Some(value(flag)?),
            "--out" => o.out = PathBuf::from(value(flag)?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    o.hybrid = o.hybrid.with_lease(secs(o.lease));
    if o.redis.is_some() && o.time_scale.is_none() {
        o.time_scale = Some(0.01);
    }
    if o.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    Ok(Some(o))
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{flag}: `{text}` is not a valid number"))
}

fn seconds(text: &str, flag: &str) -> Result<f64, String> {
    let s: f64 = number(text, flag)?;
    if s.is_finite() && s > 0.0 {
        Ok(s)
    } else {
        Err(format!(
            "{flag}: `{text}` must be a positive number of seconds"
        ))
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    // Reuse the library's parser through a one-phase profile.
    let profile = LoadProfile::parse("rate", &format!("1s@{text}")).map_err(|e| e.to_string())?;
    Ok(profile.phases()[0].rate)
}

fn parse_bursty(text: &str) -> Result<(f64, f64, f64), String> {
    let bad = || format!("--bursty wants BURST_SECS@RATE/GAP_SECS, got `{text}`");
    let (burst, rest) = text.split_once('@').ok_or_else(bad)?;
    let (rate, gap) = rest.split_once('/').ok_or_else(bad)?;
    let burst = seconds(burst, "--bursty")?;
    let rate: f64 = number(rate, "--bursty")?;
    let gap = seconds(gap, "--bursty")?;
    Ok((burst, rate, gap))
}

// ---------------------------------------------------------------- running

/// One profile and every strategy's report on it.
struct ProfileRuns {
    profile: LoadProfile,
    steady_rate: Option<f64>,
    reports: Vec<RunReport>,
}

/// Runs every strategy on one profile.
type RunFn<'a> = Box<dyn Fn(&[Strategy], &LoadProfile) -> Result<Vec<RunReport>, SimError> + 'a>;

/// Runs the strategies one after the other with a one-strategy runner.
fn one_by_one<'a>(
    run: impl Fn(&Strategy, &LoadProfile) -> Result<RunReport, SimError> + 'a,
) -> RunFn<'a> {
    Box::new(move |strategies, profile| strategies.iter().map(|s| run(s, profile)).collect())
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let total = Instant::now();
    let config = SimConfig::default()
        .with_workers(o.workers)
        .with_seed(o.seed)
        .with_calc_duration(Duration::from_secs_f64(o.calc_ms.max(0.0) / 1_000.0));
    let strategies = strategies(o)?;
    let (runner, mode): (RunFn<'_>, String) = match (o.time_scale, &o.redis) {
        (None, _) => {
            let sim = Simulator::new(config)?;
            // Warm caches and the allocator so the first measured run is not
            // penalised in the event-path cost comparison.
            sim.run(
                &Strategy::Never,
                &LoadProfile::poisson(10_000.0, Duration::from_secs(10)),
            )?;
            (
                Box::new(move |s, p| sim.run_all(s, p)),
                "memory backend, virtual time (ManualClock), strategies in lockstep".to_owned(),
            )
        }
        (Some(scale), None) => {
            let runner = RealTimeRunner::new(config, scale, MemoryBackends)?;
            (
                one_by_one(move |s, p| runner.run(s, p)),
                format!("memory backend, real time (SystemClock), time scale {scale}"),
            )
        }
        (Some(scale), Some(url)) => redis_runner(config, scale, url)?,
    };

    let mut profiles: Vec<(LoadProfile, Option<f64>)> = o
        .rates
        .iter()
        .map(|&rate| {
            let secs = o
                .duration
                .max(if rate > 0.0 { o.min_events / rate } else { 0.0 });
            (
                LoadProfile::poisson(rate, Duration::from_secs_f64(secs)),
                Some(rate),
            )
        })
        .collect();
    if let Some((burst, rate, gap)) = o.bursty {
        profiles.push((
            LoadProfile::bursty(rate, secs(burst), secs(gap), secs(o.duration)),
            None,
        ));
    }
    profiles.extend(o.profiles.iter().map(|p| (p.clone(), None)));

    println!("composite-metrics compare: {mode}");
    println!(
        "workers {}, seed {}, simulated calculation {} ms, machine: {}",
        o.workers,
        o.seed,
        o.calc_ms,
        machine()
    );
    for s in &strategies {
        println!("  strategy {s}");
    }
    println!();

    let mut all = Vec::new();
    for (profile, steady_rate) in profiles {
        let reports = runner(&strategies, &profile)?;
        for report in &reports {
            eprintln!(
                "  ran {:<12} on {:<28} {:>9} events, {:>8} calcs, {:>7.2}s wall",
                report.strategy_name,
                report.profile,
                report.events,
                report.calcs,
                report.wall_time.as_secs_f64()
            );
            if let Some(scale) = o.time_scale {
                // Real time: the run should take its duration times the scale.
                let planned = report.duration.mul_f64(scale);
                if report.wall_time > planned.mul_f64(1.25) + std::time::Duration::from_secs(1) {
                    eprintln!(
                        "  warning: took {:.1}s for a {:.1}s schedule: the backend could not keep up \
                         with this load at --time-scale {scale}, so its rates and lags are distorted; \
                         use a larger --time-scale or lower --rates",
                        report.wall_time.as_secs_f64(),
                        planned.as_secs_f64()
                    );
                }
            }
        }
        all.push(ProfileRuns {
            profile,
            steady_rate,
            reports,
        });
    }
    eprintln!();

    print!("{}", note_table(&all, o));
    println!();
    print!("{}", full_table(&all));

    std::fs::create_dir_all(&o.out)?;
    let csv = o.out.join("results.csv");
    let json = o.out.join("results.json");
    let svg = o.out.join("chart.svg");
    std::fs::write(&csv, to_csv(&all))?;
    std::fs::write(&json, to_json(&all, o, &mode)?)?;
    std::fs::write(&svg, to_svg(&all, o))?;
    println!();
    println!("wrote {}", csv.display());
    println!("wrote {}", json.display());
    println!("wrote {}", svg.display());
    println!("total wall time {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}

/// The `[[strategies]]` of a TOML file, validated.
fn strategy_file(path: &str) -> Result<Vec<Strategy>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let list: composite_metrics::config::StrategyList =
        toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    list.sim_strategies().map_err(|e| format!("{path}: {e}"))
}

fn strategies(o: &Options) -> Result<Vec<Strategy>, SimError> {
    if let Some(list) = &o.from_file {
        return Ok(list.clone());
    }
    let hybrid = o.hybrid;
    hybrid.validate()?;
    let background = BackgroundConfig::default()
        .with_interval(secs(o.interval))
        .with_lease(secs(o.lease))
        .with_coordination(o.coordinated);
    background.validate()?;
    let coalesce = CoalesceConfig::default()
        .with_max_staleness(hybrid.max_staleness())
        .with_min_interval(hybrid.min_interval())
        .with_every_events(hybrid.every_events())
        .with_lease(hybrid.lease())
        .with_tick(secs(o.tick));
    coalesce.validate()?;
    let all = [
        Strategy::Never,
        Strategy::TimeBased {
            period: Duration::from_secs(o.period),
        },
        Strategy::EventBased { every: o.every },
        Strategy::HybridLock(hybrid),
        Strategy::Background(background),
        Strategy::Coalesce(coalesce),
    ];
    Ok(all
        .into_iter()
        .filter(|s| o.strategies.iter().any(|n| n == s.name()))
        .collect())
}

#[cfg(not(feature = "redis"))]
fn redis_runner(
    _config: SimConfig,
    _scale: f64,
    _url: &str,
) -> Result<(RunFn<'static>, String), Box<dyn std::error::Error>> {
    Err(
        "--redis: this binary was built without the `redis` feature; \
         run `cargo run --release --features redis --example compare -- --redis URL`"
            .into(),
    )
}

#[cfg(feature = "redis")]
fn redis_runner(
    config: SimConfig,
    scale: f64,
    url: &str,
) -> Result<(RunFn<'static>, String), Box<dyn std::error::Error>> {
    let factory = redis_backends::RedisBackends::new(url);
    let runner = RealTimeRunner::new(config, scale, factory)?;
    Ok((
        one_by_one(move |s, p| runner.run(s, p)),
        format!("Redis at {url}, real time (SystemClock), time scale {scale}"),
    ))
}

#[cfg(feature = "redis")]
mod redis_backends {
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    use composite_metrics::sim::{BackendFactory, SimError};
    use composite_metrics::state::{RedisConfig, RedisState, StateBackend};

    /// One connection per worker, all in a fresh namespace per run.
    #[derive(Debug)]
    pub(crate) struct RedisBackends {
        url: String,
    }

    impl RedisBackends {
        pub(crate) fn new(url: &str) -> Self {
            Self {
                url: url.to_owned(),
            }
        }
    }

    impl BackendFactory for RedisBackends {
        fn name(&self) -> &'static str {
            "redis"
        }

        fn open(&self, run: &str, workers: usize) -> Result<Vec<Arc<dyn StateBackend>>, SimError> {
            let stamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let namespace = format!("compare:{run}:{stamp}");
            (0..workers)
                .map(|_| {
                    let config = RedisConfig::default().with_namespace(&namespace);
                    let state = RedisState::connect(&self.url, config)?;
                    Ok(Arc::new(state) as Arc<dyn StateBackend>)
                })
                .collect()
        }
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {model}, {}", std::env::consts::OS)
}

// ---------------------------------------------------------------- formatting

fn fmt_rate(per_sec: f64) -> String {
    if per_sec == 0.0 {
        "0".to_owned()
    } else if per_sec >= 0.95 {
        format!("{}/s", sig(per_sec))
    } else if per_sec * 60.0 >= 0.95 {
        format!("{}/min", sig(per_sec * 60.0))
    } else {
        format!("{}/h", sig(per_sec * 3_600.0))
    }
}

/// Three significant digits, no exponent.
fn sig(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", sig(s * 1_000.0))
    } else if s < 600.0 {
        format!("{} s", sig(s))
    } else if s < 36_000.0 {
        format!("{} min", sig(s / 60.0))
    } else {
        format!("{} h", sig(s / 3_600.0))
    }
}

fn fmt_opt_dur(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), fmt_dur)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(
        || "-".to_owned(),
        |r| format!("{:+.1} %", (r - 1.0) * 100.0),
    )
}

/// The worst staleness, marked `≥` when only a lower bound is known, or
/// `never` when nothing was ever reflected.
fn fmt_worst(r: &RunReport) -> String {
    match (r.lag.worst(), r.lag.reflected) {
        (None, _) => "-".to_owned(),
        (Some(w), 0) => format!("never (≥ {})", fmt_dur(w)),
        (Some(w), _) if r.lag.worst_is_lower_bound() => format!("≥ {}", fmt_dur(w)),
        (Some(w), _) => fmt_dur(w),
    }
}

fn baseline(runs: &ProfileRuns) -> Option<&RunReport> {
    runs.reports.iter().find(|r| r.strategy_name == "never")
}

/// `process` cost against `never` on the same profile.
fn cpu_ratio(runs: &ProfileRuns, r: &RunReport) -> Option<f64> {
    baseline(runs).and_then(|b| r.cpu_ratio(b))
}

fn note_table(all: &[ProfileRuns], o: &Options) -> String {
    let steady: Vec<&ProfileRuns> = all.iter().filter(|p| p.steady_rate.is_some()).collect();
    let rate_of = |p: &ProfileRuns| p.steady_rate.unwrap_or(0.0);
    // "High load" is 1000/s as in the note when it was run, else the highest rate.
    let high = steady
        .iter()
        .find(|p| rate_of(p) == 1_000.0)
        .or_else(|| {
            steady
                .iter()
                .max_by(|a, b| rate_of(a).total_cmp(&rate_of(b)))
        })
        .copied();
    let highest = steady
        .iter()
        .max_by(|a, b| rate_of(a).total_cmp(&rate_of(b)))
        .copied()
        .filter(|p| high.is_some_and(|h| rate_of(h) != rate_of(p)));
    let low = steady
        .iter()
        .min_by(|a, b| rate_of(a).total_cmp(&rate_of(b)))
        .copied();
    let bursty = all.iter().find(|p| p.steady_rate.is_none());
    let names: Vec<&'static str> = all
        .first()
        .map(|p| p.reports.iter().map(|r| r.strategy_name).collect())
        .unwrap_or_default();
    let note = |row: &str, name: &str| -> &'static str {
        match (row, name) {
            ("calc-high", "time-based") => "10-30/s",
            ("calc-high", "event-based") => "10/s",
            ("calc-high", "hybrid-lock" | "background") => "1/30s",
            ("calc-low", "time-based") => "0-1/min",
            ("calc-low", "event-based") => "<1/h",
            ("calc-low", "hybrid-lock" | "background") => "1/30s",
            ("reads", "time-based") => "90-270/s",
            ("reads", "event-based") => "30/s",
            ("reads", "hybrid-lock" | "background") => "0.1/s",
            ("coord", "time-based") => "none, races",
            ("coord", "event-based") => "none",
            ("coord", "hybrid-lock") => "Redis lock",
            ("coord", "background") => "none",
            ("cpu", "time-based") => "15-20 %",
            ("cpu", "event-based") => "5-8 %",
            ("cpu", "hybrid-lock") => "<1 %",
            ("cpu", "background") => "0 %",
            ("fresh", "time-based" | "event-based") => "no",
            ("fresh", "hybrid-lock" | "background") => "≤30 s",
            _ => "",
        }
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "## The design note's comparison, measured ({} workers; note's estimate in brackets)\n",
        o.workers
    );
    let _ = write!(t, "| Metric |");
    for n in &names {
        let _ = write!(t, " {n} |");
    }
    let _ = write!(t, "\n|---|");
    for _ in &names {
        let _ = write!(t, "---|");
    }
    t.push('\n');
    let mut row = |label: String,
                   key: &str,
                   runs: Option<&ProfileRuns>,
                   cell: &dyn Fn(&ProfileRuns, &RunReport) -> String| {
        let Some(runs) = runs else { return };
        let _ = write!(t, "| {label} |");
        for r in &runs.reports {
            let estimate = note(key, r.strategy_name);
            let value = cell(runs, r);
            if estimate.is_empty() {
                let _ = write!(t, " {value} |");
            } else {
                let _ = write!(t, " {value} [{estimate}] |");
            }
        }
        t.push('\n');
    };
    let name = |p: Option<&ProfileRuns>| p.map(|p| p.profile.name().to_owned()).unwrap_or_default();
    row(
        format!("Calc frequency, high load ({})", name(high)),
        "calc-high",
        high,
        &|_, r| fmt_rate(r.calcs_per_sec()),
    );
    row(
        format!("Calc frequency, highest load ({})", name(highest)),
        "",
        highest,
        &|_, r| fmt_rate(r.calcs_per_sec()),
    );
    row(
        format!("Calc frequency, low load ({})", name(low)),
        "calc-low",
        low,
        &|_, r| fmt_rate(r.calcs_per_sec()),
    );
    row(
        format!("Composite reads/s, high load ({})", name(high)),
        "reads",
        high,
        &|_, r| fmt_rate(r.composite_reads_per_sec()),
    );
    row(
        format!(
            "All composite backend ops/s (reads, lock, marker), high load ({})",
            name(high)
        ),
        "",
        high,
        &|_, r| fmt_rate(r.composite_ops_per_sec()),
    );
    row(
        format!(
            "Worker coordination: overlapping calcs, high load ({})",
            name(high)
        ),
        "coord",
        high,
        &|_, r| {
            if r.calcs == 0 {
                "no calcs".to_owned()
            } else {
                format!("{} of {}", r.overlapping_calcs, r.calcs)
            }
        },
    );
    row(
        format!("Event-path cost vs never, high load ({})", name(high)),
        "cpu",
        high,
        &|runs, r| fmt_ratio(cpu_ratio(runs, r)),
    );
    row(
        format!("Event-path cost vs never ({})", name(highest)),
        "",
        highest,
        &|runs, r| fmt_ratio(cpu_ratio(runs, r)),
    );
    for p in &steady {
        row(
            format!("Freshness: max reflect lag ({})", p.profile.name()),
            if high.is_some_and(|h| std::ptr::eq(h, *p)) {
                "fresh"
            } else {
                ""
            },
            Some(p),
            &|_, r| fmt_worst(r),
        );
    }
    row(
        format!("Freshness: max reflect lag ({})", name(bursty)),
        "",
        bursty,
        &|_, r| fmt_worst(r),
    );
    row(
        format!("Idle calcs (no new event), low load ({})", name(low)),
        "",
        low,
        &|_, r| format!("{} of {}", r.idle_calcs, r.calcs),
    );
    t.push_str(
        "\nHigh load = 1000 events/s over all workers, as in the note. Backend ops are counted by \
         the backend. Event-path cost: mean real time of `process` against `never` on the same \
         events, strategies run in lockstep, calls over 1 ms (preemption) left out; still \
         noisy on a shared machine, `cargo bench` gives a precise ratio. Max reflect \
         lag marked ≥ is a lower bound: some events were still unreflected when the run ended.\n",
    );
    t
}

fn full_table(all: &[ProfileRuns]) -> String {
    let mut t = String::new();
    t.push_str("## Every profile and strategy\n\n");
    t.push_str(
        "| profile | strategy | events | calcs/s | on event path | idle | overlapping | \
         reads/s | composite ops/s | lag p50 | lag p99 | lag max | unreflected | \
         process ns/event | vs never |\n",
    );
    t.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for runs in all {
        for r in &runs.reports {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.profile,
                r.strategy_name,
                r.events,
                fmt_rate(r.calcs_per_sec()),
                r.event_path_calcs,
                r.idle_calcs,
                r.overlapping_calcs,
                fmt_rate(r.composite_reads_per_sec()),
                fmt_rate(r.composite_ops_per_sec()),
                fmt_opt_dur(r.lag.p50),
                fmt_opt_dur(r.lag.p99),
                fmt_worst(r),
                r.lag.unreflected,
                r.process_ns_per_event()
                    .map_or_else(|| "-".to_owned(), |n| format!("{n:.0}")),
                fmt_ratio(cpu_ratio(runs, r)),
            );
        }
    }
    t
}

// ---------------------------------------------------------------- files

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(String::new, |d| format!("{:.6}", d.as_secs_f64()))
}

fn to_csv(all: &[ProfileRuns]) -> String {
    let mut t = String::from(
        "profile,offered_rate,strategy,strategy_params,mode,workers,seed,duration_s,events,\
         event_errors,calcs,calcs_per_s,event_path_calcs,background_calcs,idle_calcs,\
         overlapping_calcs,min_gap_s,composite_reads,lock_attempts,locks_acquired,unlocks,\
         marker_reads,composite_ops,composite_ops_per_s,lag_p50_s,lag_p99_s,lag_max_s,reflected,\
         unreflected,oldest_unreflected_s,process_ns_per_event,process_outliers,cpu_ratio_vs_never,wall_s\n",
    );
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for runs in all {
        for r in &runs.reports {
            let _ = writeln!(
                t,
                "{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{},{},{},{},{},{},{},{:.3}",
                quote(&r.profile),
                r.offered_rate,
                r.strategy_name,
                quote(&r.strategy),
                r.mode,
                r.workers,
                r.seed,
                r.duration.as_secs_f64(),
                r.events,
                r.event_errors,
                r.calcs,
                r.calcs_per_sec(),
                r.event_path_calcs,
                r.background_calcs,
                r.idle_calcs,
                r.overlapping_calcs,
                opt_secs(r.min_gap),
                r.ops.composite_reads,
                r.ops.lock_attempts,
                r.ops.locks_acquired,
                r.ops.unlocks,
                r.ops.marker_reads,
                r.ops.composite_ops(),
                r.composite_ops_per_sec(),
                opt_secs(r.lag.p50),
                opt_secs(r.lag.p99),
                opt_secs(r.lag.max),
                r.lag.reflected,
                r.lag.unreflected,
                opt_secs(r.lag.oldest_unreflected),
                r.process_ns_per_event()
                    .map_or_else(String::new, |n| format!("{n:.1}")),
                r.process_outliers,
                cpu_ratio(runs, r).map_or_else(String::new, |x| format!("{x:.4}")),
                r.wall_time.as_secs_f64(),
            );
        }
    }
    t
}

fn to_json(all: &[ProfileRuns], o: &Options, mode: &str) -> serde_json::Result<String> {
    use serde_json::json;
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let runs: Vec<_> = all
        .iter()
        .flat_map(|runs| {
            runs.reports.iter().map(move |r| {
                json!({
                    "profile": r.profile,
                    "offered_rate": r.offered_rate,
                    "strategy": r.strategy_name,
                    "strategy_params": r.strategy,
                    "mode": r.mode,
                    "workers": r.workers,
                    "seed": r.seed,
                    "duration_s": r.duration.as_secs_f64(),
                    "events": r.events,
                    "event_errors": r.event_errors,
                    "calcs": r.calcs,
                    "calcs_per_s": r.calcs_per_sec(),
                    "event_path_calcs": r.event_path_calcs,
                    "background_calcs": r.background_calcs,
                    "idle_calcs": r.idle_calcs,
                    "overlapping_calcs": r.overlapping_calcs,
                    "min_gap_s": secs(r.min_gap),
                    "ops": {
                        "records": r.ops.records,
                        "record_round_trips": r.ops.record_round_trips,
                        "composite_reads": r.ops.composite_reads,
                        "lock_attempts": r.ops.lock_attempts,
                        "locks_acquired": r.ops.locks_acquired,
                        "unlocks": r.ops.unlocks,
                        "marker_reads": r.ops.marker_reads,
                        "composite_ops": r.ops.composite_ops(),
                    },
                    "composite_ops_per_s": r.composite_ops_per_sec(),
                    "composite_reads_per_s": r.composite_reads_per_sec(),
                    "lag": {
                        "p50_s": secs(r.lag.p50),
                        "p99_s": secs(r.lag.p99),
                        "max_s": secs(r.lag.max),
                        "reflected": r.lag.reflected,
                        "unreflected": r.lag.unreflected,
                        "oldest_unreflected_s": secs(r.lag.oldest_unreflected),
                    },
                    "process_ns_per_event": r.process_ns_per_event(),
                    "process_outliers": r.process_outliers,
                    "cpu_ratio_vs_never": cpu_ratio(runs, r),
                    "wall_s": r.wall_time.as_secs_f64(),
                })
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "mode": mode,
        "machine": machine(),
        "workers": o.workers,
        "seed": o.seed,
        "calc_ms": o.calc_ms,
        "runs": runs,
    }))
}

fn color(strategy: &str) -> &'static str {
    match strategy {
        "time-based" => "#d62728",
        "event-based" => "#ff7f0e",
        "hybrid-lock" => "#2ca02c",
        "background" => "#1f77b4",
        "coalesce" => "#9467bd",
        _ => "#7f7f7f",
    }
}

fn rate_label(rate: f64) -> String {
    let whole = |x: f64| (x - x.round()).abs() < 1e-9;
    if rate < 1.0 && whole(rate * 60.0) {
        format!("{}/min", (rate * 60.0).round())
    } else if whole(rate) {
        format!("{}/s", rate.round())
    } else {
        format!("{}/s", sig(rate))
    }
}

/// Hybrid-lock is dashed: it often lies right on background's line.
fn dash(strategy: &str) -> &'static str {
    if strategy == "hybrid-lock" {
        r#" stroke-dasharray="7,5""#
    } else {
        ""
    }
}

/// Two log-log panels: calculations per second, and the worst reflect lag,
/// against the offered load, one line per strategy.
fn to_svg(all: &[ProfileRuns], o: &Options) -> String {
    let steady: Vec<&ProfileRuns> = all.iter().filter(|p| p.steady_rate.is_some()).collect();
    let names: Vec<&'static str> = all
        .first()
        .map(|p| p.reports.iter().map(|r| r.strategy_name).collect())
        .unwrap_or_default();
    let rates: Vec<f64> = steady.iter().filter_map(|p| p.steady_rate).collect();
    let (w, h) = (1000.0, 470.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">Composite scheduling strategies: {} workers, seed {} (log scales)</text>"#,
        w / 2.0,
        o.workers,
        o.seed
    );
    type Metric = fn(&RunReport) -> Option<(f64, bool)>;
    let calcs: Metric = |r| {
        let v = r.calcs_per_sec();
        (v > 0.0).then_some((v, false))
    };
    let lag: Metric = |r| {
        r.lag
            .worst()
            .map(|d| (d.as_secs_f64().max(1e-4), r.lag.worst_is_lower_bound()))
    };
    let panels: [(f64, &str, Metric); 2] = [
        (
            70.0,
            "composite calculations per second (all workers)",
            calcs,
        ),
        (570.0, "max reflect lag, seconds (hollow: lower bound)", lag),
    ];
    for (panel, (x0, title, metric)) in panels.into_iter().enumerate() {
        let (pw, ph, y0) = (380.0, 330.0, 50.0);
        let values: Vec<f64> = steady
            .iter()
            .flat_map(|p| p.reports.iter().filter_map(|r| metric(r).map(|v| v.0)))
            .collect();
        if rates.is_empty() || values.is_empty() {
            continue;
        }
        let lo_x = rates
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .log10()
            .floor();
        let hi_x = rates
            .iter()
            .copied()
            .fold(0.0, f64::max)
            .log10()
            .ceil()
            .max(lo_x + 1.0);
        let lo_y = values
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .log10()
            .floor();
        let hi_y = values
            .iter()
            .copied()
            .fold(0.0, f64::max)
            .log10()
            .ceil()
            .max(lo_y + 1.0);
        let px = |rate: f64| x0 + (rate.log10() - lo_x) / (hi_x - lo_x) * pw;
        let py = |v: f64| y0 + ph - (v.log10() - lo_y) / (hi_y - lo_y) * ph;
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{title}</text>"#,
            x0 + pw / 2.0,
            y0 - 8.0
        );
        // Decade grid and labels.
        let mut e = lo_y;
        while e <= hi_y + 1e-9 {
            let y = py(10f64.powf(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">1e{}</text>"##,
                x0 + pw,
                x0 - 5.0,
                y + 4.0,
                e as i32
            );
            e += 1.0;
        }
        let mut e = lo_x;
        while e <= hi_x + 1e-9 {
            let x = px(10f64.powf(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="#eee"/>"##,
                y0 + ph
            );
            e += 1.0;
        }
        for &rate in &rates {
            let x = px(rate);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + ph,
                y0 + ph + 5.0,
                y0 + ph + 18.0,
                rate_label(rate)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">offered load, events per second (all workers)</text>"#,
            x0 + pw / 2.0,
            y0 + ph + 36.0
        );
        // Background first, so the dashed hybrid-lock line stays visible on it.
        let mut order = names.clone();
        order.sort_by_key(|n| *n != "background");
        for name in &order {
            if *name == "never" && panel == 1 {
                continue; // never reflects anything: no lag to draw
            }
            let points: Vec<(f64, f64, bool)> = steady
                .iter()
                .filter_map(|p| {
                    let r = p.reports.iter().find(|r| r.strategy_name == *name)?;
                    let (v, open) = metric(r)?;
                    Some((px(p.steady_rate?), py(v), open))
                })
                .collect();
            let c = color(name);
            if points.len() > 1 {
                let path: Vec<String> = points
                    .iter()
                    .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{}/>"#,
                    path.join(" "),
                    dash(name)
                );
            }
            for (x, y, open) in points {
                let fill = if open { "white" } else { c };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{c}" stroke-width="2"/>"#
                );
            }
        }
    }
    // Legend.
    let mut x = 70.0;
    let y = h - 25.0;
    for name in &names {
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3"{}/><text x="{}" y="{}">{name}</text>"#,
            x + 24.0,
            color(name),
            dash(name),
            x + 30.0,
            y + 4.0
        );
        x += 120.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="{x}" y="{}" fill="#555">(never computes: nothing to draw on a log scale)</text>"##,
        y + 4.0
    );
    s.push_str("</svg>\n");
    s
}
