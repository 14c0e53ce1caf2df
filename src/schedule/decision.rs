use crate::state::LockToken;

/// A scheduler's answer for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Do not compute the composite now.
    Skip,
    /// Compute it now, then hand the ticket back to
    /// [`CompositeScheduler::on_computed`](super::CompositeScheduler::on_computed).
    Compute(Ticket),
}

/// Proof of a decision to compute; carries the lock token when the scheduler
/// took a lock that must be released afterwards, and the lock's fencing
/// generation, which the calculator stamps on the composite
/// ([`Metric::generation`](crate::Metric::generation)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticket {
    lock: Option<LockToken>,
    generation: Option<u64>,
}

impl Ticket {
    /// A ticket that holds no lock.
    pub const fn free() -> Self {
        Self {
            lock: None,
            generation: None,
        }
    }

    /// A ticket holding the lock taken with `token`.
    pub const fn locked(token: LockToken) -> Self {
        Self {
            lock: Some(token),
            generation: None,
        }
    }

    /// The same ticket, carrying the fencing generation of its lock
    /// ([`LockOutcome::Acquired`](crate::state::LockOutcome::Acquired)).
    pub const fn with_generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// The lock token, if a lock was taken.
    pub fn lock(&self) -> Option<LockToken> {
        self.lock
    }

    /// The fencing generation of the lock, if one was taken.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }
}
