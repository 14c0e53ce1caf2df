use std::fmt::Write as _;

use super::format::{fmt_opt_dur, fmt_rate, fmt_ratio, fmt_worst};
use super::{Comparison, ProfileRuns};
use crate::sim::RunReport;

impl Comparison {
    /// The design note's comparison table in Markdown, measured: calculation
    /// frequency at high (1000/s, or else the highest rate), highest and low
    /// load, composite reads and backend operations, overlapping calculations,
    /// event-path cost against `never`, the worst reflect lag of every
    /// profile and idle calculations, each cell with the note's estimate in
    /// brackets where it has one. Rows whose profile was not run are left out.
    pub fn note_table(&self) -> String {
        let all = &self.profiles;
        let steady = self.steady();
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
        let names = self.strategy_names();
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
            self.setup.workers
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
        let name =
            |p: Option<&ProfileRuns>| p.map(|p| p.profile.name().to_owned()).unwrap_or_default();
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
            &|runs, r| fmt_ratio(runs.cpu_ratio(r)),
        );
        row(
            format!("Event-path cost vs never ({})", name(highest)),
            "",
            highest,
            &|runs, r| fmt_ratio(runs.cpu_ratio(r)),
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

    /// Every profile and strategy in one Markdown table, one row per run.
    pub fn full_table(&self) -> String {
        let all = &self.profiles;
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
                    fmt_ratio(runs.cpu_ratio(r)),
                );
            }
        }
        t
    }
}
