//! Shared label strings. Alerts from Prometheus repeat the same names and
//! most of the same values (`job`, `severity`, `env`...) across thousands of
//! alerts; storing each distinct string once is most of Herald's memory
//! advantage at 100k alerts.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 32;

pub struct Interner {
    shards: Vec<Mutex<HashSet<Arc<str>, fnv::FnvBuildHasher>>>,
    hasher: fnv::FnvBuildHasher,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashSet::default()))
                .collect(),
            hasher: fnv::FnvBuildHasher::default(),
        }
    }
}

impl Interner {
    pub fn intern(&self, s: &str) -> Arc<str> {
        let mut set = self.shards[(self.hasher.hash_one(s) as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(a) = set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        set.insert(a.clone());
        a
    }

    /// Forgets strings no alert uses any more; returns how many.
    pub fn gc(&self) -> usize {
        let mut removed = 0;
        for s in &self.shards {
            let mut set = s.lock().unwrap_or_else(|e| e.into_inner());
            let before = set.len();
            set.retain(|a| Arc::strong_count(a) > 1);
            removed += before - set.len();
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_forgets() {
        let i = Interner::default();
        let a = i.intern("severity");
        let b = i.intern("severity");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(i.len(), 1);
        drop((a, b));
        assert_eq!(i.gc(), 1);
        assert!(i.is_empty());
    }
}
