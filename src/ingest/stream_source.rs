use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::stream_entry::parse_entry;
use super::{EntryError, StreamConfig, StreamStats};
use crate::calculator::{Delivery, MetricsCalculator};
use crate::clock::{Clock, SystemClock};
use crate::error::{BackendError, Error};
use crate::event::Event;
use crate::metric::Metric;
use crate::redis::{server_code, NodeLink, RedisConfig};
use crate::schedule::CompositeScheduler;

/// One entry as read: its id, its fields (`None`: deleted from the stream
/// while pending) and how often it was delivered.
#[derive(Debug)]
struct RawEntry {
    id: String,
    fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    deliveries: u64,
}

/// Reads a Redis Stream in a consumer group and applies each read as one
/// batch to a [`MetricsCalculator`], acknowledging entries only after their
/// batch was applied.
///
/// Each [`poll`](Self::poll):
///
/// 1. first re-reads this consumer's own unacknowledged entries (after it
///    started, and after a batch failed), then, every `claim_every`, claims
///    entries other consumers left unacknowledged for `min_idle`
///    (`XAUTOCLAIM`: their process is presumed dead), and otherwise reads new
///    entries (`XREADGROUP GROUP g c COUNT n BLOCK t STREAMS s >`);
/// 2. parses every entry (see the entry format in the [module](super) docs
///    and the README); an entry that is not a valid event, or that was
///    delivered more than `max_deliveries` times, goes with its error to the
///    dead-letter stream (bounded: trimmed approximately to
///    [`dead_letter_max_len`](StreamConfig::with_dead_letter_max_len));
/// 3. applies the valid ones with one
///    [`process_batch_into`](MetricsCalculator::process_batch_into); each
///    event's id is its `event_id`, or `<stream>:<entry id>`, so an entry
///    delivered twice (its consumer died after applying, before
///    acknowledging) is a [`Delivery::Duplicate`] and counts once (within
///    the backend's dedup horizon);
/// 4. in one `MULTI`/`EXEC`, adds the dead letters and `XACK`s the applied,
///    duplicate, dead-lettered and deleted entries. If the batch failed,
///    its entries are not acknowledged: they are read again (and
///    dead-lettered after `max_deliveries`), and `poll` returns the error.
///
/// The group is created (with `MKSTREAM`, at `start_id`) if it does not
/// exist. The dead letters and the acknowledgement go in one transaction, so
/// on Redis Cluster the stream and the dead-letter stream must share a hash
/// tag: name the stream `{events}` and the default dead-letter stream is
/// `{events}:dead`. (The source talks to one node: point it at the node
/// serving the stream's slot.) The source opens its own connection, and
/// reopens it after a connection error, as [`RedisState`](crate::RedisState)
/// does: connecting within `connect_timeout`, every call within
/// `connect_timeout + io_timeout` (a blocking read: `block` longer).
#[derive(Debug)]
pub struct StreamSource {
    link: NodeLink,
    /// Round trips (the link counts them per caller).
    trips: AtomicU64,
    /// The link's reconnections already followed by a re-read of this
    /// consumer's own pending entries.
    reconnects: u64,
    config: StreamConfig,
    dead_letter: String,
    clock: Arc<dyn Clock>,
    stats: StreamStats,
    own_pending: bool,
    claim_cursor: String,
    next_claim: Duration,
    next_lag: Duration,
    events: Vec<Event>,
    batch_ids: Vec<String>,
    out: Vec<Metric>,
    deliveries: Vec<(Delivery, usize)>,
}

