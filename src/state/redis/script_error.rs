//! Typed errors from what a script (or the server, before running it)
//! answered.

use ::redis::RedisError;

use crate::error::BackendError;

/// Maps the error replies the scripts and the server give before changing
/// anything: `CMWRONGTYPE <i>` / `CMDATA <i>` (`KEYS[i]` holds a value of
/// another type or form) and `WRONGTYPE` to [`BackendError::WrongType`],
/// `OOM` to [`BackendError::OutOfMemory`]. `keys` are the script's `KEYS`.
/// Anything else is returned as it was.
pub(crate) fn typed(op: &'static str, keys: &[&str], e: BackendError) -> BackendError {
    let BackendError::Other { source, .. } = &e else {
        return e;
    };
    let Some(re) = source.downcast_ref::<RedisError>() else {
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
