use std::time::Duration;

/// Which time drives a calculator's time-dependent figures: session
/// duration, tools per minute, events per second, the metrics' timestamps,
/// and, on [`MemoryState`](crate::MemoryState), idle-session expiry and the
/// dedup horizon on the event path.
///
/// The calculator passes that time to the backend as `now`
/// ([`StateBackend::record`](crate::StateBackend::record)). Composite
/// scheduling (every [`CompositeScheduler`](crate::CompositeScheduler)),
/// locks and the crate's health telemetry stay on the calculator's
/// [`Clock`](crate::clock::Clock) either way.
///
/// # Event time
///
/// With [`EventTime`](Self::EventTime) each event is recorded at its own
/// `timestamp`. The calculator keeps a watermark: the newest event time it
/// has applied. An event up to `allowed_lateness` behind the watermark is
/// recorded at its own time (out of order, within the allowance; a session's
/// start stays its `session_start` or, without one, its first recorded
/// event, whatever the order); an event
/// further behind is **rejected** with [`EventError::Late`](crate::EventError::Late),
/// changes nothing, and is counted in [`Stats::late_events`](crate::Stats::late_events)
/// (and in [`Stats::rejected`](crate::Stats::rejected)). A timestamp before
/// 1970 is rejected as [`EventError::InvalidField`](crate::EventError::InvalidField)
/// on `timestamp`.
///
/// The watermark is per calculator (per worker): workers sharing a state
/// each judge lateness against the events they saw. One far-future
/// timestamp moves the watermark, so later events of the present become
/// late: validate producers' clocks.
///
/// A batch ([`process_batch`](crate::MetricsCalculator::process_batch)) is
/// one backend operation with one `now`: it is recorded at the newest event
/// time of the batch (or the watermark, if later); each event is checked for
/// lateness in order, and a late one rejects the whole batch
/// ([`Error::BatchEvent`](crate::Error::BatchEvent)).
///
/// On Redis the event time drives session duration, tools per minute and
/// events per second the same way; idle-session expiry is by key TTL, which
/// counts on the **server's** clock from the last write, and the dedup
/// horizon is a key TTL on the server's clock too. On
/// [`MemoryState`](crate::MemoryState) the event path expires sessions by
/// the event time (a session idle for its TTL of event time starts afresh),
/// while [`expire_idle`](crate::MemoryState::expire_idle) and
/// [`active_sessions`](crate::StateBackend::active_sessions) read the
/// state's clock: the state serves calculators on any time source, and a
/// listing has no event to take a time from. So on the system clock a
/// replay of yesterday's log lists no session (all are idle past their TTL)
/// and `expire_idle` forgets them all; to list by event time, give the state
/// a [`ManualClock`](crate::ManualClock) and set it to the replay's time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use composite_metrics::{Event, EventType, MetricsCalculator, TimeSource};
///
/// let mut calc = MetricsCalculator::builder()
///     .time(TimeSource::EventTime { allowed_lateness: Duration::from_secs(5) })
///     .build()?;
/// let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);
/// calc.process(&Event::new(EventType::SessionStart, "s1").with_timestamp(at(0)))?;
/// let end = calc.process(&Event::new(EventType::SessionEnd, "s1").with_timestamp(at(120)))?;
/// let duration = end.iter().find(|m| m.name == "session_duration").unwrap();
/// assert_eq!(duration.value, 120.0);
/// // 10 s behind the watermark, 5 s allowed: rejected and counted.
/// assert!(calc.process(&Event::tool_use("s2", "bash").with_timestamp(at(110))).is_err());
/// assert_eq!(calc.stats().late_events, 1);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimeSource {
    /// The calculator's clock when it processes the event (the default).
    #[default]
    Processing,
    /// The event's own `timestamp`.
    EventTime {
        /// How far behind the newest event time an event may be and still be
        /// recorded (at its own time).
        allowed_lateness: Duration,
    },
}
