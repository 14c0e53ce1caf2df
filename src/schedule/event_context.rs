use std::sync::Arc;
use std::time::Duration;

use crate::schedule::CompositeScope;
use crate::state::{Scope, StateBackend};

/// What a scheduler sees for one event.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    /// The calculator's clock, read once for this event.
    pub now: Duration,
    /// The event's session.
    pub session: &'a Arc<str>,
    /// Whose composite is scheduled.
    pub scope: CompositeScope,
    /// The shared backend, for coordination.
    pub backend: &'a dyn StateBackend,
}

impl<'a> EventContext<'a> {
    /// The backend scope this event's composite is about.
    pub fn state_scope(&self) -> Scope<'a> {
        match self.scope {
            CompositeScope::Global => Scope::Global,
            CompositeScope::PerSession => Scope::Session(self.session),
        }
    }
}
