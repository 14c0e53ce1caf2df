//! The key layout of one namespace, and why no two logical keys can be equal.
//!
//! Every key is `{ns}:` followed by either
//!
//! - a **fixed name** with no `:` in it (`totals`, `latency`, `meta`, ...), or
//! - a **family tag** with no `:` in it, then `:`, then a caller's id
//!   (`s:<session id>`, `e:<event id>`, ...), the id taken byte for byte.
//!
//! The namespace cannot hold `{` or `}` ([`RedisConfig::validate`] rejects
//! them), so the first `}` of a key ends its namespace: two different
//! namespaces never share a key. Within a namespace, a key whose rest has no
//! `:` is a fixed name; otherwise the text before its first `:` is the family
//! tag and the text after it is the id. Tags are distinct and no fixed name
//! contains `:`, so the decoding is unique: the encoding is injective for any
//! ids, `:`, `{`, `}`, `*`, newlines, NUL and non-ASCII included.
//!
//! [`RedisConfig::validate`]: super::RedisConfig::validate

use crate::state::Scope;

/// Family tag: a session's hash.
pub(crate) const SESSION: &str = "s";
/// Family tag: a session's decision list (the last 100 explicit decisions).
pub(crate) const SESSION_DECISIONS: &str = "d";
/// Family tag: a session-scope calculation lock.
pub(crate) const SESSION_LOCK: &str = "l";
/// Family tag: a session-scope "last computed" marker.
pub(crate) const SESSION_LAST: &str = "m";
/// Family tag: a session-scope fencing generation.
pub(crate) const SESSION_FENCE: &str = "f";
/// Family tag: a tool's counters (a hash).
pub(crate) const TOOL: &str = "t";
/// Family tag: an applied event id (deduplication within the horizon).
pub(crate) const EVENT_ID: &str = "e";
/// Family tag: a [`RedisSink`](crate::sink::RedisSink) series.
pub(crate) const SERIES: &str = "series";
/// Family tag: the newest fencing generation a
/// [`RedisSink`](crate::sink::RedisSink) recorded for a session's composite.
pub(crate) const SINK_GENERATION: &str = "g";

/// Every family tag, for the disjointness test.
#[cfg(test)]
pub(crate) const FAMILIES: [&str; 9] = [
    SESSION,
    TOOL,
    SESSION_DECISIONS,
    SESSION_LOCK,
    SESSION_LAST,
    SESSION_FENCE,
    EVENT_ID,
    SERIES,
    SINK_GENERATION,
];

/// The key names of one namespace, built once.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
    pub(crate) totals: String,
    pub(crate) latency: String,
    pub(crate) decisions: String,
    pub(crate) rate: String,
    pub(crate) sessions: String,
    /// The names of the tools with counters (a set).
    pub(crate) tools: String,
    pub(crate) lock: String,
    pub(crate) last: String,
    pub(crate) fence: String,
    pub(crate) calc_log: String,
    /// The namespace's epoch: created once, never expires; its absence means
    /// the namespace's state was lost.
    pub(crate) meta: String,
    /// [`RedisSink`](crate::sink::RedisSink)'s latest values.
    pub(crate) latest: String,
    /// The newest fencing generation [`RedisSink`](crate::sink::RedisSink)
    /// recorded for the global composite.
    pub(crate) latest_generation: String,
}

/// The fixed names (none contains `:`), for the disjointness test.
#[cfg(test)]
pub(crate) const FIXED: [&str; 13] = [
    "totals",
    "latency",
    "decisions",
    "rate",
    "sessions",
    "tools",
    "lock",
    "last",
    "fence",
    "calc_log",
    "meta",
    "latest",
    "latest_generation",
];

impl Keys {
    /// The keys under `prefix` (`{ns}:`, from [`RedisConfig::key_prefix`](super::RedisConfig::key_prefix)).
    pub(crate) fn new(prefix: String) -> Self {
        let k = |name: &str| format!("{prefix}{name}");
        Self {
            totals: k("totals"),
            latency: k("latency"),
            decisions: k("decisions"),
            rate: k("rate"),
            sessions: k("sessions"),
            tools: k("tools"),
            lock: k("lock"),
            last: k("last"),
            fence: k("fence"),
            calc_log: k("calc_log"),
            meta: k("meta"),
            latest: k("latest"),
            latest_generation: k("latest_generation"),
            prefix,
        }
    }

