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
    /// How the calculator divides its composite (the setting; the
    /// composite this event counts toward is [`state_scope`](Self::state_scope)).
    pub scope: CompositeScope,
    /// The shared backend, for coordination.
    pub backend: &'a dyn StateBackend,
}

impl<'a> EventContext<'a> {
    /// The composite this event counts toward: its [`Scope`] in the backend.
    pub fn state_scope(&self) -> Scope<'a> {
        self.scope.scope_of(self.session)
    }
}
