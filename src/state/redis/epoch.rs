//! The namespace's epoch: how a worker notices that the state it wrote to
//! was lost (a restart without persistence, `FLUSHALL`, a failover to an
//! empty replica), instead of carrying on silently from zero.
//!
//! # Protocol
//!
//! - `{ns}:meta` holds a random token, the epoch. It never expires and only
//!   the scripts write it.
//! - At connect, a worker runs `epoch_init.lua`: the key is set to a fresh
//!   token if missing, and the worker adopts what it holds (the *known*
//!   epoch).
//! - Every script that reads or writes the namespace's state starts with
//!   `cm_epoch` from `prelude.lua`, given the worker's known epoch and a
//!   fresh *candidate* token (unique per call). Before anything else:
//!   - key missing: the state was lost. The script sets it to the candidate
//!     and answers `{1, candidate}`;
//!   - key holds another epoch: another worker saw the loss first. The
//!     script answers `{2, current}`;
//!   - key holds the known epoch: the script goes on; its own reply starts
//!     with `0`.
//! - [`Epoch::check`] turns `1`/`2` into [`BackendError::StateReset`] and
//!   adopts the epoch the script answered, so each worker reports one loss
//!   once, and its next call works on the fresh state (the call that
//!   reported it applied nothing).
//!
//! Candidates are fresh per call so that two losses in a row are both seen:
//! a token set after one loss is never set again after the next.
//!
//! To reuse in a script: prepend `prelude.lua` (see [`with_prelude!`]),
//! declare the meta key in `KEYS`, pass the two tokens, start with
//! `local reset = cm_epoch(<meta index>, known, candidate) if reset then
//! return reset end`, begin the script's own reply with `0`, and read it with
//! [`Epoch::check`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::Value;
use parking_lot::Mutex;

use crate::error::BackendError;
use crate::redis::{array, at, int, text, unexpected};

/// A script's body with `prelude.lua` (flags shebang, `cm_wrongtype`,
/// `cm_epoch`) in front.
macro_rules! with_prelude {
    ($file:literal) => {
        concat!(include_str!("prelude.lua"), include_str!($file))
    };
}
pub(crate) use with_prelude;

/// The epoch a worker knows, and a source of fresh candidates.
#[derive(Debug)]
pub(crate) struct Epoch {
    known: Mutex<String>,
    seed: u64,
    next: AtomicU64,
}

impl Epoch {
    /// A worker's epoch, before [`adopt`](Self::adopt)ing the server's.
    pub(crate) fn new() -> Self {
        // A per-process random key (std seeds it from the OS), mixed with
        // the time: distinct workers draw distinct seeds.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = RandomState::new().hash_one(nanos);
        Self {
            known: Mutex::new(String::new()),
            seed,
            next: AtomicU64::new(0),
        }
    }

    /// A token never handed out before by this worker (and, with its random
    /// seed, by any other).
    pub(crate) fn candidate(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n:x}", self.seed)
    }

    /// Appends a fresh candidate (as [`candidate`](Self::candidate) makes
    /// it) to `out`, without allocating once `out` has room.
    pub(crate) fn write_candidate(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{:016x}-{n:x}", self.seed);
    }

    /// Appends the epoch this worker knows to `out`.
    pub(crate) fn write_known(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.known.lock().as_bytes());
    }

    /// The epoch this worker knows.
    pub(crate) fn known(&self) -> String {
        self.known.lock().clone()
    }

    /// Takes `epoch` as the known one.
    pub(crate) fn adopt(&self, epoch: &str) {
        let mut known = self.known.lock();
        known.clear();
        known.push_str(epoch);
    }

    /// Reads a script's reply that starts with the epoch code: the rest of
    /// it when the epoch matched; [`BackendError::StateReset`] (having
    /// adopted the server's epoch) when it did not.
    pub(crate) fn check<'a>(
        &self,
        op: &'static str,
        reply: &'a Value,
    ) -> Result<&'a [Value], BackendError> {
        let items = array(op, reply)?;
        match int(op, at(op, items, 0)?)? {
            0 => Ok(items.get(1..).unwrap_or(&[])),
            1 | 2 => {
                self.adopt(text(op, at(op, items, 1)?)?);
                Err(BackendError::StateReset { op })
            }
            _ => Err(unexpected(op, "unknown epoch code")),
        }
    }
}
