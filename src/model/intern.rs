//! Shared label strings. Alerts from Prometheus repeat the same names and
//! most of the same values (`job`, `severity`, `env`...) across thousands of
//! alerts; storing each distinct string once is most of Herald's memory
//! advantage at 100k alerts.

use std::collections::HashMap;

use hashbrown::HashTable;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 32;

/// A string's hash, computed once per lookup: the shard and the slot come
/// from it. With std's `HashSet` the text was hashed twice (FNV, a byte at
/// a time), once for the shard and once in the set; `intern` was then the
/// largest single cost of `POST /api/v2/alerts` (13% of Herald's samples:
/// 24 strings an alert).
fn hash(s: &str) -> u64 {
    xxhash_rust::xxh64::xxh64(s.as_bytes(), 0)
}

/// The shard of a hash, from bits the table does not use for the slot
/// (low bits) or the tag (top seven).
fn shard_of(h: u64) -> usize {
    ((h >> 32) as usize) % SHARDS
}

pub struct Interner {
    shards: Vec<Mutex<HashTable<Arc<str>>>>,
    /// The label-name slices of label sets (see `LabelSet`), by a hash of
    /// their interned names' addresses: the alerts of one rule share one.
    names: Vec<Mutex<NamesTable>>,
}

type NamesTable = HashMap<u64, Arc<[Arc<str>]>, fnv::FnvBuildHasher>;

impl Default for Interner {
    fn default() -> Self {
        Interner {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            names: (0..NAME_SHARDS)
                .map(|_| Mutex::new(NamesTable::default()))
                .collect(),
        }
    }
}

const NAME_SHARDS: usize = 8;

impl Interner {
    pub fn intern(&self, s: &str) -> Arc<str> {
        let h = hash(s);
        let mut set = self.shards[shard_of(h)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(a) = set.find(h, |a| **a == *s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        set.insert_unique(h, a.clone(), |a| hash(a));
        a
    }

    /// The shared slice holding `names`, which were interned here (names
    /// from elsewhere are kept as given: compared by address, they match
    /// no shared slice).
    pub(crate) fn names(&self, names: Vec<Arc<str>>) -> Arc<[Arc<str>]> {
        // The addresses identify interned strings: hashing them is cheaper
        // than hashing the text, and equal addresses mean equal names.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for n in &names {
            h ^= Arc::as_ptr(n).cast::<u8>() as usize as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        }
        h ^= names.len() as u64;
        let mut table = self.names[(h as usize) % NAME_SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match table.get(&h) {
            Some(have)
                if have.len() == names.len()
                    && have.iter().zip(&names).all(|(a, b)| Arc::ptr_eq(a, b)) =>
            {
                have.clone()
            }
            // Another slice with the same hash: this one is not shared.
            Some(_) => names.into(),
            None => {
                let shared: Arc<[Arc<str>]> = names.into();
                table.insert(h, shared.clone());
                shared
            }
        }
    }

    /// Forgets strings no alert uses any more; returns how many.
    pub fn gc(&self) -> usize {
        // Names slices first: they hold the strings they list.
        for t in &self.names {
            t.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, n| Arc::strong_count(n) > 1);
        }
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

    #[test]
    fn many_strings_each_once_across_growth() {
        let i = Interner::default();
        let texts: Vec<String> = (0..20_000).map(|n| format!("host-{n}:9100")).collect();
        let first: Vec<Arc<str>> = texts.iter().map(|t| i.intern(t)).collect();
        assert_eq!(i.len(), texts.len());
        for (t, a) in texts.iter().zip(&first) {
            let again = i.intern(t);
            assert!(Arc::ptr_eq(a, &again));
            assert_eq!(&*again, t.as_str());
        }
        drop(first);
        assert_eq!(i.gc(), texts.len());
        assert!(i.is_empty());
    }

    #[test]
    fn names_slices_are_shared_and_forgotten() {
        let i = Interner::default();
        let n = || vec![i.intern("alertname"), i.intern("job")];
        let a = i.names(n());
        let b = i.names(n());
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.names(vec![i.intern("job")]);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&*c, &[i.intern("job")]);
        // Names not from this interner are kept as given.
        let other: Vec<Arc<str>> = vec![Arc::from("alertname"), Arc::from("job")];
        assert_eq!(&*i.names(other.clone()), &*other);
        drop((a, b, c));
        assert_eq!(i.gc(), 2, "unused names and then their strings");
        assert!(i.is_empty());
    }
}
