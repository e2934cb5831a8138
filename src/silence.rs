//! Silences (`silence/silence.go`): operator-created mutes with matchers and
//! a time range. Alertmanager's rules for creating, updating in place,
//! replacing and expiring them are kept exactly, because amtool and UIs
//! depend on which id comes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;

use crate::matcher::{MatchType, Matcher, Matchers};
use crate::model::LabelSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Matchers,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// `getState`: pending before the start, expired after the end.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matchers.matches(labels)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("silence invalid: {0}")]
    Invalid(String),
    #[error("exceeded maximum number of silences: {count} (limit: {limit})")]
    TooMany { count: usize, limit: usize },
    #[error("silence exceeded maximum size: {size} bytes (limit: {limit} bytes)")]
    TooLarge { size: usize, limit: usize },
}

/// Where silences go when they change: the durable store (and, with
/// clustering, the gossip). The in-memory map is the read path.
pub trait SilenceSink: Send + Sync {
    fn write(&self, silence: &Silence, expires_at: Timestamp) -> Result<(), String>;
    fn delete(&self, id: &str) -> Result<(), String>;
}

/// Limits from `--silences.max-silences` and `--silences.max-silence-size-bytes`
/// (0 = none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub max_silences: usize,
    pub max_silence_size_bytes: usize,
}

/// Silences that are not expired, by the name and value of their first
/// equality matcher, so an alert is checked only against silences that can
/// match it (10k silences × 100k alerts would otherwise be 10⁹ checks per
/// `GET /api/v2/alerts`). Rebuilt after any change; changes are rare next to
/// lookups.
#[derive(Default)]
struct SilenceIndex {
    by_equal: HashMap<String, HashMap<String, Vec<Arc<Silence>>>>,
    /// Silences without an equality matcher: checked for every alert.
    rest: Vec<Arc<Silence>>,
}

impl SilenceIndex {
    fn build<'a>(silences: impl Iterator<Item = &'a Arc<Silence>>, now: Timestamp) -> SilenceIndex {
        let mut idx = SilenceIndex::default();
        for s in silences.filter(|s| s.state(now) != SilenceState::Expired) {
            match s.matchers.0.iter().find(|m| m.kind == MatchType::Equal) {
                Some(m) => idx
                    .by_equal
                    .entry(m.name.to_string())
                    .or_default()
                    .entry(m.value.to_string())
                    .or_default()
                    .push(s.clone()),
                None => idx.rest.push(s.clone()),
            }
        }
        idx
    }

    fn candidates<'a>(
        &'a self,
        labels: &'a LabelSet,
    ) -> impl Iterator<Item = &'a Arc<Silence>> + 'a {
        // An equality matcher with an empty value also matches a missing
        // label, so empty-valued keys are always candidates.
        let empty = self
            .by_equal
            .values()
            .filter_map(|vals| vals.get(""))
            .flatten();
        let present = labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(n, v)| self.by_equal.get(n).and_then(|vals| vals.get(v)))
            .flatten();
        present.chain(empty).chain(self.rest.iter())
    }
}

/// Alertmanager's silence metrics, kept by the silences themselves and
/// registered with `/metrics` (`Metrics::new`).
#[derive(Clone)]
pub struct SilenceStats {
    pub queries: prometheus_client::metrics::counter::Counter,
    pub query_duration: prometheus_client::metrics::histogram::Histogram,
    pub gc_duration: prometheus_client::metrics::histogram::Histogram,
}

impl Default for SilenceStats {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        SilenceStats {
            queries: Default::default(),
            query_duration: Histogram::new(exponential_buckets(0.000_001, 4.0, 10)),
            gc_duration: Histogram::new(exponential_buckets(0.000_1, 4.0, 10)),
        }
    }
}

/// The silences at one moment, from `Silences::query`.
pub struct SilenceQuery<'a> {
    index: Arc<SilenceIndex>,
    now: Timestamp,
    stats: &'a SilenceStats,
}

impl SilenceQuery<'_> {
    /// The ids of the active silences that match `labels`, sorted.
    pub fn silenced_by(&self, labels: &LabelSet) -> Vec<String> {
        self.stats.queries.inc();
        if self.index.by_equal.is_empty() && self.index.rest.is_empty() {
            return Vec::new();
        }
        let started = std::time::Instant::now();
        let now = self.now;
        let mut ids: Vec<String> = self
            .index
            .candidates(labels)
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        self.stats
            .query_duration
            .observe(started.elapsed().as_secs_f64());
        ids
    }
}

