//! Mapping the client library's errors, and the error replies of the
//! crate's scripts, to the crate's [`BackendError`].

use ::redis::RedisError;

use super::RedisConfig;
use crate::error::BackendError;

/// The error code the record script answers when a limit would be exceeded.
const CAPACITY: &str = "CMCAPACITY";

/// Maps a client error to the crate's backend error.
pub(crate) fn map_error(op: &'static str, e: RedisError) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout { op };
    }
    #[cfg(feature = "tls")]
    if let Some(source) = tls_error(&e) {
        return BackendError::Tls { op, source };
    }
    match e.code() {
        Some("LOADING") => return BackendError::Loading { op },
        Some("NOAUTH" | "WRONGPASS") => {
            return BackendError::Auth {
                op,
                source: Box::new(e),
            }
        }
        _ => {}
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        BackendError::Connection {
            op,
            source: Box::new(e),
        }
    } else {
        BackendError::Other {
            op,
            source: Box::new(e),
        }
    }
}

/// Whether `e` leaves the connection unusable (a timeout, an I/O error, a
/// dropped connection, ...): it is dropped, and the next call opens another.
pub(crate) fn breaks_connection(e: &RedisError) -> bool {
    e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// Whether the server closed the connection (a restart, an idle timeout):
/// a request on a reused connection is then tried once more on a new one.
pub(crate) fn closed_by_server(e: &RedisError) -> bool {
    e.is_connection_dropped() && !e.is_timeout()
}

/// Maps a client error of an operation to the crate's backend error, the
/// record script's capacity refusal included.
pub(crate) fn map_reply_error(
    config: &RedisConfig,
    op: &'static str,
    e: RedisError,
) -> BackendError {
    if e.code() == Some(CAPACITY) {
        return match e.detail() {
            Some(d) if d.starts_with("tools") => BackendError::CapacityExceeded {
                what: "tool names",
                limit: config.max_tools(),
            },
            _ => BackendError::CapacityExceeded {
                what: "sessions",
                limit: config.max_sessions(),
            },
        };
    }
    map_error(op, e)
}

/// The TLS failure behind `e`, if it is one: the `rustls` error carried by
/// the I/O error (a certificate the CA did not sign, an alert from the
/// server asking for a client certificate, ...).
#[cfg(feature = "tls")]
fn tls_error(e: &RedisError) -> Option<Box<dyn std::error::Error + Send + Sync>> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    // The client library keeps an I/O error as `Arc<dyn Error>` and gives
    // that `Arc` as the source.
    let source = std::error::Error::source(e)?;
    let io = match source.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>()?,
        None => source.downcast_ref::<std::io::Error>()?,
    };
    let inner = io.get_ref()?;
    let tls = inner.downcast_ref::<rustls::Error>()?;
    Some(Box::new(tls.clone()))
}

/// Maps the error replies the scripts and the server give before changing
/// anything: `CMWRONGTYPE <i>` / `CMDATA <i>` (`KEYS[i]` holds a value of
/// another type or form) and `WRONGTYPE` to [`BackendError::WrongType`],
/// `OOM` to [`BackendError::OutOfMemory`]. `keys` are the script's `KEYS`.
/// Anything else is returned as it was.
pub(crate) fn typed(op: &'static str, keys: &[&str], e: BackendError) -> BackendError {
    let Some(re) = server_error(&e) else {
        return e;
    };
    match re.code() {
        Some("CMWRONGTYPE" | "CMDATA") => {
            let key = re
                .detail()
                .and_then(|d| d.trim().parse::<usize>().ok())
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| keys.get(i))
                .map_or_else(|| "(unknown)".to_owned(), |k| (*k).to_owned());
            BackendError::WrongType { op, key }
        }
        Some("WRONGTYPE") => BackendError::WrongType {
            op,
            key: "(one of the operation's keys)".to_owned(),
        },
        Some("OOM") => BackendError::OutOfMemory { op },
        _ => e,
    }
}

/// The server's error reply behind `e`, if it is one.
fn server_error(e: &BackendError) -> Option<&RedisError> {
    match e {
        BackendError::Other { source, .. } => source.downcast_ref::<RedisError>(),
        _ => None,
    }
}

/// The code of the server's error reply behind `e` (`NOGROUP`, ...), if any.
pub(crate) fn server_code(e: &BackendError) -> Option<&str> {
    server_error(e)?.code()
}
