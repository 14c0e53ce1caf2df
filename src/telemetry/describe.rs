use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use super::names::{self, SERIES};

/// Describes every series this crate exports (unit and help text) to the
/// current recorder. Call it once after installing the recorder, e.g.
/// `metrics-exporter-prometheus`, so its output carries `# HELP` lines.
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, composite_metrics::telemetry::describe);
/// # let _ = snapshotter;
/// ```
pub fn describe() {
    for s in &SERIES {
        describe_gauge!(s.exported, s.unit, s.help);
    }
    describe_counter!(
        names::DECISIONS,
        Unit::Count,
        "Composite scheduling decisions, by strategy and outcome (compute, skip, error)"
    );
    describe_counter!(
        names::LOCKS,
        Unit::Count,
        "Composite lock attempts and releases, by strategy and result (acquired, refused, lost)"
    );
    describe_counter!(
        names::CALCULATIONS,
        Unit::Count,
        "Composite calculations run, by strategy and trigger (event, compute_now, timer)"
    );
    describe_histogram!(
        names::CALCULATION_SECONDS,
        Unit::Seconds,
        "Time one composite calculation took"
    );
    describe_gauge!(
        names::SECONDS_SINCE_CALCULATION,
        Unit::Seconds,
        "Seconds between the latest event and the latest composite calculation in this process"
    );
    describe_counter!(
        names::BACKEND_ERRORS,
        Unit::Count,
        "State backend failures, by kind"
    );
    describe_counter!(
        names::TOOL_RUNS,
        Unit::Count,
        "Named tool runs applied by this process's calculators, by tool"
    );
    describe_counter!(
        names::TOOL_SUCCESSES,
        Unit::Count,
        "Named tool runs with an explicit success, by tool"
    );
    describe_counter!(
        names::TOOL_FAILURES,
        Unit::Count,
        "Named tool runs with an explicit failure, by tool"
    );
    describe_counter!(
        names::SINK_ERRORS,
        Unit::Count,
        "Metric batches a sink failed to record, by sink"
    );
}