pub struct Silences {
    pub stats: SilenceStats,
    by_id: Mutex<HashMap<String, Arc<Silence>>>,
    /// Built on first use after a change; expiry is re-checked on use.
    /// Only locked while `by_id` is held (lock order: by_id, then index).
    index: Mutex<Option<Arc<SilenceIndex>>>,
    retention: Duration,
    limits: Limits,
    sink: Option<Arc<dyn SilenceSink>>,
    /// Told of every change made here (not of merges from peers), with
    /// the time until which peers keep the silence: the cluster gossips it.
    on_local_change: std::sync::OnceLock<LocalChange>,
}

/// A callback for silences changed on this node.
pub type LocalChange = Box<dyn Fn(&Silence, Timestamp) + Send + Sync>;

/// `validateSilence`.
fn validate(s: &Silence) -> Result<(), String> {
    if s.matchers.0.is_empty() {
        return Err("at least one matcher required".into());
    }
    if s.matchers.0.iter().all(|m| m.matches("")) {
        return Err("at least one matcher must not match the empty string".into());
    }
    if s.ends_at < s.starts_at {
        return Err("end time must not be before start time".into());
    }
    Ok(())
}

/// `canUpdate`: an update keeps the id only if the matchers are unchanged
/// and the time change is one the current state allows.
fn can_update(old: &Silence, new: &Silence, now: Timestamp) -> bool {
    if old.matchers != new.matchers {
        return false;
    }
    match old.state(now) {
        SilenceState::Active => {
            old.starts_at.as_second() == new.starts_at.as_second() && new.ends_at >= now
        }
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// An approximation of the protobuf size Alertmanager limits.
fn encoded_size(s: &Silence) -> usize {
    s.id.len()
        + s.created_by.len()
        + s.comment.len()
        + 64
        + s.matchers
            .0
            .iter()
            .map(|m| m.name.len() + m.value.len() + 8)
            .sum::<usize>()
}

impl Silences {
    pub fn new(
        retention: Duration,
        limits: Limits,
        sink: Option<Arc<dyn SilenceSink>>,
    ) -> Silences {
        Silences {
            stats: SilenceStats::default(),
            by_id: Mutex::new(HashMap::new()),
            index: Mutex::new(None),
            retention,
            limits,
            sink,
            on_local_change: std::sync::OnceLock::new(),
        }
    }

    /// Registers the callback for local changes (once).
    pub fn on_local_change(&self, f: LocalChange) {
        let _ = self.on_local_change.set(f);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Silence>>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Restores silences read from storage at startup.
    pub fn load(&self, silences: impl IntoIterator<Item = Silence>) {
        let mut map = self.lock();
        for s in silences {
            map.insert(s.id.clone(), Arc::new(s));
        }
        self.invalidate();
    }

    fn invalidate(&self) {
        *self.index.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Writes through to the sink first: a silence the API acknowledges is
    /// on disk.
    fn store(
        &self,
        map: &mut HashMap<String, Arc<Silence>>,
        s: Silence,
        local: bool,
    ) -> Result<(), SilenceError> {
        let expires = s.ends_at.checked_add(self.retention).unwrap_or(s.ends_at);
        if let Some(sink) = &self.sink {
            sink.write(&s, expires).map_err(SilenceError::Invalid)?;
        }
        if local {
            if let Some(f) = self.on_local_change.get() {
                f(&s, expires);
            }
        }
        map.insert(s.id.clone(), Arc::new(s));
        self.invalidate();
        Ok(())
    }

    /// `Silences.Set`: creates a silence (empty id), updates one in place, or
    /// replaces it with a new id (expiring the old one) when the change is
    /// not allowed in place. Returns the id the silence now has.
    pub fn set(&self, mut s: Silence, now: Timestamp) -> Result<String, SilenceError> {
        let mut map = self.lock();
        let prev = if s.id.is_empty() {
            None
        } else {
            Some(map.get(&s.id).cloned().ok_or(SilenceError::NotFound)?)
        };
        if let Some(prev) = &prev {
            if can_update(prev, &s, now) {
                s.updated_at = now;
                validate(&s).map_err(SilenceError::Invalid)?;
                self.check_size(&s)?;
                self.store(&mut map, s.clone(), true)?;
                return Ok(s.id);
            }
        }
        s.updated_at = now;
        if s.starts_at < now {
            s.starts_at = now;
        }
        validate(&s).map_err(SilenceError::Invalid)?;
        self.check_size(&s)?;
        if self.limits.max_silences > 0 {
            let live = map
                .values()
                .filter(|x| x.state(now) != SilenceState::Expired)
                .count();
            if live >= self.limits.max_silences {
                return Err(SilenceError::TooMany {
                    count: live,
                    limit: self.limits.max_silences,
                });
            }
        }
        if let Some(prev) = prev {
            if prev.state(now) != SilenceState::Expired {
                let expired = expired_copy(&prev, now);
                self.store(&mut map, expired, true)?;
            }
        }
        s.id = uuid::Uuid::new_v4().to_string();
        let id = s.id.clone();
        self.store(&mut map, s, true)?;
        Ok(id)
    }

    fn check_size(&self, s: &Silence) -> Result<(), SilenceError> {
        let size = encoded_size(s);
        if self.limits.max_silence_size_bytes > 0 && size > self.limits.max_silence_size_bytes {
            return Err(SilenceError::TooLarge {
                size,
                limit: self.limits.max_silence_size_bytes,
            });
        }
        Ok(())
    }

    /// Alertmanager's gossip merge: a silence from a peer replaces ours
    /// when it was updated later (last writer wins), is new to us, and is
    /// still within its retention (`expires_at`). Returns whether it
    /// changed our state, which is when a node passes it on. Merging the
    /// same set of silences in any order gives the same state.
    pub fn merge(
        &self,
        s: Silence,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, SilenceError> {
        if expires_at < now || s.id.is_empty() {
            return Ok(false);
        }
        let mut map = self.lock();
        if map.get(&s.id).is_some_and(|cur| !newer(&s, cur)) {
            return Ok(false);
        }
        validate(&s).map_err(SilenceError::Invalid)?;
        self.store(&mut map, s, false)?;
        Ok(true)
    }

    /// Every silence with the time until which peers keep it: the state a
    /// node sends in a full push/pull exchange.
    pub fn snapshot(&self) -> Vec<(Arc<Silence>, Timestamp)> {
        self.lock()
            .values()
            .map(|s| {
                let expires = s.ends_at.checked_add(self.retention).unwrap_or(s.ends_at);
                (s.clone(), expires)
            })
            .collect()
    }

    /// `Silences.Expire`: ends an active silence now; a pending one gets
    /// start and end now; an expired one is left alone.
    pub fn expire(&self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let mut map = self.lock();
        let s = map.get(id).cloned().ok_or(SilenceError::NotFound)?;
        if s.state(now) == SilenceState::Expired {
            return Ok(());
        }
        self.store(&mut map, expired_copy(&s, now), true)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Silence>> {
        self.lock().get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Silence>> {
        self.lock().values().cloned().collect()
    }

    /// The ids of the active silences that match `labels`, sorted.
    pub fn silenced_by(&self, labels: &LabelSet, now: Timestamp) -> Vec<String> {
        self.query(now).silenced_by(labels)
    }

    /// A view for checking many alerts at one time (a flush, an API answer)
    /// without taking the silences' locks for each.
    pub fn query(&self, now: Timestamp) -> SilenceQuery<'_> {
        let index = {
            let map = self.lock();
            let mut cached = self.index.lock().unwrap_or_else(|e| e.into_inner());
            cached
                .get_or_insert_with(|| Arc::new(SilenceIndex::build(map.values(), now)))
                .clone()
        };
        SilenceQuery {
            index,
            now,
            stats: &self.stats,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Removes silences whose retention after their end has passed.
    pub fn gc(&self, now: Timestamp) -> usize {
        let started = std::time::Instant::now();
        let removed = self.gc_inner(now);
        self.stats
            .gc_duration
            .observe(started.elapsed().as_secs_f64());
        removed
    }

    fn gc_inner(&self, now: Timestamp) -> usize {
        let mut map = self.lock();
        let retention = self.retention;
        let dead: Vec<String> = map
            .values()
            .filter(|s| s.ends_at.checked_add(retention).is_ok_and(|t| t < now))
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            if let Some(sink) = &self.sink {
                if let Err(e) = sink.delete(id) {
                    tracing::error!(id = %id, err = %e, "removing an expired silence from storage failed");
                    continue;
                }
            }
            map.remove(id);
        }
        if !dead.is_empty() {
            self.invalidate();
        }
        dead.len()
    }

    pub fn count_by_state(&self, now: Timestamp) -> [(SilenceState, usize); 3] {
        let map = self.lock();
        let mut c = [0usize; 3];
        for s in map.values() {
            c[s.state(now) as usize] += 1;
        }
        [
            (SilenceState::Active, c[0]),
            (SilenceState::Pending, c[1]),
            (SilenceState::Expired, c[2]),
        ]
    }
}

fn expired_copy(s: &Silence, now: Timestamp) -> Silence {
    let mut e = s.clone();
    if s.state(now) == SilenceState::Pending {
        e.starts_at = now;
    }
    e.ends_at = now;
    e.updated_at = now;
    e
}

/// Whether a peer's version of a silence wins over ours: the later update,
/// and on a tie the greater content, so that every node picks the same one
/// whatever order versions arrive in.
fn newer(theirs: &Silence, ours: &Silence) -> bool {
    match theirs.updated_at.cmp(&ours.updated_at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            let key = |s: &Silence| {
                (
                    s.ends_at,
                    s.starts_at,
                    s.comment.clone(),
                    s.created_by.clone(),
                    s.matchers.to_string(),
                )
            };
            key(theirs) > key(ours)
        }
    }
}

/// The time rules a new or updated silence must pass (API and UI alike).
pub fn check_times(
    starts_at: Timestamp,
    ends_at: Timestamp,
    now: Timestamp,
) -> Result<(), &'static str> {
    if starts_at >= ends_at {
        return Err("Failed to create silence: start time must be before end time");
    }
    if ends_at < now {
        return Err("Failed to create silence: end time can't be in the past");
    }
    Ok(())
}

/// Builds a matcher from the API's `name`, `value`, `isRegex`, `isEqual`.
pub fn api_matcher(
    name: &str,
    value: &str,
    is_regex: bool,
    is_equal: bool,
) -> Result<Matcher, String> {
    let kind = match (is_equal, is_regex) {
        (true, false) => MatchType::Equal,
        (false, false) => MatchType::NotEqual,
        (true, true) => MatchType::Regexp,
        (false, true) => MatchType::NotRegexp,
    };
    if name.is_empty() {
        return Err("invalid label name \"\"".into());
    }
    Matcher::new(kind, name, value).map_err(|e| e.to_string())
}

/// `CheckSilenceMatchesFilterLabels`: API filters are matched against the
/// silence's own matchers (name → value), not against alerts.
pub fn matches_filter(s: &Silence, filter: &Matchers) -> bool {
    let own: HashMap<&str, &str> = s
        .matchers
        .0
        .iter()
        .map(|m| (m.name.as_ref(), m.value.as_ref()))
        .collect();
    filter.0.iter().all(|m| {
        let v = own.get(m.name.as_ref());
        let negative = matches!(m.kind, MatchType::NotEqual | MatchType::NotRegexp);
        if m.value.is_empty() && (v.is_some() == negative) {
            return true;
        }
        m.matches(v.copied().unwrap_or(""))
    })
}

impl crate::model::Muter for Silences {
    fn retain_unmuted(
        &self,
        alerts: &mut Vec<std::sync::Arc<crate::model::Alert>>,
        now: Timestamp,
    ) {
        if !self.is_empty() {
            let q = self.query(now);
            alerts.retain(|a| q.silenced_by(&a.labels).is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::parse_matchers;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn sil(matchers: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: Matchers(parse_matchers(matchers).unwrap()),
            starts_at: t(start),
            ends_at: t(end),
            updated_at: t(0),
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    fn silences() -> Silences {
        Silences::new(Duration::from_secs(100), Limits::default(), None)
    }

    /// Two nodes that exchange their silences in any order, any number of
    /// times, end with the same silences (and a stale copy never wins).
    #[test]
    fn gossip_merge_converges() {
        let a = silences();
        let b = silences();
        let id1 = a.set(sil("x=1", 100, 500), t(100)).unwrap();
        let id2 = a.set(sil("x=2", 100, 500), t(101)).unwrap();
        let stale = a.get(&id1).unwrap();
        // Node B sees the first versions, then node A changes both.
        for (s, exp) in a.snapshot() {
            assert!(b.merge((*s).clone(), exp, t(102)).unwrap());
        }
        let mut longer = (*a.get(&id1).unwrap()).clone();
        longer.ends_at = t(900);
        a.set(longer, t(110)).unwrap();
        a.expire(&id2, t(111)).unwrap();
        let id3 = b.set(sil("y=1", 120, 600), t(120)).unwrap();
        // Deliveries in opposite orders, with repeats and the stale copy.
        let mut from_a: Vec<_> = a.snapshot();
        from_a.push((stale.clone(), t(700)));
        let from_b: Vec<_> = b.snapshot();
        for (s, exp) in from_a.iter().rev().chain(from_a.iter()) {
            b.merge((**s).clone(), *exp, t(130)).unwrap();
        }
        for (s, exp) in from_b.iter().chain(from_b.iter().rev()) {
            a.merge((**s).clone(), *exp, t(130)).unwrap();
        }
        let state = |ss: &Silences| {
            let mut v: Vec<Silence> = ss.list().iter().map(|s| (**s).clone()).collect();
            v.sort_by(|x, y| x.id.cmp(&y.id));
            v
        };
        assert_eq!(state(&a), state(&b));
        assert_eq!(b.get(&id1).unwrap().ends_at, t(900), "the later update won");
        assert_eq!(b.get(&id2).unwrap().state(t(130)), SilenceState::Expired);
        assert!(a.get(&id3).is_some());
        assert!(
            !b.merge((*stale).clone(), t(700), t(130)).unwrap(),
            "an older version changes nothing (and is not passed on)"
        );
        let mut gone = sil("z=1", 10, 20);
        gone.id = "old".into();
        assert!(!b.merge(gone, t(50), t(130)).unwrap(), "past its retention");
        assert!(b.get("old").is_none());
    }

    #[test]
    fn states() {
        let s = sil("a=b", 100, 200);
        assert_eq!(s.state(t(50)), SilenceState::Pending);
        assert_eq!(s.state(t(100)), SilenceState::Active);
        assert_eq!(s.state(t(200)), SilenceState::Active);
        assert_eq!(s.state(t(201)), SilenceState::Expired);
    }

    #[test]
    fn create_moves_start_to_now_and_validates() {
        let ss = silences();
        let id = ss.set(sil("a=b", 10, 200), t(100)).unwrap();
        assert_eq!(ss.get(&id).unwrap().starts_at, t(100));
        assert!(
            matches!(ss.set(sil("a=~.*", 100, 200), t(100)), Err(SilenceError::Invalid(m)) if m.contains("empty string"))
        );
        assert!(matches!(
            ss.set(sil("a=\"\"", 100, 200), t(100)),
            Err(SilenceError::Invalid(_))
        ));
        let mut unknown = sil("a=b", 100, 200);
        unknown.id = "nope".into();
        assert_eq!(ss.set(unknown, t(100)), Err(SilenceError::NotFound));
    }

    #[test]
    fn update_in_place_or_replace() {
        let ss = silences();
        let id = ss.set(sil("a=b", 100, 200), t(100)).unwrap();
        // Active: extending the end keeps the id.
        let mut upd = (*ss.get(&id).unwrap()).clone();
        upd.ends_at = t(300);
        assert_eq!(ss.set(upd.clone(), t(150)).unwrap(), id);
        assert_eq!(ss.get(&id).unwrap().ends_at, t(300));
        // Changing matchers gives a new id and expires the old silence.
        let mut changed = upd.clone();
        changed.matchers = Matchers(parse_matchers("a=c").unwrap());
        let new_id = ss.set(changed, t(160)).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(ss.get(&id).unwrap().state(t(161)), SilenceState::Expired);
        assert_eq!(ss.get(&new_id).unwrap().state(t(161)), SilenceState::Active);
        // Changing the start of an active silence also replaces it.
        let mut moved = (*ss.get(&new_id).unwrap()).clone();
        moved.starts_at = t(170);
        let third = ss.set(moved, t(165)).unwrap();
        assert_ne!(third, new_id);
        // A pending silence may move its start as long as it stays in the future.
        let pid = ss.set(sil("x=y", 500, 600), t(165)).unwrap();
        let mut p = (*ss.get(&pid).unwrap()).clone();
        p.starts_at = t(550);
        assert_eq!(ss.set(p, t(170)).unwrap(), pid);
        // An expired silence is never updated in place.
        let mut e = (*ss.get(&id).unwrap()).clone();
        e.ends_at = t(900);
        assert_ne!(ss.set(e, t(200)).unwrap(), id);
    }

    #[test]
    fn expire_rules() {
        let ss = silences();
        let active = ss.set(sil("a=b", 100, 200), t(100)).unwrap();
        let pending = ss.set(sil("a=c", 500, 600), t(100)).unwrap();
        ss.expire(&active, t(150)).unwrap();
        assert_eq!(ss.get(&active).unwrap().ends_at, t(150));
        ss.expire(&pending, t(150)).unwrap();
        let p = ss.get(&pending).unwrap();
        assert_eq!((p.starts_at, p.ends_at), (t(150), t(150)));
        assert_eq!(ss.expire("nope", t(150)), Err(SilenceError::NotFound));
        ss.expire(&active, t(160)).unwrap();
        assert_eq!(
            ss.get(&active).unwrap().ends_at,
            t(150),
            "expiring twice changes nothing"
        );
    }

    #[test]
    fn silencing_and_gc() {
        let ss = silences();
        let id = ss
            .set(sil("alertname=Disk,instance=~\"a|b\"", 100, 200), t(100))
            .unwrap();
        let labels = LabelSet::from_strs([("alertname", "Disk"), ("instance", "b")]);
        assert_eq!(ss.silenced_by(&labels, t(150)), vec![id.clone()]);
        assert!(ss.silenced_by(&labels, t(250)).is_empty(), "expired");
        assert!(ss
            .silenced_by(
                &LabelSet::from_strs([("alertname", "Disk"), ("instance", "c")]),
                t(150)
            )
            .is_empty());
        assert_eq!(ss.gc(t(300)), 0, "kept for the retention after its end");
        assert_eq!(ss.gc(t(301)), 1);
        assert!(ss.is_empty());
    }

    #[test]
    fn index_finds_what_a_scan_finds() {
        let ss = silences();
        let specs = [
            "alertname=Disk",
            "alertname=Disk,instance=~\"a|b\"",
            "instance=~\"a.*\"",
            "team!=ops,alertname=Load",
            "env=\"\",alertname=Disk",
            "severity=~\"crit.*\",team=\"\"",
        ];
        for m in specs {
            ss.set(sil(m, 100, 200), t(100)).unwrap();
        }
        let all = ss.list();
        for labels in [
            vec![("alertname", "Disk"), ("instance", "a")],
            vec![("alertname", "Disk"), ("env", "prod")],
            vec![("alertname", "Load"), ("team", "db")],
            vec![("severity", "critical")],
            vec![("instance", "abc"), ("team", "x")],
        ] {
            let ls = LabelSet::from_strs(labels.iter().copied());
            let mut scan: Vec<String> = all
                .iter()
                .filter(|s| s.matches(&ls))
                .map(|s| s.id.clone())
                .collect();
            scan.sort();
            assert_eq!(ss.silenced_by(&ls, t(150)), scan, "{ls:?}");
        }
        // A change is seen at once.
        let id = ss.set(sil("alertname=New", 100, 200), t(150)).unwrap();
        assert_eq!(
            ss.silenced_by(&LabelSet::from_strs([("alertname", "New")]), t(150)),
            vec![id]
        );
    }

    #[test]
    fn limits() {
        let ss = Silences::new(
            Duration::from_secs(100),
            Limits {
                max_silences: 1,
                max_silence_size_bytes: 0,
            },
            None,
        );
        ss.set(sil("a=b", 100, 200), t(100)).unwrap();
        assert!(matches!(
            ss.set(sil("a=c", 100, 200), t(100)),
            Err(SilenceError::TooMany { .. })
        ));
        let ss = Silences::new(
            Duration::from_secs(100),
            Limits {
                max_silences: 0,
                max_silence_size_bytes: 50,
            },
            None,
        );
        let mut big = sil("a=b", 100, 200);
        big.comment = "x".repeat(100);
        assert!(matches!(
            ss.set(big, t(100)),
            Err(SilenceError::TooLarge { .. })
        ));
    }

    #[test]
    fn filters_match_silence_matchers() {
        let s = sil("alertname=Disk,team!=ops", 100, 200);
        let f = |q: &str| matches_filter(&s, &Matchers(parse_matchers(q).unwrap()));
        assert!(f("alertname=Disk"));
        assert!(!f("alertname=Load"));
        assert!(f("severity=\"\""), "absent name, empty value");
        assert!(!f("severity=critical"));
        assert!(f("team=ops"), "the filter compares values, not operators");
    }
}
