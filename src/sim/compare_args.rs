use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{LoadProfile, SimConfig, SimError, Strategy};
use crate::schedule::{BackgroundConfig, CoalesceConfig, HybridLockConfig};

/// The `compare` example's command line, parsed: which loads and strategies
/// to run, and where the files go. [`HELP`](Self::HELP) lists the flags.
///
/// ```
/// use composite_metrics::sim::CompareArgs;
///
/// let args: Vec<String> = ["--workers", "8", "--rates", "1/min,1000", "--no-bursty"]
///     .iter().map(|s| s.to_string()).collect();
/// let parsed = CompareArgs::parse(&args)?.expect("not --help");
/// assert_eq!(parsed.workers, 8);
/// let profiles = parsed.profiles();
/// assert_eq!(profiles.len(), 2);
/// assert_eq!(profiles[0].0.name(), "1/min"); // lasts 240 min: 240 events at 1/min
/// assert_eq!(profiles[0].0.duration().as_secs(), 240 * 60);
/// assert_eq!(parsed.strategies()?.len(), 6);
/// assert!(CompareArgs::parse(&["--help".to_string()])?.is_none());
/// assert!(CompareArgs::parse(&["--workers".to_string(), "0".to_string()]).is_err());
/// # Ok::<(), composite_metrics::sim::SimError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// `--workers`: workers, each its own calculator and scheduler.
    pub workers: usize,
    /// `--rates`: steady Poisson rates, events/s over all workers.
    pub rates: Vec<f64>,
    /// `--duration`: simulated seconds per profile.
    pub duration: f64,
    /// `--min-events`: a steady profile lasts at least this many events.
    pub min_events: f64,
    /// `--bursty`: burst seconds, rate and gap seconds; `None` with `--no-bursty`.
    pub bursty: Option<(f64, f64, f64)>,
    /// `--profile`: extra profiles.
    pub profiles: Vec<LoadProfile>,
    /// `--seed`.
    pub seed: u64,
    /// `--calc-ms`: simulated duration of one composite calculation.
    pub calc_ms: f64,
    /// `--strategies`: the names of the strategies to run.
    pub strategies: Vec<String>,
    /// `--period`: `TimeBased` period, whole seconds.
    pub period: u64,
    /// `--every`: `EventBased` every N events per worker.
    pub every: u64,
    /// `--max-staleness`, `--min-interval`, `--every-events`, `--lease`
    /// (`HybridLock` and `Coalesce`).
    pub hybrid: HybridLockConfig,
    /// `--tick`: `Coalesce` timer tick, seconds.
    pub tick: f64,
    /// `--strategy-file`: the strategies of a TOML file's `[[strategies]]`
    /// tables (read by the caller, who needs the `toml` parser), replacing
    /// the list built from the other flags.
    pub strategy_file: Option<PathBuf>,
    /// `--interval`: `Background` interval, seconds.
    pub interval: f64,
    /// `--lease`: `HybridLock`, `Background` and `Coalesce` lease, seconds.
    pub lease: f64,
    /// `--no-coordination` clears it.
    pub coordinated: bool,
    /// `--time-scale`: real time with every duration scaled (0.01 with `--redis`).
    pub time_scale: Option<f64>,
    /// `--redis`: the server's URL.
    pub redis: Option<String>,
    /// `--out`: where the files go.
    pub out: PathBuf,
}

impl Default for CompareArgs {
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
            period: 10,
            every: 100,
            hybrid: HybridLockConfig::default(),
            tick: 1.0,
            strategy_file: None,
            interval: 30.0,
            lease: 5.0,
            coordinated: true,
            time_scale: None,
            redis: None,
            out: Path::new("target/compare").to_path_buf(),
        }
    }
}

impl CompareArgs {
    /// The usage text of `--help`.
    pub const HELP: &str = "\
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

    /// Parses the arguments (without the program name). `Ok(None)` for
    /// `-h`/`--help`; [`SimError::Usage`] names a bad or unknown flag.
    pub fn parse(args: &[String]) -> Result<Option<Self>, SimError> {
        Self::default().parse_over(args)
    }

    /// Like [`parse`](Self::parse), with `self` as the defaults.
    pub fn parse_over(self, args: &[String]) -> Result<Option<Self>, SimError> {
        self.parse_flags(args)
            .map_err(|reason| SimError::Usage { reason })
    }

    /// The simulator configuration: workers, seed and calculation duration.
    pub fn sim_config(&self) -> SimConfig {
        SimConfig::default()
            .with_workers(self.workers)
            .with_seed(self.seed)
            .with_calc_duration(Duration::from_secs_f64(self.calc_ms.max(0.0) / 1_000.0))
    }

