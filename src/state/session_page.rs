use std::fmt;
use std::sync::Arc;

/// Where a paged session listing goes on
/// ([`StateBackend::active_sessions_page`](super::StateBackend::active_sessions_page)).
///
/// Opaque: take it from one page's [`next`](SessionPage::next) and hand it to
/// the next call of the same backend. A backend of your own makes one with
/// [`SessionCursor::new`] (any text it can resume from, e.g. a scan cursor
/// or the last id served) and reads it back with [`token`](Self::token).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCursor {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// A backend's own resume point.
    Token(String),
    /// The default implementation's: a snapshot taken by the first page, and
    /// the index of the next session in it.
    Snapshot { ids: Arc<[Arc<str>]>, next: usize },
}

impl SessionCursor {
    /// A cursor holding a backend's own resume point.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            repr: Repr::Token(token.into()),
        }
    }

    /// The resume point a backend stored with [`new`](Self::new); `None` for
    /// a cursor of the default implementation.
    pub fn token(&self) -> Option<&str> {
        match &self.repr {
            Repr::Token(t) => Some(t),
            Repr::Snapshot { .. } => None,
        }
    }

    pub(crate) fn snapshot(ids: Arc<[Arc<str>]>, next: usize) -> Self {
        Self {
            repr: Repr::Snapshot { ids, next },
        }
    }

    pub(crate) fn as_snapshot(&self) -> Option<(&Arc<[Arc<str>]>, usize)> {
        match &self.repr {
            Repr::Snapshot { ids, next } => Some((ids, *next)),
            Repr::Token(_) => None,
        }
    }
}

impl fmt::Debug for SessionCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Token(t) => f.debug_tuple("SessionCursor").field(t).finish(),
            Repr::Snapshot { ids, next } => f
                .debug_struct("SessionCursor")
                .field("snapshot_len", &ids.len())
                .field("next", next)
                .finish(),
        }
    }
}

/// One page of a session listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPage {
    /// Sessions alive when the page was read. A page can hold fewer than the
    /// limit asked for, even none, before the listing's end.
    pub sessions: Vec<Arc<str>>,
    /// Where the listing goes on; `None` when it is complete.
    pub next: Option<SessionCursor>,
}
