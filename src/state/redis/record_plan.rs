//! A batch as the record script's operations (see record.lua): each event's
//! [`Change`](crate::state::rule::Change), from the one rule, merged per key.

use std::time::Duration;

use foldhash::HashMap;

use super::epoch::Epoch;
use crate::event::Event;
use crate::redis::{digits, Keys, Packed, EVENT_ID, SESSION, SESSION_DECISIONS, TOOL};
use crate::state::rule::{change, Counter, CounterSet, Counts, SessionChange};

/// Keys of the record script before the event-id keys: meta, totals, rate,
/// sessions, tools, latency, decisions.
pub(crate) const FIXED_KEYS: usize = 7;

/// What the script does to a tool's or a session's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Adds to what is there (a missing hash starts empty).
    #[default]
    Add,
    /// Deletes it (and a session's decision list), then writes it anew: a
    /// session the batch ends, then touches again.
    Replace,
    /// Deletes it: a session the batch ends last.
    Delete,
}

impl Mode {
    fn code(self) -> &'static [u8] {
        match self {
            Mode::Add => b"+",
            Mode::Replace => b"=",
            Mode::Delete => b"x",
        }
    }
}

/// The merged operations on one tool's or session's keys.
#[derive(Debug, Default)]
struct Entry {
    /// The first event naming it (its tool or session id comes from there).
    at: usize,
    mode: Mode,
    /// Added to its counters (since its last delete, for a session).
    add: Counts,
    /// A session touched since its last delete (seen now).
    touched: bool,
    /// A session whose start is set to now, not only if absent.
    restart: bool,
    /// Decisions pushed to a session's list (since its last delete).
    decisions: Vec<bool>,
    /// The counters the worker needs back as they were before the batch.
    reads: CounterSet,
    /// A session whose start the worker needs back.
    read_start: bool,
}

impl Entry {
    fn reset(&mut self, at: usize) {
        self.at = at;
        self.mode = Mode::Add;
        self.add = Counts::default();
        self.touched = false;
        self.restart = false;
        self.decisions.clear();
        self.reads = CounterSet::default();
        self.read_start = false;
    }

    /// The counters listed for it: those it adds to and those read back.
    fn listed(&self) -> CounterSet {
        listed(&self.add, self.reads)
    }

    /// Whether the script returns its listed fields as they were.
    fn returns(&self) -> bool {
        !self.reads.is_empty() || self.read_start
    }

    /// A session's time fields: `started` and `last_seen` when touched,
    /// `started` alone when only read back.
    fn times(&self) -> (bool, bool) {
        (self.touched || self.read_start, self.touched)
    }
}

/// Which scope a part of the reply is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Totals,
    /// The tool the event at this index names.
    Tool(usize),
    /// The session of the event at this index.
    Session(usize),
}

/// A part of the reply: one scope's fields as they were before the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returned {
    pub(crate) owner: Owner,
    /// Its counters, in [`Counter::ALL`] order.
    pub(crate) counters: CounterSet,
    /// Then `started` (sessions), then `last_seen`.
    pub(crate) started: bool,
    pub(crate) last_seen: bool,
}

/// Entries found by name: linear search in small batches, a map in large ones.
#[derive(Debug, Default)]
struct Entries {
    list: Vec<Entry>,
    len: usize,
}

impl Entries {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn used(&self) -> &[Entry] {
        self.list.get(..self.len).unwrap_or(&[])
    }

    /// The entry named `name` (by event `at`), added if new.
    fn get<'e>(
        &mut self,
        name: &'e str,
        at: usize,
        index: &mut Option<HashMap<&'e str, usize>>,
        name_of: impl Fn(&Entry) -> &'e str,
    ) -> &mut Entry {
        let found = match index {
            Some(map) => map.get(name).copied(),
            None => self.used().iter().position(|e| name_of(e) == name),
        };
        let i = found.unwrap_or_else(|| {
            if self.len == self.list.len() {
                self.list.push(Entry::default());
            }
            if let Some(map) = index {
                map.insert(name, self.len);
            }
            self.len += 1;
            self.len - 1
        });
        let entry = &mut self.list[i];
        if found.is_none() {
            entry.reset(at);
        }
        entry
    }
}

