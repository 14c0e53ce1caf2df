use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Fenced, MetricSink, Points, SeriesKey};
use crate::error::SinkError;
use crate::metric::{names, Category, Metric};

/// The metrics the calculator emits, in the order it emits them: each has a
/// fixed slot, so recording one finds its series without hashing its name.
const KNOWN: [(Category, &str); 16] = [
    (Category::Tools, names::TOOL_LATENCY_P50),
    (Category::Tools, names::TOOL_LATENCY_P95),
    (Category::Tools, names::TOOL_LATENCY_P99),
    (Category::Tools, names::TOOL_LATENCY_AVG),
    (Category::Tools, names::TOOL_SUCCESS_RATE),
    (Category::Tools, names::TOOL_FREQUENCY),
    (Category::Tools, names::OVERALL_SUCCESS_RATE),
    (Category::Session, names::ACCEPTANCE_RATE),
    (Category::Session, names::REJECTION_RATE),
    (Category::Session, names::PROMPT_LENGTH),
    (Category::Session, names::PROMPTS_PER_SESSION),
    (Category::Session, names::ERRORS_PER_SESSION),
    (Category::Session, names::SESSION_DURATION),
    (Category::Session, names::TOOLS_PER_MINUTE),
    (Category::Realtime, names::EVENTS_PER_SECOND),
    (Category::Composite, names::PRODUCTIVITY_SCORE),
];

const SLOTS: usize = KNOWN.len();

/// The slot of `category/name` in [`KNOWN`], if it is one of them. A match
/// on the name compiles to a length test and a fixed-size comparison, no
/// hashing.
fn known_slot(category: Category, name: &str) -> Option<usize> {
    let slot = match name {
        names::TOOL_LATENCY_P50 => 0,
        names::TOOL_LATENCY_P95 => 1,
        names::TOOL_LATENCY_P99 => 2,
        names::TOOL_LATENCY_AVG => 3,
        names::TOOL_SUCCESS_RATE => 4,
        names::TOOL_FREQUENCY => 5,
        names::OVERALL_SUCCESS_RATE => 6,
        names::ACCEPTANCE_RATE => 7,
        names::REJECTION_RATE => 8,
        names::PROMPT_LENGTH => 9,
        names::PROMPTS_PER_SESSION => 10,
        names::ERRORS_PER_SESSION => 11,
        names::SESSION_DURATION => 12,
        names::TOOLS_PER_MINUTE => 13,
        names::EVENTS_PER_SECOND => 14,
        names::PRODUCTIVITY_SCORE => 15,
        _ => return None,
    };
    // The same name in another category is another series.
    KNOWN
        .get(slot)
        .filter(|(c, _)| *c == category)
        .map(|_| slot)
}

/// The series of a [`MemorySink`].
#[derive(Debug)]
struct Store {
    /// Series of known metrics, [`SLOTS`] per row: row 0 unlabelled, row
    /// `r > 0` labelled with the tool `tools[r - 1]`.
    rows: Vec<Points>,
    /// The tool of each labelled row.
    tools: Vec<Arc<str>>,
    /// Each tool's row.
    tool_rows: HashMap<Arc<str>, usize>,
    /// Series of any other metric.
    other: HashMap<SeriesKey, Points>,
    /// Known names by the address of their text (see [`NameSeen`]).
    names: [NameSeen; CACHE],
    /// Tool rows by the address of the tool's text: a row `r > 0` found
    /// here is the tool's only if `tools[r - 1]` is that very allocation.
    tool_cache: [usize; CACHE],
}

/// The last tool of one `record` call looked up by its text: its address
/// and row (valid for that call only, while its metrics are borrowed).
#[derive(Debug, Default)]
struct BatchTool {
    last: Option<(usize, usize)>,
}

/// Entries in the caches of a [`Store`]: two-way, an address may sit in
/// either of its two [`buckets`].
const CACHE: usize = 64;

/// The two buckets of an address in a cache of [`CACHE`] entries (Fibonacci
/// hashing: two groups of six bits from the top of the product).
#[inline(always)]
fn buckets(addr: usize) -> (usize, usize) {
    let h = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 58) as usize, (h >> 52) as usize % CACHE)
}

/// A known metric name last found at `addr`, `len` bytes long, in
/// `category`: its slot. A `&'static str` at one address and length always
/// holds the same text, so a match needs no comparison of the text.
#[derive(Debug, Clone, Copy)]
struct NameSeen {
    /// 0: empty (no `&str` points at address 0).
    addr: usize,
    len: usize,
    category: Category,
    slot: usize,
}

