use crate::state::Scope;

/// How a calculator divides its composite: one for everything, or one per
/// session. A setting (see [`Builder::scope`](crate::Builder::scope)); each
/// composite computed under it is then one [`Scope`]: [`Scope::Global`], or
/// [`Scope::Session`] of an event's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompositeScope {
    /// One score for everything in the backend (the default): every
    /// composite is [`Scope::Global`].
    #[default]
    Global,
    /// One score per session: scheduling decisions are kept per session id,
    /// and the score reads that session's rates ([`Scope::Session`]).
    PerSession,
}

impl CompositeScope {
    /// The composite an event of `session` counts toward under this setting.
    pub(crate) fn scope_of(self, session: &str) -> Scope<'_> {
        match self {
            Self::Global => Scope::Global,
            Self::PerSession => Scope::Session(session),
        }
    }
}
