use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A lock holder's identity: a worker releases only a lock whose token it holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockToken(u64);

impl LockToken {
    /// A token no other live worker holds: process-seeded randomness mixed
    /// with a process-wide counter and the process id.
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        Self(h.finish())
    }

    /// A token with a chosen value (tests, replays).
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }

    /// The token's value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockToken({:016x})", self.0)
    }
}

impl fmt::Display for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
