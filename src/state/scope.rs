/// Whose composite: the whole system's, or one session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope<'a> {
    /// Everything recorded in the backend.
    Global,
    /// One session.
    Session(&'a str),
}

impl Scope<'_> {
    /// The session id, for [`Scope::Session`].
    pub fn session(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Session(id) => Some(id),
        }
    }
}
