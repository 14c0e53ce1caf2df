use std::time::Duration;

use crate::error::ConfigError;

/// How a [`Batcher`](super::Batcher) queues and batches events.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `workers` | 1 | worker threads, each with its own calculator |
/// | `capacity` | 10 000 | events the queue holds before senders wait (backpressure) |
/// | `max_batch` | 100 | most events in one `process_batch` call |
/// | `max_delay` | 5 ms | longest an event waits for its batch to fill |
/// | `drop_timeout` | 5 s | longest `Drop` of the last handle waits for the flush |
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::ingest::BatcherConfig;
///
/// let config = BatcherConfig::default()
///     .with_workers(2)
///     .with_max_batch(200)
///     .with_max_delay(Duration::from_millis(2));
/// assert!(config.validate().is_ok());
/// assert!(BatcherConfig::default().with_max_batch(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherConfig {
    workers: usize,
    capacity: usize,
    max_batch: usize,
    max_delay: Duration,
    drop_timeout: Duration,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            capacity: 10_000,
            max_batch: 100,
            max_delay: Duration::from_millis(5),
            drop_timeout: Duration::from_secs(5),
        }
    }
}

impl BatcherConfig {
    /// Worker threads (at least 1); each owns one calculator built by the
    /// factory given to [`Batcher::start`](super::Batcher::start).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Events the queue holds (at least 1). When it is full,
    /// [`try_send`](super::Batcher::try_send) answers
    /// [`TrySendError::Full`](super::TrySendError::Full) and the blocking and
    /// async sends wait for room.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most events one `process_batch` call carries (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// How long a worker waits, after the oldest queued event of a batch was
    /// accepted, for the batch to fill before it sends what it has. Zero
    /// sends whatever is queued at once.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// How long dropping the last handle waits for the workers to flush the
    /// queue. Past it, `Drop` returns and the workers go on flushing in the
    /// background (their threads are detached, nothing is discarded).
    pub fn with_drop_timeout(mut self, timeout: Duration) -> Self {
        self.drop_timeout = timeout;
        self
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queue capacity in events.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Most events per batch.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Longest wait for a batch to fill.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Longest wait of `Drop`.
    pub fn drop_timeout(&self) -> Duration {
        self.drop_timeout
    }

    /// Checks that `workers`, `capacity` and `max_batch` are at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("workers", self.workers),
            ("capacity", self.capacity),
            ("max_batch", self.max_batch),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        Ok(())
    }
}
