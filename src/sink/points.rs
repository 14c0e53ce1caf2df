use std::time::Duration;

/// The last `capacity` points of one series: a ring that, once full,
/// overwrites its oldest point in place (one store, no shifting).
#[derive(Debug, Default, Clone)]
pub(crate) struct Points {
    buf: Vec<(Duration, f64)>,
    /// Where the oldest point is, once full (the next to be overwritten).
    head: usize,
}

impl Points {
    pub(crate) const fn new() -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
        }
    }

    /// Appends `point`, dropping the oldest when `capacity` (at least 1) are held.
    pub(crate) fn push(&mut self, capacity: usize, point: (Duration, f64)) {
        if self.buf.len() < capacity {
            self.buf.push(point);
            return;
        }
        if let Some(slot) = self.buf.get_mut(self.head) {
            *slot = point;
        }
        self.head += 1;
        if self.head >= self.buf.len() {
            self.head = 0;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The newest point.
    pub(crate) fn last(&self) -> Option<(Duration, f64)> {
        let newest = self
            .head
            .checked_sub(1)
            .unwrap_or(self.buf.len().checked_sub(1)?);
        self.buf.get(newest).copied()
    }

    /// The points, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Duration, f64)> + '_ {
        let (newer, older) = self.buf.split_at(self.head.min(self.buf.len()));
        older.iter().chain(newer).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::Points;
    use std::time::Duration;

    #[test]
    fn keeps_the_last_capacity_points_oldest_first() {
        let mut p = Points::new();
        assert!(p.is_empty() && p.last().is_none());
        for i in 0..10u64 {
            p.push(4, (Duration::from_secs(i), i as f64));
            let kept: Vec<f64> = p.iter().map(|(_, v)| v).collect();
            let from = i.saturating_sub(3);
            let expected: Vec<f64> = (from..=i).map(|v| v as f64).collect();
            assert_eq!(kept, expected);
            assert_eq!(p.last().map(|(_, v)| v), Some(i as f64));
        }
    }
}