const NO_NAME: NameSeen = NameSeen {
    addr: 0,
    len: 0,
    category: Category::Tools,
    slot: 0,
};

impl Default for Store {
    fn default() -> Self {
        Self {
            rows: (0..SLOTS).map(|_| Points::new()).collect(),
            tools: Vec::new(),
            tool_rows: HashMap::default(),
            other: HashMap::default(),
            names: [NO_NAME; CACHE],
            tool_cache: [0; CACHE],
        }
    }
}

impl Store {
    fn get(&self, key: &SeriesKey) -> Option<&Points> {
        let series = match (known_slot(key.category, key.name), &key.tool) {
            (Some(slot), None) => self.rows.get(slot),
            (Some(slot), Some(tool)) => self
                .tool_rows
                .get(&**tool)
                .and_then(|row| self.rows.get(row * SLOTS + slot)),
            (None, _) => self.other.get(key),
        };
        series.filter(|s| !s.is_empty())
    }

    /// [`known_slot`] of a metric's name, from the cache when the name was
    /// last found at the same address (a few instructions, no hashing of
    /// the text).
    #[inline(always)]
    fn slot_of(&mut self, category: Category, name: &'static str) -> Option<usize> {
        let addr = name.as_ptr() as usize;
        let (i, j) = buckets(addr);
        let is = |seen: &NameSeen| {
            seen.addr == addr && seen.len == name.len() && seen.category == category
        };
        if let Some(seen) = self.names.get(i).filter(|s| is(s)) {
            return Some(seen.slot);
        }
        if let Some(seen) = self.names.get(j).filter(|s| is(s)) {
            return Some(seen.slot);
        }
        self.slot_of_slowly(category, name, i, j)
    }

    /// [`known_slot`], remembered in bucket `i` or `j` when found.
    #[inline(never)]
    fn slot_of_slowly(
        &mut self,
        category: Category,
        name: &'static str,
        i: usize,
        j: usize,
    ) -> Option<usize> {
        let slot = known_slot(category, name)?;
        let at = if self.names.get(i).is_some_and(|s| s.addr == 0) {
            i
        } else {
            j
        };
        if let Some(seen) = self.names.get_mut(at) {
            *seen = NameSeen {
                addr: name.as_ptr() as usize,
                len: name.len(),
                category,
                slot,
            };
        }
        Some(slot)
    }

    /// The row of `tool` (1 or more), from the cache when `tool` is the
    /// allocation the row was made from (or a clone of it).
    #[inline(always)]
    fn cached_tool_row(&mut self, tool: &Arc<str>, batch: &mut BatchTool) -> usize {
        let addr = tool.as_ptr() as usize;
        let (i, j) = buckets(addr);
        // `tools[row - 1]` is held by the store, so no other string lives
        // at its address: the same address is the same text.
        let is = |row: &usize| {
            *row > 0
                && self
                    .tools
                    .get(*row - 1)
                    .is_some_and(|t| t.as_ptr() as usize == addr)
        };
        if let Some(&row) = self.tool_cache.get(i).filter(|r| is(r)) {
            return row;
        }
        if let Some(&row) = self.tool_cache.get(j).filter(|r| is(r)) {
            return row;
        }
        self.tool_row_slowly(tool, i, j, batch)
    }

    /// [`tool_row`](Self::tool_row), remembered in bucket `i` or `j` when
    /// `tool` is the row's own allocation, and for the rest of the batch
    /// in `batch` (a tool built anew for each event is looked up once per
    /// batch, not once per metric).
    #[inline(never)]
    fn tool_row_slowly(
        &mut self,
        tool: &Arc<str>,
        i: usize,
        j: usize,
        batch: &mut BatchTool,
    ) -> usize {
        let addr = tool.as_ptr() as usize;
        if let Some((seen, row)) = batch.last {
            // The batch's metrics are borrowed for the whole call, so an
            // address seen in it is the same allocation, the same text.
            if seen == addr {
                return row;
            }
        }
        let row = self.tool_row(tool);
        batch.last = Some((addr, row));
        let own = self
            .tools
            .get(row.wrapping_sub(1))
            .is_some_and(|t| Arc::ptr_eq(t, tool));
        if own {
            let at = if self.tool_cache.get(i) == Some(&0) {
                i
            } else {
                j
            };
            if let Some(cached) = self.tool_cache.get_mut(at) {
                *cached = row;
            }
        }
        row
    }

