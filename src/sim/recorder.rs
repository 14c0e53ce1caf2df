use std::time::Duration;

use super::{LagStats, RunReport};

/// Turns a globally ordered stream of "event recorded" and "calculation
/// started" into the measurements of a [`RunReport`].
#[derive(Debug)]
pub(crate) struct Recorder {
    calc_duration: Duration,
    /// Offsets (ns) of events no calculation has read yet, oldest first.
    pending: Vec<u64>,
    lags: Vec<u64>,
    since_last: u64,
    busy_until: Option<Duration>,
    last_start: Option<Duration>,
    min_gap: Option<Duration>,
    calc_starts: Vec<Duration>,
    events: u64,
    event_path_calcs: u64,
    background_calcs: u64,
    idle_calcs: u64,
    overlapping_calcs: u64,
}

impl Recorder {
    pub(crate) fn new(calc_duration: Duration) -> Self {
        Self {
            calc_duration,
            pending: Vec::new(),
            lags: Vec::new(),
            since_last: 0,
            busy_until: None,
            last_start: None,
            min_gap: None,
            calc_starts: Vec::new(),
            events: 0,
            event_path_calcs: 0,
            background_calcs: 0,
            idle_calcs: 0,
            overlapping_calcs: 0,
        }
    }

    /// An event was recorded at `at` (offset from the start).
    #[inline]
    pub(crate) fn event(&mut self, at: Duration) {
        self.events += 1;
        self.since_last += 1;
        self.pending.push(nanos(at));
    }

    /// A calculation started at `at`; it reads every event recorded before it.
    pub(crate) fn calc(&mut self, at: Duration, on_event_path: bool) {
        if on_event_path {
            self.event_path_calcs += 1;
        } else {
            self.background_calcs += 1;
        }
        let now = nanos(at);
        self.lags
            .extend(self.pending.drain(..).map(|t| now.saturating_sub(t)));
        if self.since_last == 0 {
            self.idle_calcs += 1;
        }
        self.since_last = 0;
        if self.busy_until.is_some_and(|until| at < until) {
            self.overlapping_calcs += 1;
        }
        let end = at.saturating_add(self.calc_duration);
        self.busy_until = Some(self.busy_until.map_or(end, |u| u.max(end)));
        if let Some(last) = self.last_start {
            let gap = at.saturating_sub(last);
            self.min_gap = Some(self.min_gap.map_or(gap, |g| g.min(gap)));
        }
        self.last_start = Some(at);
        self.calc_starts.push(at);
    }

    /// Fills the measured fields of `report`; the run ended at `end`.
    pub(crate) fn finish(self, end: Duration, report: &mut RunReport) {
        let oldest = self
            .pending
            .first()
            .map(|t| Duration::from_nanos(nanos(end).saturating_sub(*t)));
        report.lag = LagStats::from_nanos(self.lags, self.pending.len() as u64, oldest);
        report.events = self.events;
        report.calcs = self.event_path_calcs + self.background_calcs;
        report.event_path_calcs = self.event_path_calcs;
        report.background_calcs = self.background_calcs;
        report.idle_calcs = self.idle_calcs;
        report.overlapping_calcs = self.overlapping_calcs;
        report.min_gap = self.min_gap;
        report.calc_starts = self.calc_starts;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
