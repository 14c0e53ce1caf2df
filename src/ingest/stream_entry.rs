//! From a stream entry's fields to an event.

use serde_json::{Map, Value};

use super::{EntryError, StreamConfig};
use crate::event::Event;

/// Fields of flat entries whose values are taken as JSON strings verbatim.
const STRING_FIELDS: [&str; 5] = [
    "event_type",
    "session_id",
    "timestamp",
    "tool_name",
    "event_id",
];

fn utf8(bytes: &[u8]) -> Result<&str, EntryError> {
    std::str::from_utf8(bytes).map_err(|_| EntryError::NotUtf8 {
        field: String::from_utf8_lossy(bytes).into_owned(),
    })
}

/// Parses one entry: the JSON in `config.json_field` if the entry has that
/// field, otherwise the flat fields. Without an `event_id` (in the JSON, or
/// as an entry field beside it), the event id is `<stream>:<entry id>`.
pub(crate) fn parse_entry(
    config: &StreamConfig,
    entry_id: &str,
    fields: &[(Vec<u8>, Vec<u8>)],
) -> Result<Event, EntryError> {
    let json_field = config.json_field().as_bytes();
    let mut event = match fields.iter().find(|(k, _)| k.as_slice() == json_field) {
        Some((_, json)) => {
            let json = std::str::from_utf8(json).map_err(|_| EntryError::NotUtf8 {
                field: config.json_field().to_owned(),
            })?;
            Event::from_json(json)?
        }
        None => {
            let mut object = Map::new();
            for (key, value) in fields {
                let key = utf8(key)?;
                let text = std::str::from_utf8(value).map_err(|_| EntryError::NotUtf8 {
                    field: key.to_owned(),
                })?;
                let value = if STRING_FIELDS.contains(&key) {
                    Value::String(text.to_owned())
                } else {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
                };
                object.insert(key.to_owned(), value);
            }
            Event::from_json(&Value::Object(object).to_string())?
        }
    };
    if event.event_id.is_none() {
        let id_field = fields.iter().find(|(k, _)| k.as_slice() == b"event_id");
        let id = match id_field {
            Some((_, v)) => std::str::from_utf8(v)
                .map_err(|_| EntryError::NotUtf8 {
                    field: "event_id".to_owned(),
                })?
                .to_owned(),
            None => config.entry_event_id(entry_id),
        };
        event = event.with_event_id(id);
        event.validate()?;
    }
    Ok(event)
}
