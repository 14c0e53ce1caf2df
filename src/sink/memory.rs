use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Fenced, MetricSink, Points, SeriesKey};
use crate::error::SinkError;
use crate::metric::{names, Category, Metric};

/// The metrics the calculator emits, in the order it emits them: each has a
/// fixed slot, so recording one finds its series without hashing its name.
const KNOWN: [(Category, &str); 15] = [
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
    (Category::Session, names::SESSION_DURATION),
    (Category::Session, names::TOOLS_PER_MINUTE),
    (Category::Realtime, names::EVENTS_PER_SECOND),
    (Category::Composite, names::PRODUCTIVITY_SCORE),
];

const SLOTS: usize = KNOWN.len();

/// [`KNOWN`] in one place in memory, not copied at each use.
static KNOWN_REF: [(Category, &str); SLOTS] = KNOWN;

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
        names::SESSION_DURATION => 11,
        names::TOOLS_PER_MINUTE => 12,
        names::EVENTS_PER_SECOND => 13,
        names::PRODUCTIVITY_SCORE => 14,
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
    /// Per slot, the address its name was last found at (0: none yet).
    seen: [usize; SLOTS],
}

impl Default for Store {
    fn default() -> Self {
        Self {
            rows: (0..SLOTS).map(|_| Points::new()).collect(),
            tools: Vec::new(),
            tool_rows: HashMap::default(),
            other: HashMap::default(),
            seen: [0; SLOTS],
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

    /// [`known_slot`] of a metric's name, looking first among the slots
    /// from `from` on for one last found at the name's very address (a
    /// `&'static str` at one address always holds the same text): the
    /// calculator emits in slot order, so this is usually the first or
    /// second slot tried, a few instructions each.
    fn slot_of(&mut self, category: Category, name: &'static str, from: usize) -> Option<usize> {
        let addr = name.as_ptr() as usize;
        let mut slot = from;
        while let (Some(seen), Some((c, known))) = (self.seen.get(slot), KNOWN_REF.get(slot)) {
            if *seen == addr && *c == category && known.len() == name.len() {
                return Some(slot);
            }
            slot += 1;
        }
        let slot = known_slot(category, name)?;
        if let Some(seen) = self.seen.get_mut(slot) {
            *seen = addr;
        }
        Some(slot)
    }

    /// The row of `tool` (1 or more), added if new.
    #[inline]
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
    /// Finds each metric's series by its slot (a match on the name, no
    /// hashing) and its tool's row (looked up once for consecutive metrics
    /// of the same tool); only metrics of other names are hashed. Metrics
    /// are stored as they come until the first fenced one (a composite with
    /// a generation); from there the batch goes through the fence.
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let fenced_from = {
            let mut guard = self.inner.lock();
            let mut cursor = Cursor::default();
            metrics.iter().position(|m| {
                if m.generation.is_some() {
                    return true;
                }
                guard.put(self.capacity, m, &mut cursor);
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
            let mut cursor = Cursor::default();
            for (m, _) in metrics.iter().zip(&keep).filter(|(_, k)| **k) {
                guard.put(self.capacity, m, &mut cursor);
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

/// Where a batch's last lookups landed, to start the next one there.
#[derive(Default)]
struct Cursor {
    /// The last tool looked up: its string's address and its row.
    last_tool: Option<(*const u8, usize)>,
    /// Where the next metric's slot is likely to be.
    next: usize,
}

impl Store {
    /// Stores one metric: its series by slot (no hashing) and tool row.
    #[inline(always)]
    fn put(&mut self, capacity: usize, m: &Metric, cursor: &mut Cursor) {
        let point = (m.at, m.value);
        let found = match self.slot_of(m.category, m.name, cursor.next) {
            None if cursor.next > 0 => self.slot_of(m.category, m.name, 0),
            found => found,
        };
        let Some(slot) = found else {
            let key = SeriesKey::of(m);
            match self.other.get_mut(&key) {
                Some(series) => series.push(capacity, point),
                None => self.other.entry(key).or_default().push(capacity, point),
            }
            return;
        };
        cursor.next = slot + 1;
        let row = match &m.tool {
            None => 0,
            Some(tool) => match cursor.last_tool {
                Some((seen, row)) if std::ptr::eq(seen, tool.as_ptr()) => row,
                _ => {
                    let row = self.tool_row(tool);
                    cursor.last_tool = Some((tool.as_ptr(), row));
                    row
                }
            },
        };
        // Every row has SLOTS series and `slot < SLOTS`: always found.
        if let Some(series) = self.rows.get_mut(row * SLOTS + slot) {
            series.push(capacity, point);
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
