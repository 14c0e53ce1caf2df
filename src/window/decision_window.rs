use super::WINDOW;

/// The last [`WINDOW`] accept/reject decisions, one bit each.
///
/// ```
/// use composite_metrics::window::DecisionWindow;
/// let mut w = DecisionWindow::new();
/// for i in 0..10 {
///     w.push(i % 2 == 0);
/// }
/// assert_eq!(w.acceptance_rate(), Some(50.0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionWindow {
    bits: u128,
    len: u8,
}

const MASK: u128 = (1u128 << WINDOW) - 1;

impl DecisionWindow {
    /// An empty window.
    pub const fn new() -> Self {
        Self { bits: 0, len: 0 }
    }

    /// Appends a decision (`true`: accepted), evicting the oldest when full.
    pub fn push(&mut self, accepted: bool) {
        self.bits = ((self.bits << 1) | u128::from(accepted)) & MASK;
        if usize::from(self.len) < WINDOW {
            self.len += 1;
        }
    }

    /// How many decisions it holds.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many of them are acceptances.
    pub fn accepted(&self) -> usize {
        self.bits.count_ones() as usize
    }

    /// Accepted share, %, or `None` when empty.
    pub fn acceptance_rate(&self) -> Option<f64> {
        (self.len > 0).then(|| 100.0 * self.accepted() as f64 / f64::from(self.len))
    }
}
