use std::time::Duration;

use super::Comparison;

impl Comparison {
    /// The setup and every run as pretty-printed JSON: `{"mode", "machine",
    /// "workers", "seed", "calc_ms", "runs": [...]}`, one object per run with
    /// the CSV's figures (durations in seconds, `null` when unknown), the
    /// backend operations under `"ops"` and the reflect lag under `"lag"`.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let all = &self.profiles;
        let o = &self.setup;
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
                        "cpu_ratio_vs_never": runs.cpu_ratio(r),
                        "wall_s": r.wall_time.as_secs_f64(),
                    })
                })
            })
            .collect();
        serde_json::to_string_pretty(&json!({
            "mode": o.mode,
            "machine": o.machine,
            "workers": o.workers,
            "seed": o.seed,
            "calc_ms": o.calc_ms,
            "runs": runs,
        }))
    }
}
