/// The `payload` object of an [`Event`](super::Event).
///
/// Every field is optional, and absent means *unknown*: success and
/// acceptance rates count only explicit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Payload {
    /// Whether a tool run succeeded.
    pub success: Option<bool>,
    /// Whether an edit was accepted (`false`: rejected).
    pub accepted: Option<bool>,
    /// Length of a user prompt, in characters.
    pub prompt_length: Option<u64>,
}