impl StreamSource {
    /// Validates `config`, connects to `url` (`redis://` or, with feature
    /// `tls`, `rediss://`) and creates the group if it does not exist.
    pub fn connect(url: &str, config: StreamConfig) -> Result<Self, Error> {
        config.validate()?;
        let timeouts = RedisConfig::default()
            .with_connect_timeout(config.connect_timeout())
            .with_read_timeout(config.io_timeout())
            .with_write_timeout(config.io_timeout());
        let mut create = redis::cmd("XGROUP");
        create
            .arg("CREATE")
            .arg(config.stream())
            .arg(config.group())
            .arg(config.start_id())
            .arg("MKSTREAM");
        // Every new connection first creates the group (if it was deleted,
        // or never existed).
        let link = NodeLink::open_with_setup(url, timeouts, Some((&create, "BUSYGROUP")))?;
        let source = Self {
            link,
            trips: AtomicU64::new(0),
            reconnects: 0,
            dead_letter: config.dead_letter(),
            clock: Arc::new(SystemClock),
            stats: StreamStats::default(),
            own_pending: true,
            claim_cursor: "0-0".to_owned(),
            next_claim: Duration::ZERO,
            next_lag: Duration::ZERO,
            events: Vec::with_capacity(config.count()),
            batch_ids: Vec::with_capacity(config.count()),
            out: Vec::new(),
            deliveries: Vec::with_capacity(config.count()),
            config,
        };
        Ok(source)
    }

    /// Uses `clock` to schedule claims and lag reads (default: the system clock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// What the source has done, and the lag as last read.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Reads once (blocking at most `block` when there is nothing to
    /// claim or re-read), applies what it got and acknowledges it; returns
    /// the number of entries handled (0: nothing arrived). Refreshes the lag
    /// when `lag_every` has passed.
    ///
    /// Errors: a failed batch ([`Error::Backend`] from the calculator; its
    /// entries stay pending and are read again by the next `poll`), or a
    /// failed stream call ([`Error::Backend`]; the connection is reopened by
    /// the next `poll`). Entries applied but not acknowledged because of
    /// such an error are redelivered and count as duplicates.
    pub fn poll<S: CompositeScheduler>(
        &mut self,
        calc: &mut MetricsCalculator<S>,
    ) -> Result<usize, Error> {
        let handled = self.read_and_apply(calc);
        let now = self.clock.now();
        if handled.is_ok() && now >= self.next_lag {
            self.next_lag = now + self.config.lag_every();
            // The entries are settled; a failed lag read only leaves the
            // previous figures in place (the next call reconnects).
            if let Err(e) = self.refresh_lag() {
                log::warn!(
                    "stream {}: reading the lag failed: {e}",
                    self.config.stream()
                );
            }
        }
        handled
    }

    fn read_and_apply<S: CompositeScheduler>(
        &mut self,
        calc: &mut MetricsCalculator<S>,
    ) -> Result<usize, Error> {
        if self.own_pending {
            let mut entries = self.read_group("0", None)?;
            if !entries.is_empty() {
                self.fill_deliveries(&mut entries)?;
                return self.apply(calc, entries);
            }
            self.own_pending = false;
        }
        let now = self.clock.now();
        if now >= self.next_claim {
            let (mut entries, done) = self.claim()?;
            if done {
                self.next_claim = now + self.config.claim_every();
            }
            if !entries.is_empty() {
                self.stats.claimed += entries.len() as u64;
                self.fill_deliveries(&mut entries)?;
                return self.apply(calc, entries);
            }
        }
        let entries = self.read_group(">", Some(self.config.block()))?;
        self.apply(calc, entries)
    }

