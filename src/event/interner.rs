use std::sync::Arc;

use foldhash::HashSet;

/// Shared copies of the session ids and tool names a calculator has parsed,
/// so that parsing a line of a known session and tool allocates nothing.
///
/// Bounded: past [`MAX`](Self::MAX) strings it starts afresh (the events
/// that hold copies keep them).
#[derive(Debug, Default)]
pub(crate) struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    /// The most strings it keeps.
    pub(crate) const MAX: usize = 4_096;

    /// A shared copy of `text`.
    pub(crate) fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.strings.get(text) {
            return Arc::clone(known);
        }
        if self.strings.len() >= Self::MAX {
            self.strings.clear();
        }
        let copy: Arc<str> = Arc::from(text);
        self.strings.insert(Arc::clone(&copy));
        copy
    }

    /// How many strings it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Interner;
    use std::sync::Arc;

    #[test]
    fn hands_out_one_copy_per_text_and_stays_bounded() {
        let mut names = Interner::default();
        let a = names.intern("bash");
        let b = names.intern("bash");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*names.intern("grep"), "grep");
        for i in 0..Interner::MAX + 10 {
            names.intern(&format!("s{i}"));
        }
        assert!(names.len() <= Interner::MAX);
        assert_eq!(&*a, "bash");
    }
}