    /// The key of `id` in the family `tag`: `{ns}:<tag>:<id>`.
    pub(crate) fn family(&self, tag: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + tag.len() + 1 + id.len());
        key.push_str(&self.prefix);
        key.push_str(tag);
        key.push(':');
        key.push_str(id);
        key
    }

    /// A session's hash.
    pub(crate) fn session(&self, id: &str) -> String {
        self.family(SESSION, id)
    }

    /// A tool's counters.
    pub(crate) fn tool(&self, name: &str) -> String {
        self.family(TOOL, name)
    }

    /// A session's decision list.
    pub(crate) fn session_decisions(&self, id: &str) -> String {
        self.family(SESSION_DECISIONS, id)
    }

    /// The deduplication key of an event id.
    pub(crate) fn event_id(&self, id: &str) -> String {
        self.family(EVENT_ID, id)
    }

    /// The scope as the calculation log writes it: `*` for the global
    /// scope, else the session id with every byte outside `A-Z a-z 0-9 - . _ ~`
    /// written as `%XX` (so an entry is one line of space-separated
    /// fields whatever the id, and no session reads as `*`).
    pub(crate) fn log_scope(scope: Scope<'_>) -> String {
        let Scope::Session(id) = scope else {
            return "*".to_owned();
        };
        let mut out = String::with_capacity(id.len());
        for &b in id.as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The lock of a scope.
    pub(crate) fn lock_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::Global => self.lock.clone(),
            Scope::Session(id) => self.family(SESSION_LOCK, id),
        }
    }

    /// The "last computed" marker of a scope.
    pub(crate) fn last_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::Global => self.last.clone(),
            Scope::Session(id) => self.family(SESSION_LAST, id),
        }
    }

    /// Where [`RedisSink`](crate::sink::RedisSink) keeps the newest fencing
    /// generation it recorded for a scope's composite.
    pub(crate) fn sink_generation_of(&self, session: Option<&str>) -> String {
        match session {
            None => self.latest_generation.clone(),
            Some(id) => self.family(SINK_GENERATION, id),
        }
    }

    /// The fencing generation counter of a scope.
    pub(crate) fn fence_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::Global => self.fence.clone(),
            Scope::Session(id) => self.family(SESSION_FENCE, id),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Every key of every family for these ids, labelled with what it means.
    fn all_keys(ns: &str, ids: &[String]) -> Vec<(String, String)> {
        let k = Keys::new(format!("{{{ns}}}:"));
        let mut out: Vec<(String, String)> = FIXED
            .iter()
            .map(|name| (format!("{{{ns}}}:{name}"), format!("{ns}/fixed/{name}")))
            .collect();
        for id in ids {
            for tag in FAMILIES {
                out.push((k.family(tag, id), format!("{ns}/{tag}/{id}")));
            }
            out.push((k.session(id), format!("{ns}/{SESSION}/{id}")));
            out.push((
                k.session_decisions(id),
                format!("{ns}/{SESSION_DECISIONS}/{id}"),
            ));
            out.push((k.event_id(id), format!("{ns}/{EVENT_ID}/{id}")));
            for (key, tag) in [
                (k.lock_of(Scope::Session(id)), SESSION_LOCK),
                (k.last_of(Scope::Session(id)), SESSION_LAST),
                (k.fence_of(Scope::Session(id)), SESSION_FENCE),
                (k.sink_generation_of(Some(id)), SINK_GENERATION),
            ] {
                out.push((key, format!("{ns}/{tag}/{id}")));
            }
        }
        for (key, name) in [
            (k.lock_of(Scope::Global), "lock"),
            (k.last_of(Scope::Global), "last"),
            (k.fence_of(Scope::Global), "fence"),
            (k.sink_generation_of(None), "latest_generation"),
        ] {
            out.push((key, format!("{ns}/fixed/{name}")));
        }
        out
    }

    #[test]
    fn fixed_names_and_tags_are_distinct_and_colon_free() {
        let mut seen = std::collections::HashSet::new();
        for name in FIXED.iter().chain(FAMILIES.iter()) {
            assert!(!name.contains(':'), "{name}");
            assert!(!name.is_empty());
        }
        for name in FIXED {
            assert!(seen.insert(name), "fixed name {name} twice");
        }
        let mut tags = std::collections::HashSet::new();
        for tag in FAMILIES {
            assert!(tags.insert(tag), "tag {tag} twice");
        }
    }

    #[test]
    fn known_collisions_of_the_old_layout_are_gone() {
        let k = Keys::new("{ns}:".to_owned());
        // Session `a:dec`'s hash was session `a`'s decision list.
        assert_ne!(k.session("a:dec"), k.session_decisions("a"));
        assert_ne!(k.session("a"), k.session_decisions("a"));
        assert_ne!(k.lock_of(Scope::Session("")), k.lock);
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z:{}*\n\0]{0,6}",
            any::<String>(),
            Just(String::new()),
            Just("s:x".to_owned()),
            Just("totals".to_owned()),
        ]
    }

    fn namespace() -> impl Strategy<Value = String> {
        // Any namespace validation accepts: non-empty, no braces.
        "[^{}]{1,8}"
    }

    proptest! {
        /// Distinct logical keys (namespace, family, id) never map to the same
        /// Redis key, within a namespace or across two.
        #[test]
        fn key_families_are_pairwise_disjoint(
            ns1 in namespace(),
            ns2 in namespace(),
            ids in proptest::collection::vec(id(), 1..6),
        ) {
            let mut owner: HashMap<String, String> = HashMap::new();
            for ns in [&ns1, &ns2] {
                for (key, meaning) in all_keys(ns, &ids) {
                    if let Some(other) = owner.insert(key.clone(), meaning.clone()) {
                        prop_assert_eq!(&other, &meaning, "key {:?}", key);
                    }
                }
            }
        }
    }
}
