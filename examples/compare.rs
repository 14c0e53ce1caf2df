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
//!
//! The flags are parsed by the library's
//! [`CompareArgs`](composite_metrics::sim::CompareArgs), and the tables, CSV,
//! JSON and chart rendered by its
//! [`Comparison`](composite_metrics::sim::Comparison).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use composite_metrics::sim::{
    CompareArgs, Comparison, LoadProfile, MemoryBackends, ProfileRuns, RealTimeRunner, ReportSetup,
    RunReport, SimConfig, SimError, Simulator, Strategy,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = CompareArgs {
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compare"),
        ..CompareArgs::default()
    };
    let options = match defaults.parse_over(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{}", CompareArgs::HELP);
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

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Runs every strategy on one profile.
type RunFn<'a> = Box<dyn Fn(&[Strategy], &LoadProfile) -> Result<Vec<RunReport>, SimError> + 'a>;

fn run(o: &CompareArgs) -> Result<(), Box<dyn std::error::Error>> {
    let total = Instant::now();
    let config = o.sim_config();
    let strategies = match &o.strategy_file {
        Some(path) => strategy_file(path)?,
        None => o.strategies()?,
    };
    let (runner, mode): (RunFn<'_>, String) = match (o.time_scale, &o.redis) {
        (None, _) => {
            let sim = Simulator::new(config)?;
            // Warm caches and the allocator so the first measured run is not
            // penalised in the event-path cost comparison.
            sim.run(
                &Strategy::Never,
                &LoadProfile::poisson(10_000.0, secs(10.0)),
            )?;
            let mode = "memory backend, virtual time (ManualClock), strategies in lockstep";
            (Box::new(move |s, p| sim.run_all(s, p)), mode.to_owned())
        }
        (Some(scale), None) => {
            let runner = RealTimeRunner::new(config, scale, MemoryBackends)?;
            let mode = format!("memory backend, real time (SystemClock), time scale {scale}");
            (
                Box::new(move |s, p| s.iter().map(|s| runner.run(s, p)).collect()),
                mode,
            )
        }
        (Some(scale), Some(url)) => redis_runner(config, scale, url)?,
    };

    let profiles = o.profiles();

    let setup = ReportSetup::new(mode, o.workers, o.seed)
        .with_machine(ReportSetup::this_machine())
        .with_calc_ms(o.calc_ms);
    println!("composite-metrics compare: {}", setup.mode);
    println!(
        "workers {}, seed {}, simulated calculation {} ms, machine: {}",
        o.workers, o.seed, o.calc_ms, setup.machine
    );
    for s in &strategies {
        println!("  strategy {s}");
    }
    println!();

    let mut comparison = Comparison::new(setup);
    for (profile, steady_rate) in profiles {
        let reports = runner(&strategies, &profile)?;
        for r in &reports {
            eprintln!(
                "  ran {:<12} on {:<28} {:>9} events, {:>8} calcs, {:>7.2}s wall",
                r.strategy_name,
                r.profile,
                r.events,
                r.calcs,
                r.wall_time.as_secs_f64()
            );
            // Real time: the run should take its duration times the scale.
            let planned = o.time_scale.map(|scale| r.duration.mul_f64(scale));
            if let Some(planned) = planned.filter(|p| r.wall_time > p.mul_f64(1.25) + secs(1.0)) {
                eprintln!(
                    "  warning: took {:.1}s for a {:.1}s schedule: the backend could not keep up \
                     with this load at --time-scale {}, so its rates and lags are distorted; \
                     use a larger --time-scale or lower --rates",
                    r.wall_time.as_secs_f64(),
                    planned.as_secs_f64(),
                    o.time_scale.unwrap_or(1.0)
                );
            }
        }
        comparison
            .profiles
            .push(ProfileRuns::new(profile, steady_rate, reports));
    }
    eprintln!();

    print!("{}", comparison.note_table());
    println!();
    print!("{}", comparison.full_table());

    println!();
    for path in comparison.write_files(&o.out)? {
        println!("wrote {}", path.display());
    }
    println!("total wall time {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(not(feature = "redis"))]
fn redis_runner(
    _: SimConfig,
    _: f64,
    _: &str,
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
    let runner = RealTimeRunner::new(
        config,
        scale,
        composite_metrics::sim::RedisBackends::new(url),
    )?;
    let mode = format!("Redis at {url}, real time (SystemClock), time scale {scale}");
    Ok((
        Box::new(move |s, p| s.iter().map(|s| runner.run(s, p)).collect()),
        mode,
    ))
}

/// The `[[strategies]]` of a TOML file, validated.
fn strategy_file(path: &Path) -> Result<Vec<Strategy>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let list: composite_metrics::config::StrategyList =
        toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    list.sim_strategies().map_err(|e| format!("{shown}: {e}"))
}