    /// The row of `tool` (1 or more), added if new.
    fn tool_row(&mut self, tool: &Arc<str>) -> usize {
        if let Some(row) = self.tool_rows.get(&**tool) {
            return *row;
        }
        self.tools.push(Arc::clone(tool));
        let row = self.tools.len();
        self.rows.extend((0..SLOTS).map(|_| Points::new()));
        self.tool_rows.insert(Arc::clone(tool), row);
        row
    }

    fn keys(&self) -> impl Iterator<Item = SeriesKey> + '_ {
        let known = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, series)| !series.is_empty())
            .map(|(i, _)| {
                let (category, name) = KNOWN[i % SLOTS];
                let tool = (i / SLOTS).checked_sub(1).and_then(|t| self.tools.get(t));
                SeriesKey {
                    category,
                    name,
                    tool: tool.cloned(),
                }
            });
        known.chain(self.other.keys().cloned())
    }
}

/// Keeps the latest value of every series and its last `capacity` points.
///
/// Clones share the same store. A series is keyed by category, name and tool
/// ([`SeriesKey`]); per-session values of one metric share a series, so memory
/// stays bounded however many sessions pass.
///
/// # Default
///
/// 1 000 points per series.
///
/// # Example
///
/// ```
/// use composite_metrics::{Category, Event, MemorySink, MetricsCalculator};
/// use composite_metrics::metric::names;
/// use composite_metrics::sink::SeriesKey;
///
/// let sink = MemorySink::new();
/// let mut calc = MetricsCalculator::builder().sink(sink.clone()).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(30.0))?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(10.0))?;
/// let avg = SeriesKey::new(Category::Tools, names::TOOL_LATENCY_AVG);
/// assert_eq!(sink.latest(&avg), Some(20.0));
/// assert_eq!(sink.series(&avg).len(), 2);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
///
/// # Fencing
///
/// A metric carrying a [`generation`](Metric::generation) (a composite
/// computed under a lock) is refused when a newer generation was already
/// recorded for its scope (its session, or global): a lock holder that was
/// paused past its lease cannot overwrite the score of the holder that took
/// over. The batch's other metrics are recorded; the call returns a
/// [`SinkError`] whose source is [`Fenced`], and [`refused`](Self::refused)
/// counts the refused metrics. A session's newest generation is remembered
/// for 24 hours (by the metrics' time) after its last fenced metric.
#[derive(Debug, Clone)]
pub struct MemorySink {
    inner: Arc<Mutex<Store>>,
    capacity: usize,
    fence: Arc<Mutex<Fences>>,
}

/// How long a session's newest generation is remembered after its last
/// fenced metric, by the metrics' time.
const FENCE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The newest generation recorded per scope (`None`: global), with the time
/// of the metric that brought it.
#[derive(Debug, Default)]
struct Fences {
    newest: HashMap<Option<Arc<str>>, (u64, Duration)>,
    /// Sweep old sessions when the map grows past this.
    sweep_at: usize,
    refused: u64,
}

impl Fences {
    /// Decides which metrics pass, updating the newest generations.
    fn admit(&mut self, metrics: &[Metric], keep: &mut Vec<bool>) -> Option<Fenced> {
        let mut refused: Option<Fenced> = None;
        for m in metrics {
            let Some(generation) = m.generation else {
                keep.push(true);
                continue;
            };
            let entry = match self.newest.get_mut(&m.session) {
                Some(e) => e,
                None => self.newest.entry(m.session.clone()).or_insert((0, m.at)),
            };
            if generation < entry.0 {
                keep.push(false);
                let first = refused.get_or_insert_with(|| Fenced {
                    refused: 0,
                    generation,
                    newest: entry.0,
                    session: m.session.clone(),
                });
                first.refused += 1;
            } else {
                *entry = (generation, entry.1.max(m.at));
                keep.push(true);
            }
        }
        if self.newest.len() > self.sweep_at {
            let newest_at = self
                .newest
                .values()
                .map(|(_, at)| *at)
                .max()
                .unwrap_or_default();
            let horizon = newest_at.saturating_sub(FENCE_MEMORY);
            self.newest
                .retain(|scope, (_, at)| scope.is_none() || *at >= horizon);
            self.sweep_at = (2 * self.newest.len()).max(1024);
        }
        if let Some(f) = &refused {
            self.refused += f.refused;
        }
        refused
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySink {
    /// An empty sink keeping 1 000 points per series.
    pub fn new() -> Self {
        Self::with_capacity(1_000)
    }

    /// An empty sink keeping `capacity` points per series (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
            fence: Arc::default(),
        }
    }