    /// Polls until `stop` is set, logging errors and pausing after one
    /// (`min(block, 1 s)`); returns the final stats.
    pub fn run<S: CompositeScheduler>(
        &mut self,
        calc: &mut MetricsCalculator<S>,
        stop: &AtomicBool,
    ) -> StreamStats {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll(calc) {
                log::warn!("stream {}: {e}", self.config.stream());
                std::thread::sleep(self.config.block().min(Duration::from_secs(1)));
            }
        }
        self.stats
    }

    /// Runs one command (a blocking one waits `extra` longer for its reply).
    fn query(
        &mut self,
        op: &'static str,
        cmd: &redis::Cmd,
        extra: Duration,
    ) -> Result<Value, Error> {
        let result = self.link.query(op, &self.trips, cmd, extra);
        self.settled(result)
    }

    /// Follows up a call: after a reconnection this consumer first re-reads
    /// what it left pending; after a missing group the connection is
    /// dropped, so the next call's connection creates the group again.
    fn settled<T>(&mut self, result: Result<T, BackendError>) -> Result<T, Error> {
        if let Err(e) = &result {
            if server_code(e) == Some("NOGROUP") {
                self.link.disconnect();
            }
        }
        let reconnects = self.link.reconnects();
        if reconnects != self.reconnects {
            self.reconnects = reconnects;
            self.own_pending = true;
        }
        Ok(result?)
    }

    fn read_group(&mut self, id: &str, block: Option<Duration>) -> Result<Vec<RawEntry>, Error> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.config.group())
            .arg(self.config.consumer())
            .arg("COUNT")
            .arg(self.config.count());
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(self.config.stream()).arg(id);
        let reply = self.query("XREADGROUP", &cmd, block.unwrap_or_default())?;
        let entries = read_reply(&reply).ok_or_else(|| unexpected("XREADGROUP", &reply))?;
        if !entries.is_empty() {
            self.stats.reads += 1;
        }
        Ok(entries)
    }

    /// One `XAUTOCLAIM` step; `true` when the scan of the pending list is complete.
    fn claim(&mut self) -> Result<(Vec<RawEntry>, bool), Error> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(self.config.stream())
            .arg(self.config.group())
            .arg(self.config.consumer())
            .arg(self.config.min_idle().as_millis() as u64)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(self.config.count());
        let reply = self.query("XAUTOCLAIM", &cmd, Duration::ZERO)?;
        let parsed = match &reply {
            Value::Array(parts) => {
                let cursor = parts.first().and_then(text);
                let entries = parts.get(1).and_then(entries);
                let deleted = parts.get(2).map_or(Some(0), |d| match d {
                    Value::Array(ids) => Some(ids.len()),
                    _ => None,
                });
                cursor.zip(entries).zip(deleted)
            }
            _ => None,
        };
        let Some(((cursor, entries), deleted)) = parsed else {
            return Err(unexpected("XAUTOCLAIM", &reply));
        };
        // Claimed entries deleted from the stream were dropped from the
        // pending list by the server.
        self.stats.deleted += deleted as u64;
        let done = cursor == "0-0";
        self.claim_cursor = cursor;
        if !entries.is_empty() {
            self.stats.reads += 1;
        }
        Ok((entries, done))
    }

    /// Reads the delivery counts of re-read or claimed entries.
    fn fill_deliveries(&mut self, entries: &mut [RawEntry]) -> Result<(), Error> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(self.config.stream())
            .arg(self.config.group())
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len() * 2 + 16)
            .arg(self.config.consumer());
        let reply = self.query("XPENDING", &cmd, Duration::ZERO)?;
        let Value::Array(rows) = &reply else {
            return Err(unexpected("XPENDING", &reply));
        };
        for row in rows {
            if let Value::Array(cols) = row {
                if let (Some(id), Some(Value::Int(n))) = (cols.first().and_then(text), cols.get(3))
                {
                    if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
                        e.deliveries = (*n).max(1) as u64;
                    }
                }
            }
        }
        Ok(())
    }

    fn apply<S: CompositeScheduler>(
        &mut self,
        calc: &mut MetricsCalculator<S>,
        entries: Vec<RawEntry>,
    ) -> Result<usize, Error> {
        let handled = entries.len();
        if handled == 0 {
            return Ok(0);
        }
        self.stats.entries += handled as u64;
        self.events.clear();
        self.batch_ids.clear();
        let mut ack: Vec<String> = Vec::with_capacity(handled);
        let mut dead: Vec<(RawEntry, EntryError)> = Vec::new();
        for entry in entries {
            let Some(fields) = &entry.fields else {
                self.stats.deleted += 1;
                ack.push(entry.id);
                continue;
            };
            let max = self.config.max_deliveries();
            if entry.deliveries > max {
                self.stats.over_delivered += 1;
                let error = EntryError::TooManyDeliveries {
                    deliveries: entry.deliveries,
                    max,
                };
                dead.push((entry, error));
                continue;
            }
            match parse_entry(&self.config, &entry.id, fields) {
                Ok(event) => {
                    self.events.push(event);
                    self.batch_ids.push(entry.id);
                }
                Err(error) => {
                    self.stats.invalid += 1;
                    dead.push((entry, error));
                }
            }
        }
        let mut batch_error = None;
        if !self.events.is_empty() {
            self.out.clear();
            match calc.process_batch_into(&self.events, &mut self.out, &mut self.deliveries) {
                Ok(()) => {
                    let duplicates = self
                        .deliveries
                        .iter()
                        .filter(|(d, _)| *d == Delivery::Duplicate)
                        .count() as u64;
                    self.stats.duplicates += duplicates;
                    self.stats.applied += self.events.len() as u64 - duplicates;
                    ack.append(&mut self.batch_ids);
                }
                Err(e) => {
                    self.stats.batch_errors += 1;
                    self.own_pending = true;
                    batch_error = Some(e);
                }
            }
        }
        self.settle(&ack, &dead)?;
        match batch_error {
            Some(e) => Err(e),
            None => Ok(handled),
        }
    }

    /// Adds the dead letters and acknowledges, all in one `MULTI`/`EXEC`.
    fn settle(&mut self, ack: &[String], dead: &[(RawEntry, EntryError)]) -> Result<(), Error> {
        if ack.is_empty() && dead.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (entry, error) in dead {
            // Bounded: approximate trimming to `dead_letter_max_len`.
            let cmd = pipe
                .cmd("XADD")
                .arg(&self.dead_letter)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.dead_letter_max_len())
                .arg("*")
                .arg("entry_id")
                .arg(&entry.id)
                .arg("error")
                .arg(error.to_string())
                .arg("deliveries")
                .arg(entry.deliveries)
                .arg("consumer")
                .arg(self.config.consumer());
            for (k, v) in entry.fields.iter().flatten() {
                cmd.arg(k.as_slice()).arg(v.as_slice());
            }
        }
        pipe.cmd("XACK")
            .arg(self.config.stream())
            .arg(self.config.group());
        for id in ack.iter().chain(dead.iter().map(|(e, _)| &e.id)) {
            pipe.arg(id);
        }
        let result = self.link.pipeline("XACK", &self.trips, &pipe);
        let replies = self.settled(result)?;
        if let Some(Value::Int(n)) = replies.last() {
            self.stats.acked += (*n).max(0) as u64;
        }
        self.stats.dead_lettered += dead.len() as u64;
        Ok(())
    }

    /// Reads the group's lag and the dead-letter stream's length now (one or
    /// two round trips), stores them in [`stats`](Self::stats) and, with
    /// feature `metrics`, publishes them as gauges.
    pub fn refresh_lag(&mut self) -> Result<StreamStats, Error> {
        const OP: &str = "stream lag";
        let mut pipe = redis::pipe();
        pipe.cmd("TIME")
            .cmd("XPENDING")
            .arg(self.config.stream())
            .arg(self.config.group())
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(self.config.stream())
            .cmd("XLEN")
            .arg(&self.dead_letter);
        let result = self.link.pipeline(OP, &self.trips, &pipe);
        let replies = self.settled(result)?;
        let bad = || -> Error {
            BackendError::Other {
                op: OP,
                source: "unexpected reply to TIME, XPENDING, XINFO GROUPS or XLEN".into(),
            }
            .into()
        };
        let [time, summary, groups, dead_len] = replies.as_slice() else {
            return Err(bad());
        };
        let Value::Int(dead_len) = dead_len else {
            return Err(bad());
        };
        let now_ms = server_ms(time).ok_or_else(bad)?;
        let (pending, oldest_pending) = match summary {
            Value::Array(parts) => match (parts.first(), parts.get(1)) {
                (Some(Value::Int(n)), Some(min)) => ((*n).max(0) as u64, text(min)),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let group = find_group(groups, self.config.group()).ok_or_else(bad)?;
        let undelivered = group.lag;
        let oldest_id = match oldest_pending {
            Some(id) => Some(id),
            None => {
                let mut cmd = redis::cmd("XRANGE");
                cmd.arg(self.config.stream())
                    .arg(format!("({}", group.last_delivered))
                    .arg("+")
                    .arg("COUNT")
                    .arg(1);
                let reply = self.query(OP, &cmd, Duration::ZERO)?;
                entries(&reply)
                    .ok_or_else(bad)?
                    .into_iter()
                    .next()
                    .map(|e| e.id)
            }
        };
        self.stats.pending = pending;
        self.stats.undelivered = undelivered;
        self.stats.dead_letter_len = (*dead_len).max(0) as u64;
        self.stats.oldest_unacked_age = oldest_id
            .as_deref()
            .and_then(id_ms)
            .map(|ms| Duration::from_millis(now_ms.saturating_sub(ms)));
        self.stats.lag_reads += 1;
        super::stream_gauges::publish(&self.config, &self.stats);
        Ok(self.stats)
    }
}

struct GroupInfo {
    last_delivered: String,
    lag: Option<u64>,
}

fn find_group(groups: &Value, name: &str) -> Option<GroupInfo> {
    let Value::Array(groups) = groups else {
        return None;
    };
    groups.iter().find_map(|g| {
        let pairs: Vec<(String, &Value)> = match g {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| Some((text(kv.first()?)?, kv.get(1)?)))
                .collect(),
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, v)))
                .collect(),
            _ => return None,
        };
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        if get("name").and_then(text).as_deref() != Some(name) {
            return None;
        }
        Some(GroupInfo {
            last_delivered: get("last-delivered-id").and_then(text)?,
            lag: match get("lag") {
                Some(Value::Int(n)) => Some((*n).max(0) as u64),
                _ => None,
            },
        })
    })
}

