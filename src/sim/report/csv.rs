use std::fmt::Write as _;
use std::time::Duration;

use super::Comparison;

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(String::new, |d| format!("{:.6}", d.as_secs_f64()))
}

impl Comparison {
    /// One CSV row per run (RFC 4180: profile names and strategy parameters
    /// quoted, as they contain commas), with a header row. Durations are in
    /// seconds with 6 decimals, empty when unknown; `cpu_ratio_vs_never` is
    /// the event-path cost against the profile's `never` run.
    pub fn to_csv(&self) -> String {
        let all = &self.profiles;
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
                runs.cpu_ratio(r).map_or_else(String::new, |x| format!("{x:.4}")),
                r.wall_time.as_secs_f64(),
            );
            }
        }
        t
    }
}