/// A batch's operations, with buffers reused from call to call.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Per event: a duplicate (of an earlier event of the batch, or of an id
    /// the server reported applied). Set before [`build`](Self::build).
    pub(crate) dup: Vec<bool>,
    /// The events whose ids are checked and remembered (each id once).
    ids: Vec<usize>,
    totals: Counts,
    totals_reads: CounterSet,
    tools: Entries,
    sessions: Entries,
    latency: Vec<f64>,
    decisions: Vec<bool>,
    applied: u64,
}

/// What the script needs besides the plan: its configuration and the
/// worker's window copies.
#[derive(Debug)]
pub(crate) struct Args<'a> {
    pub(crate) epoch: &'a Epoch,
    pub(crate) session_ttl_ms: u64,
    pub(crate) window_ttl_ms: u64,
    pub(crate) max_sessions: usize,
    pub(crate) max_tools: usize,
    pub(crate) dedup_ms: u64,
    pub(crate) latency: (&'a str, u64),
    pub(crate) decisions: (&'a str, u64),
}

impl Plan {
    /// Marks the events whose id an earlier event of the batch carries.
    pub(crate) fn mark_repeats(&mut self, events: &[Event]) {
        self.dup.clear();
        self.dup.resize(events.len(), false);
        if events.iter().all(|e| e.event_id.is_none()) {
            return;
        }
        let mut seen = foldhash::HashSet::default();
        for (e, dup) in events.iter().zip(&mut self.dup) {
            if let Some(id) = e.event_id.as_deref() {
                *dup = !seen.insert(id);
            }
        }
    }

    /// Marks as duplicates the events carrying the ids at `positions`
    /// (1-based, in the order the script was given them).
    pub(crate) fn mark_applied(&mut self, events: &[Event], positions: &[usize]) {
        for &p in positions {
            let Some(id) = p
                .checked_sub(1)
                .and_then(|i| self.ids.get(i))
                .and_then(|&at| events.get(at))
                .and_then(|e| e.event_id.as_deref())
            else {
                continue;
            };
            for (e, dup) in events.iter().zip(&mut self.dup) {
                if e.event_id.as_deref() == Some(id) {
                    *dup = true;
                }
            }
        }
    }

    /// Events the plan applies (not duplicates).
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    /// Latency and decision values the plan pushes.
    pub(crate) fn pushes(&self) -> (usize, usize) {
        (self.latency.len(), self.decisions.len())
    }

    /// The parts of the reply that hold state before the batch, in order.
    pub(crate) fn returned(&self) -> impl Iterator<Item = Returned> + '_ {
        let totals = (!self.totals_reads.is_empty()).then(|| Returned {
            owner: Owner::Totals,
            counters: listed(&self.totals, self.totals_reads),
            started: false,
            last_seen: false,
        });
        let tools = self
            .tools
            .used()
            .iter()
            .filter(|t| t.returns())
            .map(|t| Returned {
                owner: Owner::Tool(t.at),
                counters: t.listed(),
                started: false,
                last_seen: false,
            });
        let sessions = self
            .sessions
            .used()
            .iter()
            .filter(|s| s.returns())
            .map(|s| {
                let (started, last_seen) = s.times();
                Returned {
                    owner: Owner::Session(s.at),
                    counters: s.listed(),
                    started,
                    last_seen,
                }
            });
        totals.into_iter().chain(tools).chain(sessions)
    }

    /// Merges the changes of the events not marked in `dup`.
    pub(crate) fn build(&mut self, events: &[Event], now: Duration) {
        self.ids.clear();
        self.totals = Counts::default();
        self.totals_reads = CounterSet::default();
        self.tools.clear();
        self.sessions.clear();
        self.latency.clear();
        self.decisions.clear();
        self.applied = 0;
        let large = events.len() > 16;
        let mut tool_index = large.then(HashMap::default);
        let mut session_index = large.then(HashMap::default);
        for (at, e) in events.iter().enumerate() {
            if self.dup.get(at).copied().unwrap_or(false) {
                continue;
            }
            self.applied += 1;
            if e.event_id.is_some() {
                self.ids.push(at);
            }
            let c = change(e, now);
            let reads = c.reads();
            self.totals.add(&c.totals);
            self.totals_reads = self.totals_reads.union(reads.totals);
            self.latency.extend(c.latency);
            self.decisions.extend(c.decision);
            if let Some((name, add)) = c.tool {
                let tool = self.tools.get(name, at, &mut tool_index, |t| {
                    events
                        .get(t.at)
                        .and_then(Event::named_tool)
                        .map_or("", |n| &**n)
                });
                tool.add.add(&add);
                tool.reads = tool.reads.union(reads.tool);
            }
            let (id, touch) = match c.session {
                SessionChange::None => continue,
                SessionChange::Touch {
                    id,
                    counts,
                    restart,
                } => (id, Some((counts, restart))),
                SessionChange::End { id } => (id, None),
            };
            let s = self.sessions.get(id, at, &mut session_index, |s| {
                events.get(s.at).map_or("", |e| &*e.session_id)
            });
            s.reads = s.reads.union(reads.session);
            s.read_start |= reads.session_start;
            match touch {
                Some((counts, restart)) => {
                    if s.mode == Mode::Delete {
                        s.mode = Mode::Replace;
                    }
                    s.touched = true;
                    s.restart |= restart;
                    s.add.add(&counts);
                    s.decisions.extend(c.decision);
                }
                None => {
                    s.mode = Mode::Delete;
                    s.touched = false;
                    s.restart = false;
                    s.add = Counts::default();
                    s.decisions.clear();
                }
            }
        }
    }

    /// How many keys [`pack`](Self::pack) writes.
    fn key_count(&self) -> usize {
        FIXED_KEYS + self.ids.len() + self.tools.len + 2 * self.sessions.len
    }

    /// The script's keys, in order, as text (for error messages).
    pub(crate) fn key_names(&self, k: &Keys, events: &[Event]) -> Vec<String> {
        let mut keys: Vec<String> = [
            &k.meta,
            &k.totals,
            &k.rate,
            &k.sessions,
            &k.tools,
            &k.latency,
            &k.decisions,
        ]
        .into_iter()
        .cloned()
        .collect();
        for &at in &self.ids {
            let id = events.get(at).and_then(|e| e.event_id.as_deref());
            keys.push(k.event_id(id.unwrap_or("")));
        }
        for t in self.tools.used() {
            let name = events.get(t.at).and_then(Event::named_tool);
            keys.push(k.tool(name.map_or("", |n| &**n)));
        }
        for s in self.sessions.used() {
            let id = events.get(s.at).map_or("", |e| &*e.session_id);
            keys.push(k.session(id));
            keys.push(k.session_decisions(id));
        }
        keys
    }

    /// Packs the script's keys and arguments (see record.lua's header).
    pub(crate) fn pack(
        &self,
        p: &mut Packed,
        k: &Keys,
        events: &[Event],
        now: Duration,
        a: &Args<'_>,
    ) {
        let now_ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let mut buf = [0u8; 20];
        let from = digits(now_ns, &mut buf);
        let now_text = &buf[from..];
        p.clear();
        p.uint(self.key_count() as u64);
        for key in [
            &k.meta,
            &k.totals,
            &k.rate,
            &k.sessions,
            &k.tools,
            &k.latency,
            &k.decisions,
        ] {
            p.bytes(key.as_bytes());
        }
        let prefix = k.prefix.as_bytes();
        for &at in &self.ids {
            let id = events.get(at).and_then(|e| e.event_id.as_deref());
            p.parts(&[
                prefix,
                EVENT_ID.as_bytes(),
                b":",
                id.unwrap_or("").as_bytes(),
            ]);
        }
        for t in self.tools.used() {
            let name = events.get(t.at).and_then(Event::named_tool);
            p.parts(&[
                prefix,
                TOOL.as_bytes(),
                b":",
                name.map_or("", |n| &**n).as_bytes(),
            ]);
        }
        for s in self.sessions.used() {
            let id = events.get(s.at).map_or("", |e| &*e.session_id).as_bytes();
            p.parts(&[prefix, SESSION.as_bytes(), b":", id]);
            p.parts(&[prefix, SESSION_DECISIONS.as_bytes(), b":", id]);
        }
        p.with(|b| a.epoch.write_known(b));
        p.with(|b| a.epoch.write_candidate(b));
        p.uint(now.as_secs());
        p.uint(a.session_ttl_ms);
        p.uint(a.window_ttl_ms);
        p.uint(a.max_sessions as u64);
        p.uint(a.max_tools as u64);
        p.uint(a.dedup_ms);
        p.uint(self.applied);
        p.bytes(a.latency.0.as_bytes());
        p.uint(a.latency.1);
        p.bytes(a.decisions.0.as_bytes());
        p.uint(a.decisions.1);
        p.uint(self.ids.len() as u64);
        p.uint(self.latency.len() as u64);
        for &ms in &self.latency {
            p.float(ms);
        }
        p.uint(self.decisions.len() as u64);
        for &d in &self.decisions {
            p.bytes(bit(d));
        }
        p.uint((1 + self.tools.len + self.sessions.len) as u64);
        // The namespace's counters.
        p.uint(2);
        p.bytes(b"total");
        p.bytes(Mode::Add.code());
        p.bytes(bit(!self.totals_reads.is_empty()));
        let totals = listed(&self.totals, self.totals_reads);
        fields(p, &self.totals, totals, &[], now_text);
        let first = FIXED_KEYS + self.ids.len() + 1;
        for (i, t) in self.tools.used().iter().enumerate() {
            let name = events.get(t.at).and_then(Event::named_tool);
            p.uint((first + i) as u64);
            p.bytes(b"tool");
            p.bytes(t.mode.code());
            p.bytes(bit(t.returns()));
            fields(p, &t.add, t.listed(), &[], now_text);
            p.bytes(name.map_or("", |n| &**n).as_bytes());
        }
        let first = first + self.tools.len;
        for (i, s) in self.sessions.used().iter().enumerate() {
            let id = events.get(s.at).map_or("", |e| &*e.session_id).as_bytes();
            p.uint((first + 2 * i) as u64);
            p.bytes(b"session");
            p.bytes(s.mode.code());
            p.bytes(bit(s.returns()));
            // Its counters, then its start and last activity.
            let start_op: &[u8] = match (s.touched, s.restart) {
                (true, true) => b"=",
                (true, false) => b"?",
                (false, _) => b".",
            };
            let times: &[(&[u8], &[u8])] = match s.times() {
                (true, true) => &[(b"started", start_op), (b"last_seen", b"=")],
                (true, false) => &[(b"started", start_op)],
                (false, _) => &[],
            };
            fields(p, &s.add, s.listed(), times, now_text);
            p.bytes(id);
            p.uint((first + 2 * i + 1) as u64);
            p.uint(s.decisions.len() as u64);
            for &d in &s.decisions {
                p.bytes(bit(d));
            }
        }
    }
}

fn bit(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

/// The counters an entry lists: those it adds to and those read back.
fn listed(add: &Counts, reads: CounterSet) -> CounterSet {
    Counter::ALL
        .into_iter()
        .filter(|&c| add.get(c) > 0)
        .fold(reads, CounterSet::with)
}

/// Writes an entry's fields: how many, then their names, then their ops,
/// then their values (record.lua hands the names to `HMGET` in place): the
/// `listed` counters in [`Counter::ALL`] order, added to (`+`) or only read
/// (`.`), then the `times` set to `now` with their ops.
fn fields(p: &mut Packed, add: &Counts, listed: CounterSet, times: &[(&[u8], &[u8])], now: &[u8]) {
    let counters = || Counter::ALL.into_iter().filter(move |&c| listed.has(c));
    p.uint((counters().count() + times.len()) as u64);
    for c in counters() {
        p.bytes(c.field().as_bytes());
    }
    for (name, _) in times {
        p.bytes(name);
    }
    for c in counters() {
        p.bytes(if add.get(c) > 0 { b"+" } else { b"." });
    }
    for (_, op) in times {
        p.bytes(op);
    }
    for c in counters() {
        p.uint(add.get(c));
    }
    for _ in times {
        p.bytes(now);
    }
}
