use crate::state::Scope;

/// The key names of one namespace, built once.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
    pub(crate) totals: String,
    pub(crate) latency: String,
    pub(crate) decisions: String,
    pub(crate) rate: String,
    pub(crate) sessions: String,
    pub(crate) tool_runs: String,
    pub(crate) tool_ok: String,
    pub(crate) tool_known: String,
    pub(crate) lock: String,
    pub(crate) last: String,
    pub(crate) calc_log: String,
}

impl Keys {
    pub(crate) fn new(prefix: String) -> Self {
        let k = |name: &str| format!("{prefix}{name}");
        Self {
            totals: k("totals"),
            latency: k("latency"),
            decisions: k("decisions"),
            rate: k("rate"),
            sessions: k("sessions"),
            tool_runs: k("tool_runs"),
            tool_ok: k("tool_ok"),
            tool_known: k("tool_known"),
            lock: k("lock"),
            last: k("last"),
            calc_log: k("calc_log"),
            prefix,
        }
    }

    /// A session's hash.
    pub(crate) fn session(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    /// The lock of a scope.
    pub(crate) fn lock_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::Global => self.lock.clone(),
            Scope::Session(id) => format!("{}:s:{id}", self.lock),
        }
    }

    /// The "last computed" marker of a scope.
    pub(crate) fn last_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::Global => self.last.clone(),
            Scope::Session(id) => format!("{}:s:{id}", self.last),
        }
    }
}
