use std::time::Duration;

/// What a [`StreamSource`](super::StreamSource) has done, counted exactly,
/// and the group's lag as last read.
///
/// Every entry read ends in exactly one of `applied`, `duplicates`,
/// `dead_lettered` or `deleted`, or stays pending (its batch failed: it is
/// read again later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Reads that returned entries (`XREADGROUP` or `XAUTOCLAIM`).
    pub reads: u64,
    /// Entries received (new, re-read after a failure, or claimed).
    pub entries: u64,
    /// Entries claimed from other consumers (`XAUTOCLAIM`), among `entries`.
    pub claimed: u64,
    /// Entries applied to the state.
    pub applied: u64,
    /// Entries whose event id was already applied (a redelivery): acknowledged, not counted again.
    pub duplicates: u64,
    /// Entries moved to the dead-letter stream (and acknowledged): `invalid` + `over_delivered`.
    pub dead_lettered: u64,
    /// Entries that were not a valid event.
    pub invalid: u64,
    /// Entries delivered more than `max_deliveries` times.
    pub over_delivered: u64,
    /// Pending entries deleted from the stream meanwhile (acknowledged, nothing to apply).
    pub deleted: u64,
    /// Entries acknowledged (`XACK`).
    pub acked: u64,
    /// Batches that failed to apply (their entries stay pending and are read again).
    pub batch_errors: u64,
    /// The group's pending entries (delivered, not acknowledged), as last read.
    pub pending: u64,
    /// Entries not yet delivered to the group, as last read (`None`: Redis
    /// could not tell, after deletions inside the stream).
    pub undelivered: Option<u64>,
    /// Age of the oldest unacknowledged entry (pending or not yet
    /// delivered), by the server's clock and the entry id's time, as last
    /// read; `None` when every entry is acknowledged.
    pub oldest_unacked_age: Option<Duration>,
    /// Entries in the dead-letter stream (`XLEN`), as last read with the
    /// lag; bounded by
    /// [`StreamConfig::with_dead_letter_max_len`](super::StreamConfig::with_dead_letter_max_len).
    pub dead_letter_len: u64,
    /// Times the lag was read.
    pub lag_reads: u64,
}
