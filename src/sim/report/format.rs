//! Number and duration formatting shared by the tables and the chart.

use std::time::Duration;

use crate::sim::RunReport;

/// A rate per second, per minute or per hour, whichever reads best.
pub(crate) fn fmt_rate(per_sec: f64) -> String {
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
pub(crate) fn sig(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

pub(crate) fn fmt_dur(d: Duration) -> String {
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

pub(crate) fn fmt_opt_dur(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), fmt_dur)
}

pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(
        || "-".to_owned(),
        |r| format!("{:+.1} %", (r - 1.0) * 100.0),
    )
}

/// The worst staleness, marked `≥` when only a lower bound is known, or
/// `never` when nothing was ever reflected.
pub(crate) fn fmt_worst(r: &RunReport) -> String {
    match (r.lag.worst(), r.lag.reflected) {
        (None, _) => "-".to_owned(),
        (Some(w), 0) => format!("never (≥ {})", fmt_dur(w)),
        (Some(w), _) if r.lag.worst_is_lower_bound() => format!("≥ {}", fmt_dur(w)),
        (Some(w), _) => fmt_dur(w),
    }
}

/// A load on the chart's axis: `1/min`, `10/s`, `2.50/s`.
pub(crate) fn rate_label(rate: f64) -> String {
    let whole = |x: f64| (x - x.round()).abs() < 1e-9;
    if rate < 1.0 && whole(rate * 60.0) {
        format!("{}/min", (rate * 60.0).round())
    } else if whole(rate) {
        format!("{}/s", rate.round())
    } else {
        format!("{}/s", sig(rate))
    }
}