    /// The profiles to run, each with its steady rate (`None` for the bursty
    /// and custom ones): one steady profile per rate, lasting `duration` or
    /// long enough for `min_events` events, then the bursty one, then the
    /// custom ones.
    pub fn profiles(&self) -> Vec<(LoadProfile, Option<f64>)> {
        let mut profiles: Vec<(LoadProfile, Option<f64>)> = self
            .rates
            .iter()
            .map(|&rate| {
                let secs = self.duration.max(if rate > 0.0 {
                    self.min_events / rate
                } else {
                    0.0
                });
                (
                    LoadProfile::poisson(rate, Duration::from_secs_f64(secs)),
                    Some(rate),
                )
            })
            .collect();
        if let Some((burst, rate, gap)) = self.bursty {
            let bursty = LoadProfile::bursty(rate, secs(burst), secs(gap), secs(self.duration));
            profiles.push((bursty, None));
        }
        profiles.extend(self.profiles.iter().map(|p| (p.clone(), None)));
        profiles
    }

    /// The selected strategies with their parameters, in the comparison's
    /// order; a rejected configuration is an error.
    pub fn strategies(&self) -> Result<Vec<Strategy>, SimError> {
        let o = self;
        o.hybrid.validate()?;
        let background = BackgroundConfig::default()
            .with_interval(secs(o.interval))
            .with_lease(secs(o.lease))
            .with_coordination(o.coordinated);
        background.validate()?;
        let coalesce = CoalesceConfig::default()
            .with_max_staleness(o.hybrid.max_staleness())
            .with_min_interval(o.hybrid.min_interval())
            .with_every_events(o.hybrid.every_events())
            .with_lease(o.hybrid.lease())
            .with_tick(secs(o.tick));
        coalesce.validate()?;
        let all = [
            Strategy::Never,
            Strategy::TimeBased {
                period: Duration::from_secs(o.period),
            },
            Strategy::EventBased { every: o.every },
            Strategy::HybridLock(o.hybrid),
            Strategy::Background(background),
            Strategy::Coalesce(coalesce),
        ];
        Ok(all
            .into_iter()
            .filter(|s| o.strategies.iter().any(|n| n == s.name()))
            .collect())
    }

    fn parse_flags(mut self, args: &[String]) -> Result<Option<Self>, String> {
        let o = &mut self;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            let secs_of = |v: String| seconds(&v, flag).map(Duration::from_secs_f64);
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--workers" => o.workers = number(&value()?, flag)?,
                "--rates" => {
                    o.rates = value()?
                        .split(',')
                        .filter(|r| !r.trim().is_empty())
                        .map(|r| parse_rate(r).map_err(|e| format!("--rates: {e}")))
                        .collect::<Result<_, _>>()?;
                }
                "--duration" => o.duration = seconds(&value()?, flag)?,
                "--min-events" => o.min_events = number(&value()?, flag)?,
                "--no-bursty" => o.bursty = None,
                "--bursty" => o.bursty = Some(parse_bursty(&value()?)?),
                "--profile" => {
                    let spec = value()?;
                    let (name, phases) = spec
                        .split_once('=')
                        .ok_or_else(|| format!("--profile wants NAME=SPEC, got `{spec}`"))?;
                    o.profiles
                        .push(LoadProfile::parse(name, phases).map_err(|e| e.to_string())?);
                }
                "--seed" => o.seed = number(&value()?, flag)?,
                "--calc-ms" => o.calc_ms = number(&value()?, flag)?,
                "--strategies" => {
                    let known: Vec<&str> = Strategy::defaults().iter().map(|s| s.name()).collect();
                    o.strategies = Vec::new();
                    for name in value()?.split(',').map(str::trim) {
                        if !known.contains(&name) {
                            return Err(format!("unknown strategy `{name}`; known: {known:?}"));
                        }
                        o.strategies.push(name.to_owned());
                    }
                }
                "--period" => o.period = number(&value()?, flag)?,
                "--every" => o.every = number(&value()?, flag)?,
                "--max-staleness" => o.hybrid = o.hybrid.with_max_staleness(secs_of(value()?)?),
                "--min-interval" => o.hybrid = o.hybrid.with_min_interval(secs_of(value()?)?),
                "--every-events" => o.hybrid = o.hybrid.with_every_events(number(&value()?, flag)?),
                "--lease" => o.lease = seconds(&value()?, flag)?,
                "--interval" => o.interval = seconds(&value()?, flag)?,
                "--tick" => o.tick = seconds(&value()?, flag)?,
                "--strategy-file" => o.strategy_file = Some(PathBuf::from(value()?)),
                "--no-coordination" => o.coordinated = false,
                "--time-scale" => {
                    let f: f64 = number(&value()?, flag)?;
                    if !(f.is_finite() && f > 0.0) {
                        return Err("--time-scale must be above zero".into());
                    }
                    o.time_scale = Some(f);
                }
                "--redis" => o.redis = Some(value()?),
                "--out" => o.out = PathBuf::from(value()?),
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
        Ok(Some(self))
    }
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
    Ok((
        seconds(burst, "--bursty")?,
        number(rate, "--bursty")?,
        seconds(gap, "--bursty")?,
    ))
}
