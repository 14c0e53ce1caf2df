/// How a comparison was run, for the headers of its tables, JSON and chart.
///
/// ```
/// use composite_metrics::sim::ReportSetup;
///
/// let setup = ReportSetup::new("memory backend, virtual time", 3, 42);
/// assert_eq!(setup.calc_ms, 5.0);
/// assert_eq!(setup.machine, "");
/// let setup = setup.with_machine(ReportSetup::this_machine());
/// assert!(setup.machine.contains(" cores, "));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSetup {
    /// How the runs were made (backend and clock), free text.
    pub mode: String,
    /// The machine they ran on, free text (empty when unknown).
    pub machine: String,
    /// Workers.
    pub workers: usize,
    /// The seed of arrivals and event contents.
    pub seed: u64,
    /// Simulated duration of one composite calculation, milliseconds.
    pub calc_ms: f64,
}

impl ReportSetup {
    /// A setup with `mode`, `workers` and `seed`, no machine description and
    /// the default simulated calculation of 5 ms.
    pub fn new(mode: impl Into<String>, workers: usize, seed: u64) -> Self {
        Self {
            mode: mode.into(),
            machine: String::new(),
            workers,
            seed,
            calc_ms: 5.0,
        }
    }

    /// Sets the machine description.
    pub fn with_machine(mut self, machine: impl Into<String>) -> Self {
        self.machine = machine.into();
        self
    }

    /// Describes this machine for [`machine`](Self::machine): cores, CPU model
    /// (from `/proc/cpuinfo` where there is one) and operating system, e.g.
    /// `"2 cores, AMD EPYC 7B13, linux"`.
    pub fn this_machine() -> String {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("model name"))?;
                line.split_once(':').map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        format!("{cores} cores, {model}, {}", std::env::consts::OS)
    }

    /// Sets the simulated calculation duration, milliseconds.
    pub fn with_calc_ms(mut self, calc_ms: f64) -> Self {
        self.calc_ms = calc_ms;
        self
    }
}
