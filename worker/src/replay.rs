//! `composite-metrics replay`: a JSONL capture through one calculator on
//! event time and the embedded memory backend; prints the latest value of
//! every metric, the final productivity score, and what was counted.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use composite_metrics::config::StrategyConfig;
use composite_metrics::{MetricsCalculator, Stats, TimeSource};

use crate::sinks::LatestTable;

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table.
    Table,
    /// One JSON object.
    Json,
}

/// What a replay computed.
#[derive(Debug)]
pub struct Report {
    /// `category/name[@tool]` → latest value (the final score included).
    pub metrics: BTreeMap<String, f64>,
    /// The calculator's counts.
    pub stats: Stats,
    /// Lines that were rejected: (line number, error).
    pub rejected: Vec<(usize, String)>,
}

/// Replays `input` (one event per line; blank lines skipped).
pub fn replay(
    input: impl BufRead,
    scheduler: &StrategyConfig,
    allowed_lateness: Duration,
) -> anyhow::Result<Report> {
    let table = LatestTable::default();
    let mut calc = MetricsCalculator::builder()
        .time(TimeSource::EventTime { allowed_lateness })
        .sink(table.clone())
        .scheduler(scheduler.build()?)
        .build()?;
    let mut rejected = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = calc.process_json(&line) {
            rejected.push((n + 1, e.to_string()));
        }
    }
    // The score over everything replayed, whatever the strategy did.
    calc.compute_now(None)?;
    let stats = calc.stats();
    calc.shutdown();
    Ok(Report {
        metrics: table.snapshot(),
        stats,
        rejected,
    })
}

/// Prints `report` in `format`.
pub fn print(report: &Report, format: Format, mut out: impl Write) -> std::io::Result<()> {
    let s = &report.stats;
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "metrics": report.metrics,
                "events": s.events,
                "rejected": s.rejected,
                "duplicates": s.duplicates,
                "unknown_types": s.unknown_types,
                "late_events": s.late_events,
                "rejected_lines": report.rejected.iter()
                    .map(|(n, e)| serde_json::json!({"line": n, "error": e}))
                    .collect::<Vec<_>>(),
            });
            writeln!(out, "{json}")
        }
        Format::Table => {
            let width = report
                .metrics
                .keys()
                .map(String::len)
                .max()
                .unwrap_or(6)
                .max(6);
            writeln!(out, "{:<width$}  {:>12}", "metric", "value")?;
            for (name, value) in &report.metrics {
                writeln!(out, "{name:<width$}  {value:>12.2}")?;
            }
            writeln!(
                out,
                "\nevents {}, rejected {}, duplicates {}, unknown types {}, late {}",
                s.events, s.rejected, s.duplicates, s.unknown_types, s.late_events
            )?;
            for (n, e) in &report.rejected {
                writeln!(out, "line {n}: {e}")?;
            }
            Ok(())
        }
    }
}
