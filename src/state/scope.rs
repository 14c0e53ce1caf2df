/// One composite: the whole system's, or one session's. Locks, "last
/// computed" markers, fencing generations and the score's inputs are kept
/// per `Scope`. Which of the two a calculator computes is its setting,
/// [`CompositeScope`](crate::CompositeScope).
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