    /// Metrics refused by fencing so far (see [Fencing](#fencing)).
    pub fn refused(&self) -> u64 {
        self.fence.lock().refused
    }

    /// The latest value of a series.
    pub fn latest(&self, key: &SeriesKey) -> Option<f64> {
        self.inner
            .lock()
            .get(key)
            .and_then(|s| s.last())
            .map(|(_, v)| v)
    }

    /// The latest value of an unlabelled series.
    pub fn latest_of(&self, category: Category, name: &'static str) -> Option<f64> {
        self.latest(&SeriesKey::new(category, name))
    }

    /// The retained points of a series, oldest first.
    pub fn series(&self, key: &SeriesKey) -> Vec<(Duration, f64)> {
        self.inner
            .lock()
            .get(key)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Every series key, sorted.
    pub fn keys(&self) -> Vec<SeriesKey> {
        let mut keys: Vec<_> = self.inner.lock().keys().collect();
        keys.sort();
        keys
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.inner.lock().keys().count()
    }

    /// Whether it holds no series.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().keys().next().is_none()
    }
}

impl MetricSink for MemorySink {
    /// Finds each metric's series by its slot and its tool's row, both
    /// remembered by the address of the text (no hashing for names and
    /// tools seen before at that address); only metrics of other names, and
    /// tools at a new address, are hashed. Metrics
    /// are stored as they come until the first fenced one (a composite with
    /// a generation); from there the batch goes through the fence.
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let fenced_from = {
            let mut guard = self.inner.lock();
            let mut batch = BatchTool::default();
            metrics.iter().position(|m| {
                if m.generation.is_some() {
                    return true;
                }
                guard.put(self.capacity, m, &mut batch);
                false
            })
        };
        match fenced_from.and_then(|i| metrics.get(i..)) {
            None => Ok(()),
            Some(rest) => self.record_fenced(rest),
        }
    }
}

impl MemorySink {
    /// Records a batch holding fenced metrics: the fence is held while the
    /// admitted metrics are stored, so a refused one can never land after a
    /// newer one.
    #[cold]
    fn record_fenced(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut fence = self.fence.lock();
        let mut keep = Vec::with_capacity(metrics.len());
        let refused = fence.admit(metrics, &mut keep);
        {
            let mut guard = self.inner.lock();
            let mut batch = BatchTool::default();
            for (m, _) in metrics.iter().zip(&keep).filter(|(_, k)| **k) {
                guard.put(self.capacity, m, &mut batch);
            }
        }
        drop(fence);
        match refused {
            None => Ok(()),
            Some(f) => Err(SinkError {
                sink: "memory",
                source: Box::new(f),
            }),
        }
    }
}

impl Store {
    /// Stores one metric: its series by slot and tool row, both usually
    /// from the caches (no hashing).
    #[inline(always)]
    fn put(&mut self, capacity: usize, m: &Metric, batch: &mut BatchTool) {
        let point = (m.at, m.value);
        let Some(slot) = self.slot_of(m.category, m.name) else {
            self.put_other(capacity, m);
            return;
        };
        let row = match &m.tool {
            None => 0,
            Some(tool) => self.cached_tool_row(tool, batch),
        };
        // Every row has SLOTS series and `slot < SLOTS`: always found.
        if let Some(series) = self.rows.get_mut(row * SLOTS + slot) {
            series.push(capacity, point);
        }
    }

    /// Stores a metric of a name that is not [`KNOWN`], by its key.
    #[cold]
    #[inline(never)]
    fn put_other(&mut self, capacity: usize, m: &Metric) {
        let point = (m.at, m.value);
        let key = SeriesKey::of(m);
        match self.other.get_mut(&key) {
            Some(series) => series.push(capacity, point),
            None => self.other.entry(key).or_default().push(capacity, point),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{known_slot, KNOWN};

    #[test]
    fn every_known_metric_has_its_own_slot() {
        for (i, (category, name)) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(*category, name), Some(i), "{name}");
            // A copy of the name (another address) finds the same slot.
            let copy = String::from(*name);
            assert_eq!(known_slot(*category, copy.as_str()), Some(i));
        }
        assert_eq!(known_slot(KNOWN[0].0, "no_such_metric"), None);
        assert_eq!(known_slot(KNOWN[13].0, KNOWN[0].1), None);
    }
}
