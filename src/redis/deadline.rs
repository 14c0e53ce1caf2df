//! Waiting against a deadline: the time left, socket timeouts kept when
//! close enough, and connecting on a helper thread the caller stops waiting
//! for.

use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ::redis::RedisError;

use super::error::map_error;
use crate::error::BackendError;

/// A socket timeout already set within this much of the wanted one is
/// kept: on the usual path (a short request sent without blocking) this
/// saves two system calls per request, and moves no wait by more than this
/// (a wait may end this much early, or late).
const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

/// Whether a socket timeout set to `current` can stay for a wait of `want`.
pub(crate) fn keeps(current: Option<Duration>, want: Duration) -> bool {
    current.is_some_and(|c| c.abs_diff(want) <= TIMEOUT_SLACK)
}

/// The time left until `deadline`, or a timeout error when none is left.
pub(crate) fn left(deadline: Instant) -> Result<Duration, RedisError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(RedisError::from(io::Error::from(io::ErrorKind::TimedOut)))
    } else {
        Ok(d)
    }
}

/// Runs `connect` (which opens sockets) on a helper thread named `thread`,
/// waiting for it until `deadline` at most: name resolution and the client
/// library's per-address connect timeouts cannot stretch the wait. An
/// attempt that misses the deadline is abandoned; its thread ends when the
/// library gives up. `connect` gets the time that was left when it started.
pub(crate) fn connect_within<T: Send + 'static>(
    thread: &str,
    deadline: Instant,
    connect: impl FnOnce(Duration) -> Result<T, RedisError> + Send + 'static,
) -> Result<T, BackendError> {
    const OP: &str = "connect";
    let budget = left(deadline).map_err(|e| map_error(OP, e))?;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(thread.to_owned())
        .spawn(move || {
            // The receiver may be gone (deadline passed): nothing to do then.
            let _ = tx.send(connect(budget));
        })
        .map_err(|e| BackendError::Connection {
            op: OP,
            source: Box::new(e),
        })?;
    match rx.recv_timeout(budget) {
        Ok(result) => result.map_err(|e| map_error(OP, e)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(BackendError::Timeout { op: OP }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(BackendError::Connection {
            op: OP,
            source: "the connect thread ended without an answer".into(),
        }),
    }
}