/// Milliseconds of an entry id (`<ms>-<seq>`).
fn id_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// The server's `TIME` in milliseconds.
fn server_ms(time: &Value) -> Option<u64> {
    let Value::Array(parts) = time else {
        return None;
    };
    let secs: u64 = text(parts.first()?)?.parse().ok()?;
    let micros: u64 = text(parts.get(1)?)?.parse().ok()?;
    Some(secs * 1000 + micros / 1000)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// A list of `[id, [field, value, ...] | nil]` entries.
fn entries(v: &Value) -> Option<Vec<RawEntry>> {
    let Value::Array(list) = v else {
        return matches!(v, Value::Nil).then(Vec::new);
    };
    list.iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let id = text(parts.first()?)?;
            let fields = match parts.get(1) {
                None | Some(Value::Nil) => None,
                Some(Value::Array(flat)) => Some(
                    flat.chunks(2)
                        .map(|kv| Some((bytes(kv.first()?)?, bytes(kv.get(1)?)?)))
                        .collect::<Option<Vec<_>>>()?,
                ),
                Some(Value::Map(map)) => Some(
                    map.iter()
                        .map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
                        .collect::<Option<Vec<_>>>()?,
                ),
                Some(_) => return None,
            };
            Some(RawEntry {
                id,
                fields,
                deliveries: 1,
            })
        })
        .collect()
}

/// The entries of an `XREADGROUP` reply for one stream (nil: none).
fn read_reply(v: &Value) -> Option<Vec<RawEntry>> {
    match v {
        Value::Nil => Some(Vec::new()),
        Value::Array(streams) => match streams.first() {
            None => Some(Vec::new()),
            Some(Value::Array(pair)) => entries(pair.get(1)?),
            Some(_) => None,
        },
        Value::Map(streams) => match streams.first() {
            None => Some(Vec::new()),
            Some((_, list)) => entries(list),
        },
        _ => None,
    }
}

fn unexpected(op: &'static str, reply: &Value) -> Error {
    BackendError::Other {
        op,
        source: format!("unexpected reply: {reply:?}").into(),
    }
    .into()
}
