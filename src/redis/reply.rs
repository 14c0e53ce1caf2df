//! Reading script replies without panicking on a malformed one.

use ::redis::Value;

use crate::error::BackendError;

/// A reply that does not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply: {0}")]
pub(crate) struct Unexpected(pub(crate) String);

pub(crate) fn unexpected(op: &'static str, what: &str) -> BackendError {
    BackendError::Other {
        op,
        source: Box::new(Unexpected(what.to_owned())),
    }
}

pub(crate) fn array<'a>(op: &'static str, v: &'a Value) -> Result<&'a [Value], BackendError> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(&[]),
        _ => Err(unexpected(op, "expected an array")),
    }
}

pub(crate) fn int(op: &'static str, v: &Value) -> Result<i64, BackendError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(op, "expected an integer")),
        _ => Err(unexpected(op, "expected an integer")),
    }
}

pub(crate) fn uint(op: &'static str, v: &Value) -> Result<u64, BackendError> {
    u64::try_from(int(op, v)?).map_err(|_| unexpected(op, "expected a non-negative integer"))
}

pub(crate) fn text<'a>(op: &'static str, v: &'a Value) -> Result<&'a str, BackendError> {
    match v {
        Value::BulkString(b) => {
            std::str::from_utf8(b).map_err(|_| unexpected(op, "expected UTF-8 text"))
        }
        Value::SimpleString(s) => Ok(s),
        _ => Err(unexpected(op, "expected a string")),
    }
}

pub(crate) fn at<'a>(
    op: &'static str,
    items: &'a [Value],
    i: usize,
) -> Result<&'a Value, BackendError> {
    items
        .get(i)
        .ok_or_else(|| unexpected(op, "reply too short"))
}
