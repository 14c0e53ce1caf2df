/// Whose composite a calculator computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompositeScope {
    /// One score for everything in the backend (the default).
    #[default]
    Global,
    /// One score per session: scheduling decisions are kept per session id,
    /// and the score reads that session's rates.
    PerSession,
}
