//! Silences (`silence/silence.go`): operator-created mutes with matchers and
//! a time range. Alertmanager's rules for creating, updating in place,
//! replacing and expiring them are kept exactly, because amtool and UIs
//! depend on which id comes back.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;

use crate::matcher::{MatchType, Matcher, Matchers};
use crate::model::{Alert, LabelSet};

mod matching;
use matching::SilenceIndex;

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
    /// Free-form name/value pairs (Alertmanager 0.32): not matched against
    /// anything, only kept, listed and gossiped; ordered as Go writes maps.
    pub annotations: Annotations,
}

pub type Annotations = BTreeMap<String, String>;

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
    #[error("invalid silence: {0}")]
    Invalid(String),
    #[error("exceeded maximum number of silences: {count} (limit: {limit})")]
    TooMany { count: usize, limit: usize },
    #[error("silence exceeded maximum size: {size} bytes (limit: {limit} bytes)")]
    TooLarge { size: usize, limit: usize },
    /// The server's failure, not the silence's: nothing was changed.
    #[error("writing the silence to storage failed: {0}")]
    Storage(crate::write_error::WriteError),
}

/// A row change for a [`SilenceSink`].
pub enum SilenceWrite<'a> {
    /// A silence's new version, kept until the given time.
    Put(&'a Silence, Timestamp),
    Delete(&'a str),
}

/// Where silences go when they change: the durable store. The in-memory
/// map is the read path.
pub trait SilenceSink: Send + Sync {
    /// Queues the rows, to be committed together after everything queued
    /// before, and returns at once: it is called under the silences' lock,
    /// so that storage gets changes in the order memory does. The future
    /// resolves once they are committed (or failed); dropping it does not
    /// withdraw them.
    fn write(
        &self,
        rows: &[SilenceWrite<'_>],
    ) -> BoxFuture<'static, Result<(), crate::write_error::WriteError>>;
}

/// Limits from `--silences.max-silences` and `--silences.max-silence-size-bytes`
/// (0 = none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub max_silences: usize,
    pub max_silence_size_bytes: usize,
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

/// The index in use, and the one a change made stale: the next build
/// takes the reduced matchers of unchanged silences from it.
#[derive(Default)]
struct IndexCache {
    current: Option<Arc<SilenceIndex>>,
    previous: Option<Arc<SilenceIndex>>,
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
        let mut ids = Vec::new();
        self.each_match(labels, |s| {
            ids.push(s.id.clone());
            true
        });
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// `silenced_by` for a stored alert: its answer is kept, by
    /// fingerprint, until a silence changes (see `AlertCache`).
    pub fn silenced_by_alert(&self, alert: &Alert) -> Vec<String> {
        let mut ids = Vec::new();
        self.each_match_cached(alert, |s| {
            ids.push(s.id.clone());
            true
        });
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether any active silence matches a stored alert: `silenced_by_alert`
    /// without collecting the ids, for counts (`/metrics`).
    pub fn is_alert_silenced(&self, alert: &Alert) -> bool {
        let mut any = false;
        self.each_match_cached(alert, |_| {
            any = true;
            false
        });
        any
    }

    /// A lookup in the per-alert cache; only a miss asks the index, and
    /// only that is counted and timed as a query, as Alertmanager's
    /// `Silencer` queries its silences only for what its cache lacks.
    fn each_match_cached(&self, alert: &Alert, f: impl FnMut(&Silence) -> bool) {
        if self.index.is_empty() {
            return;
        }
        if let Some(took) =
            self.index
                .each_match_cached(alert.fingerprint, &alert.labels, self.now, f)
        {
            self.stats.queries.inc();
            self.stats.query_duration.observe(took.as_secs_f64());
        }
    }

    /// One query as the silence metrics count it.
    fn each_match(&self, labels: &LabelSet, f: impl FnMut(&Silence) -> bool) {
        self.stats.queries.inc();
        if self.index.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        self.index.each_match(labels, self.now, f);
        self.stats
            .query_duration
            .observe(started.elapsed().as_secs_f64());
    }
}

pub struct Silences {
    pub stats: SilenceStats,
    /// `--log.silences`: log each silence created, updated or expired
    /// through this node's API, as Alertmanager's `logSilence` does.
    pub logging: bool,
    state: Mutex<State>,
    /// Built on first use after a change; expiry is re-checked on use.
    /// Only locked while `state` is held (lock order: state, then index).
    index: Mutex<IndexCache>,
    retention: Duration,
    limits: Limits,
    sink: Option<Arc<dyn SilenceSink>>,
    /// Told of every change made here (not of merges from peers), with
    /// the time until which peers keep the silence: the cluster gossips it.
    /// Called with no lock held.
    on_local_change: std::sync::OnceLock<LocalChange>,
}

/// A callback for silences changed on this node.
pub type LocalChange = Box<dyn Fn(&Silence, Timestamp) + Send + Sync>;

/// A silence as held in memory, with the version of its last change.
struct Held {
    silence: Arc<Silence>,
    /// From `State::clock`. A local change applies only if the versions it
    /// was planned against are still current once its commit is done.
    version: u64,
}

/// What the silences' lock guards.
#[derive(Default)]
struct State {
    by_id: HashMap<String, Held>,
    /// Hands out versions. They are never reused, so a silence that is
    /// removed and comes back (the GC, then a peer's copy) does not look
    /// unchanged.
    clock: u64,
    /// New silences whose commit is in flight: counted with the live ones
    /// against `--silences.max-silences`, so concurrent creations cannot
    /// overshoot it.
    creating: usize,
}

impl State {
    fn version(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).map(|h| h.version)
    }

    fn put(&mut self, s: Silence) -> Arc<Silence> {
        self.clock += 1;
        let s = Arc::new(s);
        self.by_id.insert(
            s.id.clone(),
            Held {
                silence: s.clone(),
                version: self.clock,
            },
        );
        s
    }

    /// Gives a silence a new version without changing it.
    fn touch(&mut self, id: &str) {
        self.clock += 1;
        if let Some(h) = self.by_id.get_mut(id) {
            h.version = self.clock;
        }
    }
}

/// A row a local change writes.
struct Write {
    id: String,
    /// The silence's new version; None removes the row.
    silence: Option<Silence>,
    /// Whether peers are told: not for a row put back as memory holds it.
    announce: bool,
}

impl Write {
    fn new(s: Silence) -> Write {
        Write {
            id: s.id.clone(),
            silence: Some(s),
            announce: true,
        }
    }
}

/// What a local change would do to the silences as they are.
struct Planned<R> {
    writes: Vec<Write>,
    /// Silences it depends on without writing them (an expired one that
    /// an update replaces).
    reads: Vec<String>,
    /// Whether it adds a silence (counted against the limit meanwhile).
    creates: bool,
    result: R,
}

/// A local change under way: the rows its attempts queued, so that a
/// retry, or a change given up (an error, or the caller dropped it during
/// its commit), puts them back in line with memory.
struct Attempts<'a> {
    silences: &'a Silences,
    /// Ids whose rows an attempt queued.
    written: Vec<String>,
    /// Holds one place in `State::creating`.
    reserved: bool,
    applied: bool,
}

impl Drop for Attempts<'_> {
    fn drop(&mut self) {
        let silences = self.silences;
        let mut st = silences.lock();
        if self.reserved {
            st.creating -= 1;
        }
        if self.applied || self.written.is_empty() {
            return;
        }
        // Those rows may be on disk though memory never took them: write
        // memory's version over them. New versions make any change
        // planned before this one go round again, so that its rows are
        // queued after these.
        for id in &self.written {
            st.touch(id);
        }
        if let Some(sink) = &silences.sink {
            let rows: Vec<SilenceWrite<'_>> = self
                .written
                .iter()
                .map(|id| match st.by_id.get(id) {
                    Some(h) => SilenceWrite::Put(&h.silence, silences.expires(&h.silence)),
                    None => SilenceWrite::Delete(id),
                })
                .collect();
            // Nobody is left to hear the outcome; the writer logs failures.
            drop(sink.write(&rows));
        }
    }
}

/// `validateSilence`.
fn validate(s: &Silence) -> Result<(), String> {
    // Herald's silences have the one matcher set the v2 API creates, so
    // Alertmanager's per-set messages name set 0.
    if s.matchers.0.is_empty() {
        return Err("matcher set 0 is empty".into());
    }
    // `matchesEmpty` counts only = and =~: a silence of negative matchers
    // alone is valid, though `a!="b"` matches a missing label.
    let matches_empty =
        |m: &Matcher| matches!(m.kind, MatchType::Equal | MatchType::Regexp) && m.matches("");
    if s.matchers.0.iter().all(matches_empty) {
        return Err("matcher set 0: at least one matcher must not match the empty string".into());
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

/// The protobuf size of the `MeshSilence` Alertmanager checks against
/// `--silences.max-silence-size-bytes`: the silence with its one matcher set
/// (field 11; the legacy field 2 is cleared before the check) and its
/// retention deadline, so a silence Alertmanager takes is taken here too.
pub(crate) fn encoded_size(s: &Silence, expires_at: Timestamp) -> usize {
    fn varint(mut v: u64) -> usize {
        let mut n = 1;
        while v >= 0x80 {
            v >>= 7;
            n += 1;
        }
        n
    }
    // A length-delimited field: tag, length, body.
    fn field(len: usize) -> usize {
        1 + varint(len as u64) + len
    }
    fn string(v: &str) -> usize {
        if v.is_empty() {
            0
        } else {
            field(v.len())
        }
    }
    // A set message field, written even when it is empty.
    fn timestamp(t: Timestamp) -> usize {
        let secs = t.as_second();
        let nanos = t.subsec_nanosecond();
        let mut n = 0;
        if secs != 0 {
            n += 1 + varint(secs as u64);
        }
        if nanos != 0 {
            n += 1 + varint(nanos as i64 as u64);
        }
        field(n)
    }
    let matcher_set: usize = s
        .matchers
        .0
        .iter()
        .map(|m| {
            let kind = match m.kind {
                MatchType::Equal => 0,
                MatchType::Regexp => 1,
                MatchType::NotEqual => 2,
                MatchType::NotRegexp => 3,
            };
            let kind = if kind == 0 { 0 } else { 2 };
            field(kind + string(&m.name) + string(&m.value))
        })
        .sum();
    // protobuf-go writes a map entry's key and value even when empty.
    let annotations: usize = s
        .annotations
        .iter()
        .map(|(k, v)| field(field(k.len()) + field(v.len())))
        .sum();
    let silence = string(&s.id)
        + timestamp(s.starts_at)
        + timestamp(s.ends_at)
        + timestamp(s.updated_at)
        + string(&s.created_by)
        + string(&s.comment)
        + annotations
        + field(matcher_set);
    field(silence) + timestamp(expires_at)
}

impl Silences {
    pub fn new(
        retention: Duration,
        limits: Limits,
        sink: Option<Arc<dyn SilenceSink>>,
    ) -> Silences {
        Silences {
            stats: SilenceStats::default(),
            logging: false,
            state: Mutex::new(State::default()),
            index: Mutex::new(IndexCache::default()),
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Restores silences read from storage at startup.
    pub fn load(&self, silences: impl IntoIterator<Item = Silence>) {
        let mut st = self.lock();
        for s in silences {
            st.put(s);
        }
        self.invalidate();
    }

    fn invalidate(&self) {
        let mut cache = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = cache.current.take() {
            cache.previous = Some(current);
        }
    }

    /// Until when peers (and the disk) keep a silence.
    fn expires(&self, s: &Silence) -> Timestamp {
        s.ends_at.checked_add(self.retention).unwrap_or(s.ends_at)
    }

    /// Makes a local change: `plan` decides under the lock what to write,
    /// given the silences as they are and how many others are being
    /// created. The rows are queued under the lock too, so storage gets
    /// changes in the order memory does; the commit is awaited with the
    /// lock released (queries, flushes and merges go on meanwhile), and
    /// only then does memory change, so the API acknowledges only what is
    /// on disk and a failed commit changes nothing.
    ///
    /// If a silence the change depends on changed meanwhile (a concurrent
    /// change of the same silence, a peer's copy, the GC), the change is
    /// planned and committed again against that, as if it had come second:
    /// Alertmanager makes changes one at a time under its lock, and so
    /// nothing is lost or done twice. The retry also rewrites the rows of
    /// the earlier attempt that it does not write itself.
    async fn change<R>(
        &self,
        mut now: Timestamp,
        mut plan: impl FnMut(&State, Timestamp, usize) -> Result<Planned<R>, SilenceError>,
    ) -> Result<R, SilenceError> {
        let mut attempts = Attempts {
            silences: self,
            written: Vec::new(),
            reserved: false,
            applied: false,
        };
        loop {
            let (commit, bases, writes, result) = {
                let mut st = self.lock();
                let others_creating = st.creating - usize::from(attempts.reserved);
                let Planned {
                    mut writes,
                    reads,
                    creates,
                    result,
                } = plan(&st, now, others_creating)?;
                if creates != attempts.reserved {
                    if creates {
                        st.creating += 1;
                    } else {
                        st.creating -= 1;
                    }
                    attempts.reserved = creates;
                }
                for id in &attempts.written {
                    if !writes.iter().any(|w| &w.id == id) {
                        writes.push(Write {
                            id: id.clone(),
                            silence: st.by_id.get(id).map(|h| (*h.silence).clone()),
                            announce: false,
                        });
                    }
                }
                if writes.is_empty() {
                    // Nothing to change (expiring an expired silence).
                    return Ok(result);
                }
                let Some(sink) = &self.sink else {
                    self.finish(st, writes, &mut attempts);
                    return Ok(result);
                };
                let bases: Vec<(String, Option<u64>)> = writes
                    .iter()
                    .map(|w| &w.id)
                    .chain(&reads)
                    .map(|id| (id.clone(), st.version(id)))
                    .collect();
                let rows: Vec<SilenceWrite<'_>> = writes
                    .iter()
                    .map(|w| match &w.silence {
                        Some(s) => SilenceWrite::Put(s, self.expires(s)),
                        None => SilenceWrite::Delete(&w.id),
                    })
                    .collect();
                let commit = sink.write(&rows);
                drop(rows);
                for w in &writes {
                    if !attempts.written.contains(&w.id) {
                        attempts.written.push(w.id.clone());
                    }
                }
                (commit, bases, writes, result)
            };
            commit.await.map_err(SilenceError::Storage)?;
            {
                let st = self.lock();
                if bases.iter().all(|(id, v)| st.version(id) == *v) {
                    self.finish(st, writes, &mut attempts);
                    return Ok(result);
                }
            }
            // Redone now: later than the change it comes after, as peers
            // keep the latest update of a silence.
            now = now.max(Timestamp::now());
        }
    }

    /// Applies a change's rows to memory, then tells peers with the lock
    /// released.
    fn finish(
        &self,
        mut st: MutexGuard<'_, State>,
        writes: Vec<Write>,
        attempts: &mut Attempts<'_>,
    ) {
        let mut news = Vec::new();
        for w in writes {
            match w.silence {
                Some(s) => {
                    let s = st.put(s);
                    if w.announce {
                        news.push(s);
                    }
                }
                None => {
                    st.by_id.remove(&w.id);
                }
            }
        }
        self.invalidate();
        if attempts.reserved {
            st.creating -= 1;
            attempts.reserved = false;
        }
        attempts.applied = true;
        drop(st);
        if let Some(f) = self.on_local_change.get() {
            for s in news {
                f(&s, self.expires(&s));
            }
        }
    }

    /// `Silences.Set`: creates a silence (empty id), updates one in place, or
    /// replaces it with a new id (expiring the old one) when the change is
    /// not allowed in place. Returns the id the silence now has, once the
    /// change is on disk.
    pub async fn set(&self, s: Silence, now: Timestamp) -> Result<String, SilenceError> {
        // Chosen once: a retry writes the same new silence, not another.
        let new_id = uuid::Uuid::new_v4().to_string();
        // For the log only: whether an update replaces a silence that was
        // still in force (Alertmanager then logs its expiry first).
        let prev_live = self.logging
            && !s.id.is_empty()
            && self
                .get(&s.id)
                .is_some_and(|p| p.state(now) != SilenceState::Expired);
        let id = self
            .change(now, |st, now, others_creating| {
                self.plan_set(st, s.clone(), now, &new_id, others_creating)
            })
            .await?;
        if self.logging {
            if !s.id.is_empty() && id == s.id {
                self.log_silence("update silence", &id);
            } else {
                if prev_live {
                    self.log_silence("expire silence", &s.id);
                }
                self.log_silence("create silence", &id);
            }
        }
        Ok(id)
    }

    /// Alertmanager's `logSilence` line for a silence as now stored.
    fn log_silence(&self, msg: &str, id: &str) {
        let Some(sil) = self.get(id) else { return };
        let matchers: Vec<String> = sil
            .matchers
            .0
            .iter()
            .map(|m| format!("{}{}{}", m.name, m.kind.as_str(), m.value))
            .collect();
        let rfc3339 = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        tracing::info!(
            component = "silences",
            Id = %sil.id,
            CreatedBy = %sil.created_by,
            Comment = %sil.comment,
            StartsAt = %rfc3339(sil.starts_at),
            EndsAt = %rfc3339(sil.ends_at),
            Matchers = %matchers.join(","),
            "{msg}"
        );
    }

    fn plan_set(
        &self,
        st: &State,
        mut s: Silence,
        now: Timestamp,
        new_id: &str,
        others_creating: usize,
    ) -> Result<Planned<String>, SilenceError> {
        let prev = if s.id.is_empty() {
            None
        } else {
            Some(
                st.by_id
                    .get(&s.id)
                    .map(|h| h.silence.clone())
                    .ok_or(SilenceError::NotFound)?,
            )
        };
        if let Some(prev) = &prev {
            if can_update(prev, &s, now) {
                s.updated_at = now;
                validate(&s).map_err(SilenceError::Invalid)?;
                self.check_size(&s)?;
                let id = s.id.clone();
                return Ok(Planned {
                    writes: vec![Write::new(s)],
                    reads: Vec::new(),
                    creates: false,
                    result: id,
                });
            }
        }
        s.updated_at = now;
        if s.starts_at < now {
            s.starts_at = now;
        }
        validate(&s).map_err(SilenceError::Invalid)?;
        if self.limits.max_silences > 0 {
            let live = st
                .by_id
                .values()
                .filter(|h| h.silence.state(now) != SilenceState::Expired)
                .count()
                + others_creating;
            if live >= self.limits.max_silences {
                return Err(SilenceError::TooMany {
                    count: live,
                    limit: self.limits.max_silences,
                });
            }
        }
        // Alertmanager measures the new silence with its new id.
        s.id = new_id.to_string();
        self.check_size(&s)?;
        let (mut writes, mut reads) = (Vec::new(), Vec::new());
        if let Some(prev) = prev {
            if prev.state(now) != SilenceState::Expired {
                writes.push(Write::new(expired_copy(&prev, now)));
            } else {
                reads.push(prev.id.clone());
            }
        }
        writes.push(Write::new(s));
        Ok(Planned {
            writes,
            reads,
            creates: true,
            result: new_id.to_string(),
        })
    }

    fn check_size(&self, s: &Silence) -> Result<(), SilenceError> {
        let size = encoded_size(s, self.expires(s));
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
    ///
    /// The row is queued in the order memory changes but not waited for:
    /// gossip is merged inside the cluster's event loop, which must not
    /// stop for the disk. A copy lost in a crash is the peer's, and comes
    /// back by push/pull.
    pub fn merge(
        &self,
        s: Silence,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, SilenceError> {
        if expires_at < now || s.id.is_empty() {
            return Ok(false);
        }
        let mut st = self.lock();
        if st
            .by_id
            .get(&s.id)
            .is_some_and(|cur| !newer(&s, &cur.silence))
        {
            return Ok(false);
        }
        validate(&s).map_err(SilenceError::Invalid)?;
        if let Some(sink) = &self.sink {
            drop(sink.write(&[SilenceWrite::Put(&s, self.expires(&s))]));
        }
        st.put(s);
        self.invalidate();
        Ok(true)
    }

    /// Every silence with the time until which peers keep it: the state a
    /// node sends in a full push/pull exchange.
    pub fn snapshot(&self) -> Vec<(Arc<Silence>, Timestamp)> {
        self.lock()
            .by_id
            .values()
            .map(|h| (h.silence.clone(), self.expires(&h.silence)))
            .collect()
    }

    /// `Silences.Expire`: ends an active silence now; a pending one gets
    /// start and end now; an expired one is left alone. Returns once the
    /// change is on disk.
    pub async fn expire(&self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let was_live = self.logging
            && self
                .get(id)
                .is_some_and(|p| p.state(now) != SilenceState::Expired);
        self.change(now, |st, now, _| {
            let s = &st.by_id.get(id).ok_or(SilenceError::NotFound)?.silence;
            let writes = if s.state(now) == SilenceState::Expired {
                Vec::new()
            } else {
                vec![Write::new(expired_copy(s, now))]
            };
            Ok(Planned {
                writes,
                reads: Vec::new(),
                creates: false,
                result: (),
            })
        })
        .await?;
        if was_live {
            self.log_silence("expire silence", id);
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Silence>> {
        self.lock().by_id.get(id).map(|h| h.silence.clone())
    }

    pub fn list(&self) -> Vec<Arc<Silence>> {
        self.lock()
            .by_id
            .values()
            .map(|h| h.silence.clone())
            .collect()
    }

    /// The ids of the active silences that match `labels`, sorted.
    pub fn silenced_by(&self, labels: &LabelSet, now: Timestamp) -> Vec<String> {
        self.query(now).silenced_by(labels)
    }

    /// A view for checking many alerts at one time (a flush, an API answer)
    /// without taking the silences' locks for each.
    pub fn query(&self, now: Timestamp) -> SilenceQuery<'_> {
        let index = {
            let st = self.lock();
            let mut cache = self.index.lock().unwrap_or_else(|e| e.into_inner());
            match &cache.current {
                Some(index) => index.clone(),
                None => {
                    let index = Arc::new(SilenceIndex::build(
                        st.by_id.values().map(|h| &h.silence),
                        now,
                        cache.previous.as_deref(),
                    ));
                    cache.previous = None;
                    cache.current = Some(index.clone());
                    index
                }
            }
        };
        SilenceQuery {
            index,
            now,
            stats: &self.stats,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().by_id.is_empty()
    }

    /// Removes silences whose retention after their end has passed.
    pub fn gc(&self, now: Timestamp) -> usize {
        let started = std::time::Instant::now();
        let removed = self.gc_inner(now);
        self.sweep_alert_cache();
        self.stats
            .gc_duration
            .observe(started.elapsed().as_secs_f64());
        removed
    }

    /// Run with each GC: the per-alert cache forgets alerts nobody asked
    /// about since the last GC, so it does not grow with every alert ever
    /// seen while the silences stay unchanged.
    fn sweep_alert_cache(&self) {
        let current = {
            let _st = self.lock();
            let cache = self.index.lock().unwrap_or_else(|e| e.into_inner());
            cache.current.clone()
        };
        if let Some(index) = current {
            index.sweep_cache();
        }
    }

    fn gc_inner(&self, now: Timestamp) -> usize {
        let mut st = self.lock();
        let retention = self.retention;
        let dead: Vec<String> = st
            .by_id
            .values()
            .filter(|h| {
                h.silence
                    .ends_at
                    .checked_add(retention)
                    .is_ok_and(|t| t < now)
            })
            .map(|h| h.silence.id.clone())
            .collect();
        if dead.is_empty() {
            return 0;
        }
        if let Some(sink) = &self.sink {
            // Queued, not waited for: a row whose delete is lost in a crash
            // is past its retention, and is removed again after restart.
            let rows: Vec<SilenceWrite<'_>> =
                dead.iter().map(|id| SilenceWrite::Delete(id)).collect();
            drop(sink.write(&rows));
        }
        for id in &dead {
            st.by_id.remove(id);
        }
        self.invalidate();
        dead.len()
    }

    pub fn count_by_state(&self, now: Timestamp) -> [(SilenceState, usize); 3] {
        let st = self.lock();
        let mut c = [0usize; 3];
        for h in st.by_id.values() {
            c[h.silence.state(now) as usize] += 1;
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
                    s.annotations.clone(),
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
            alerts.retain(|a| {
                let ids = q.silenced_by_alert(a);
                if ids.is_empty() {
                    return true;
                }
                if crate::eventrecorder::active() {
                    for s in ids.iter().filter_map(|id| self.get(id)) {
                        crate::eventrecorder::record(|| {
                            crate::eventrecorder::events::silence_muted_alert(&s, a)
                        });
                    }
                }
                false
            });
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
            annotations: Annotations::new(),
        }
    }

    fn silences() -> Silences {
        Silences::new(Duration::from_secs(100), Limits::default(), None)
    }

    /// Two nodes that exchange their silences in any order, any number of
    /// times, end with the same silences (and a stale copy never wins).
    #[tokio::test]
    async fn gossip_merge_converges() {
        let a = silences();
        let b = silences();
        let id1 = a.set(sil("x=1", 100, 500), t(100)).await.unwrap();
        let id2 = a.set(sil("x=2", 100, 500), t(101)).await.unwrap();
        let stale = a.get(&id1).unwrap();
        // Node B sees the first versions, then node A changes both.
        for (s, exp) in a.snapshot() {
            assert!(b.merge((*s).clone(), exp, t(102)).unwrap());
        }
        let mut longer = (*a.get(&id1).unwrap()).clone();
        longer.ends_at = t(900);
        a.set(longer, t(110)).await.unwrap();
        a.expire(&id2, t(111)).await.unwrap();
        let id3 = b.set(sil("y=1", 120, 600), t(120)).await.unwrap();
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

    #[tokio::test]
    async fn create_moves_start_to_now_and_validates() {
        let ss = silences();
        let id = ss.set(sil("a=b", 10, 200), t(100)).await.unwrap();
        assert_eq!(ss.get(&id).unwrap().starts_at, t(100));
        assert!(
            matches!(ss.set(sil("a=~.*", 100, 200), t(100)).await, Err(SilenceError::Invalid(m)) if m.contains("empty string"))
        );
        assert!(matches!(
            ss.set(sil("a=\"\"", 100, 200), t(100)).await,
            Err(SilenceError::Invalid(_))
        ));
        let mut unknown = sil("a=b", 100, 200);
        unknown.id = "nope".into();
        assert_eq!(ss.set(unknown, t(100)).await, Err(SilenceError::NotFound));
    }

    #[tokio::test]
    async fn update_in_place_or_replace() {
        let ss = silences();
        let id = ss.set(sil("a=b", 100, 200), t(100)).await.unwrap();
        // Active: extending the end keeps the id.
        let mut upd = (*ss.get(&id).unwrap()).clone();
        upd.ends_at = t(300);
        assert_eq!(ss.set(upd.clone(), t(150)).await.unwrap(), id);
        assert_eq!(ss.get(&id).unwrap().ends_at, t(300));
        // Changing matchers gives a new id and expires the old silence.
        let mut changed = upd.clone();
        changed.matchers = Matchers(parse_matchers("a=c").unwrap());
        let new_id = ss.set(changed, t(160)).await.unwrap();
        assert_ne!(new_id, id);
        assert_eq!(ss.get(&id).unwrap().state(t(161)), SilenceState::Expired);
        assert_eq!(ss.get(&new_id).unwrap().state(t(161)), SilenceState::Active);
        // Changing the start of an active silence also replaces it.
        let mut moved = (*ss.get(&new_id).unwrap()).clone();
        moved.starts_at = t(170);
        let third = ss.set(moved, t(165)).await.unwrap();
        assert_ne!(third, new_id);
        // A pending silence may move its start as long as it stays in the future.
        let pid = ss.set(sil("x=y", 500, 600), t(165)).await.unwrap();
        let mut p = (*ss.get(&pid).unwrap()).clone();
        p.starts_at = t(550);
        assert_eq!(ss.set(p, t(170)).await.unwrap(), pid);
        // An expired silence is never updated in place.
        let mut e = (*ss.get(&id).unwrap()).clone();
        e.ends_at = t(900);
        assert_ne!(ss.set(e, t(200)).await.unwrap(), id);
    }

    #[tokio::test]
    async fn expire_rules() {
        let ss = silences();
        let active = ss.set(sil("a=b", 100, 200), t(100)).await.unwrap();
        let pending = ss.set(sil("a=c", 500, 600), t(100)).await.unwrap();
        ss.expire(&active, t(150)).await.unwrap();
        assert_eq!(ss.get(&active).unwrap().ends_at, t(150));
        ss.expire(&pending, t(150)).await.unwrap();
        let p = ss.get(&pending).unwrap();
        assert_eq!((p.starts_at, p.ends_at), (t(150), t(150)));
        assert_eq!(ss.expire("nope", t(150)).await, Err(SilenceError::NotFound));
        ss.expire(&active, t(160)).await.unwrap();
        assert_eq!(
            ss.get(&active).unwrap().ends_at,
            t(150),
            "expiring twice changes nothing"
        );
    }

    #[tokio::test]
    async fn silencing_and_gc() {
        let ss = silences();
        let id = ss
            .set(sil("alertname=Disk,instance=~\"a|b\"", 100, 200), t(100))
            .await
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

    #[tokio::test]
    async fn index_finds_what_a_scan_finds() {
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
            ss.set(sil(m, 100, 200), t(100)).await.unwrap();
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
        let id = ss
            .set(sil("alertname=New", 100, 200), t(150))
            .await
            .unwrap();
        assert_eq!(
            ss.silenced_by(&LabelSet::from_strs([("alertname", "New")]), t(150)),
            vec![id]
        );
    }

    #[tokio::test]
    async fn limits() {
        let ss = Silences::new(
            Duration::from_secs(100),
            Limits {
                max_silences: 1,
                max_silence_size_bytes: 0,
            },
            None,
        );
        ss.set(sil("a=b", 100, 200), t(100)).await.unwrap();
        assert!(matches!(
            ss.set(sil("a=c", 100, 200), t(100)).await,
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
            ss.set(big, t(100)).await,
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

    fn alert(labels: LabelSet) -> Alert {
        Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: LabelSet::default(),
            starts_at: t(0),
            ends_at: crate::model::GO_ZERO_TIME,
            generator_url: "".into(),
            updated_at: t(0),
            timeout: false,
        }
    }

    /// The per-alert cache answers what a scan of every silence answers,
    /// through silences created (some pending), updated, expired, merged
    /// from a peer and collected, alerts coming and going, GC sweeps, and
    /// time passing with no change at all (silences starting and ending
    /// while the cache is kept).
    #[tokio::test]
    async fn cached_answers_are_what_a_scan_answers() {
        struct Rng(u64);
        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % n as u64) as usize
            }
        }
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        const MATCHERS: &[&str] = &[
            "team=a",
            "team=b",
            "team=~\"a|b\"",
            "instance=~\"host-1.*\"",
            "instance=~\"host-[0-9]\"",
            "instance=host-1",
            "instance!=host-2",
            "env=prod",
            "env!~\"dev|\"",
            "job=~\".+\"",
        ];
        const TEAMS: &[&str] = &["a", "b", "c"];
        const HOSTS: &[&str] = &["host-1", "host-2", "host-12", "host-3", "db-1"];
        const ENVS: &[&str] = &["prod", "dev", ""];
        let pool: Vec<Alert> = (0..120)
            .map(|i| {
                let mut l = vec![
                    ("team", TEAMS[i % 3]),
                    ("instance", HOSTS[(i / 3) % 5]),
                    ("env", ENVS[(i / 15) % 3]),
                ];
                if i % 2 == 0 {
                    l.push(("job", "node"));
                }
                l.push(("n", ["0", "1", "2", "3", "4", "5", "6", "7"][i / 15]));
                alert(LabelSet::from_strs(
                    l.into_iter().filter(|(_, v)| !v.is_empty()),
                ))
            })
            .collect();
        let ss = Silences::new(Duration::from_secs(200), Limits::default(), None);
        let mut now = 1_000i64;
        let mut alerts: Vec<&Alert> = pool.iter().step_by(2).collect();
        let (mut hits, mut silenced) = (0, 0);
        for step in 0..800 {
            now += rng.below(40) as i64;
            match rng.below(10) {
                0..=2 => {
                    let n = 1 + rng.below(2);
                    let m: Vec<&str> = (0..n)
                        .map(|_| MATCHERS[rng.below(MATCHERS.len())])
                        .collect();
                    let start = now + [0, 0, 30, 90][rng.below(4)];
                    let end = start + 1 + rng.below(200) as i64;
                    let _ = ss.set(sil(&m.join(","), start, end), t(now)).await;
                }
                3 => {
                    let all = ss.list();
                    if !all.is_empty() {
                        let id = all[rng.below(all.len())].id.clone();
                        ss.expire(&id, t(now)).await.unwrap();
                    }
                }
                4 => {
                    let all = ss.list();
                    if !all.is_empty() {
                        let mut s = (*all[rng.below(all.len())]).clone();
                        s.ends_at = t(now + rng.below(300) as i64);
                        let _ = ss.set(s, t(now)).await;
                    }
                }
                5 => {
                    let mut s = sil(MATCHERS[rng.below(MATCHERS.len())], now, now + 100);
                    s.id = format!("peer-{step}");
                    s.updated_at = t(now);
                    ss.merge(s, t(now + 300), t(now)).unwrap();
                }
                6 => {
                    ss.gc(t(now));
                }
                _ => {
                    // Alerts come and go; time passes with nothing changed.
                    for _ in 0..rng.below(6) {
                        let a = &pool[rng.below(pool.len())];
                        match alerts.iter().position(|x| x.fingerprint == a.fingerprint) {
                            Some(i) => {
                                alerts.swap_remove(i);
                            }
                            None => alerts.push(a),
                        }
                    }
                }
            }
            let all = ss.list();
            // Two queries at one time and one later, each answering from
            // the cache the ones before filled.
            for at in [now, now, now + rng.below(150) as i64] {
                let q = ss.query(t(at));
                for a in &alerts {
                    let mut scan: Vec<String> = all
                        .iter()
                        .filter(|s| s.state(t(at)) == SilenceState::Active && s.matches(&a.labels))
                        .map(|s| s.id.clone())
                        .collect();
                    scan.sort();
                    let cached = q.silenced_by_alert(a);
                    assert_eq!(cached, scan, "step {step} at {at}: {:?}", a.labels);
                    assert_eq!(q.is_alert_silenced(a), !scan.is_empty());
                    assert_eq!(q.silenced_by(&a.labels), scan, "uncached");
                    hits += 1;
                    silenced += usize::from(!scan.is_empty());
                }
            }
            let mut kept: Vec<Arc<Alert>> = alerts.iter().map(|a| Arc::new((*a).clone())).collect();
            crate::model::Muter::retain_unmuted(&ss, &mut kept, t(now));
            let q = ss.query(t(now));
            assert!(kept.iter().all(|a| q.silenced_by(&a.labels).is_empty()));
            assert_eq!(
                kept.len(),
                alerts
                    .iter()
                    .filter(|a| q.silenced_by(&a.labels).is_empty())
                    .count()
            );
        }
        assert!(
            silenced > hits / 10 && silenced < hits * 9 / 10,
            "a mix of silenced and not: {silenced} of {hits}"
        );
    }

    /// A sink that keeps rows as a store committing in queue order ends up
    /// with them, and answers each write only when the test says so.
    struct Gated {
        rows: Mutex<HashMap<String, Silence>>,
        gates: tokio::sync::mpsc::UnboundedSender<Gate>,
    }

    type Gate = tokio::sync::oneshot::Sender<Result<(), crate::write_error::WriteError>>;
    type Gates = tokio::sync::mpsc::UnboundedReceiver<Gate>;

    /// Silences on a gated sink, holding one committed silence `x=1`.
    async fn gated_with_one() -> (Arc<Silences>, Arc<Gated>, Gates, String) {
        let (sink, mut gates) = Gated::new();
        let ss = Arc::new(Silences::new(
            Duration::from_secs(3600),
            Limits::default(),
            Some(sink.clone()),
        ));
        let id = create(&ss, &mut gates, sil_until("x=1", mins(60))).await;
        (ss, sink, gates, id)
    }

    impl Gated {
        fn new() -> (Arc<Gated>, Gates) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let sink = Gated {
                rows: Mutex::new(HashMap::new()),
                gates: tx,
            };
            (Arc::new(sink), rx)
        }

        fn rows(&self) -> Vec<Silence> {
            let mut v: Vec<Silence> = self.rows.lock().unwrap().values().cloned().collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        }
    }

    impl SilenceSink for Gated {
        fn write(
            &self,
            rows: &[SilenceWrite<'_>],
        ) -> BoxFuture<'static, Result<(), crate::write_error::WriteError>> {
            let mut kept = self.rows.lock().unwrap();
            for r in rows {
                match r {
                    SilenceWrite::Put(s, _) => {
                        kept.insert(s.id.clone(), (*s).clone());
                    }
                    SilenceWrite::Delete(id) => {
                        kept.remove(*id);
                    }
                }
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = self.gates.send(tx);
            Box::pin(async move {
                rx.await
                    .unwrap_or(Err(crate::write_error::WriteError::Stopped))
            })
        }
    }

    /// The commit of the next write queued, to answer.
    async fn next_gate(gates: &mut Gates) -> Gate {
        tokio::time::timeout(Duration::from_secs(5), gates.recv())
            .await
            .expect("a write is queued")
            .expect("the sink is alive")
    }

    fn memory(ss: &Silences) -> Vec<Silence> {
        let mut v: Vec<Silence> = ss.list().iter().map(|s| (**s).clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn mins(m: i64) -> Timestamp {
        Timestamp::now()
            .checked_add(jiff::SignedDuration::from_mins(m))
            .unwrap()
    }

    fn sil_until(matchers: &str, end: Timestamp) -> Silence {
        Silence {
            ends_at: end,
            starts_at: Timestamp::now(),
            ..sil(matchers, 0, 0)
        }
    }

    /// Creates a silence through a gated sink, opening its gate.
    async fn create(ss: &Silences, gates: &mut Gates, s: Silence) -> String {
        let (id, ()) = tokio::join!(ss.set(s, Timestamp::now()), async {
            next_gate(gates).await.send(Ok(())).unwrap();
        });
        id.unwrap()
    }

    /// While a change waits for its commit, queries, listings and merges
    /// go on (on another thread, so a held lock would show as a timeout),
    /// and do not see the change before it is on disk.
    #[tokio::test]
    async fn a_query_does_not_wait_for_a_commit() {
        let (sink, mut gates) = Gated::new();
        let ss = Arc::new(Silences::new(
            Duration::from_secs(100),
            Limits::default(),
            Some(sink),
        ));
        let set = tokio::spawn({
            let ss = ss.clone();
            async move { ss.set(sil("a=b", 100, 200), t(100)).await }
        });
        let gate = next_gate(&mut gates).await;
        let labels = LabelSet::from_strs([("a", "b")]);
        let reader = ss.clone();
        let (l, mut peer) = (labels.clone(), sil("p=q", 100, 200));
        peer.id = "peer".into();
        let seen = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::task::spawn_blocking(move || {
                (
                    reader.silenced_by(&l, t(150)),
                    reader.list().len(),
                    reader.merge(peer, t(300), t(150)),
                )
            }),
        )
        .await
        .expect("readers do not wait for the commit")
        .unwrap();
        assert_eq!(seen, (vec![], 0, Ok(true)));
        assert!(!set.is_finished(), "the change waits for its commit");
        gate.send(Ok(())).unwrap();
        let id = set.await.unwrap().unwrap();
        assert_eq!(ss.silenced_by(&labels, t(150)), vec![id]);
    }

    /// A failed commit leaves memory as it was, tells no peer, and the
    /// caller gets the error.
    #[tokio::test]
    async fn a_failed_commit_changes_nothing() {
        let (sink, mut gates) = Gated::new();
        let ss = Silences::new(Duration::from_secs(100), Limits::default(), Some(sink));
        let told = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = told.clone();
        ss.on_local_change(Box::new(move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        let (r, ()) = tokio::join!(ss.set(sil("a=b", 100, 200), t(100)), async {
            next_gate(&mut gates)
                .await
                .send(Err(crate::write_error::WriteError::DiskFull))
                .unwrap();
        });
        assert_eq!(
            r,
            Err(SilenceError::Storage(
                crate::write_error::WriteError::DiskFull
            ))
        );
        assert!(ss.is_empty());
        let mut s = sil("a=b", 100, 200);
        s.id = "kept".into();
        ss.load([s.clone()]);
        let (r, ()) = tokio::join!(ss.expire("kept", t(150)), async {
            // The failed create's row is put back first (deleted).
            let _ = next_gate(&mut gates).await;
            next_gate(&mut gates)
                .await
                .send(Err(crate::write_error::WriteError::DiskFull))
                .unwrap();
        });
        assert!(r.is_err());
        assert_eq!(*ss.get("kept").unwrap(), s, "still active");
        assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    /// Two updates of one silence committing at once: the one applied
    /// second is redone against the first, as if it had waited for it
    /// (Alertmanager runs them one after the other), and what is left on
    /// disk is what memory holds.
    #[tokio::test]
    async fn concurrent_changes_of_a_silence_are_each_applied_once() {
        let (ss, sink, mut gates, id) = gated_with_one().await;
        let version = |ends: Timestamp, matchers: &str| {
            let mut s = (*ss.get(&id).unwrap()).clone();
            s.ends_at = ends;
            s.matchers = Matchers(parse_matchers(matchers).unwrap());
            s
        };
        let spawn_set = |s: Silence| {
            let ss = ss.clone();
            tokio::spawn(async move { ss.set(s, Timestamp::now()).await })
        };

        // Both extend it in place; B commits and applies first.
        let (a_end, b_end) = (mins(120), mins(180));
        let a = spawn_set(version(a_end, "x=1"));
        let gate_a = next_gate(&mut gates).await;
        let b = spawn_set(version(b_end, "x=1"));
        next_gate(&mut gates).await.send(Ok(())).unwrap();
        assert_eq!(b.await.unwrap().unwrap(), id);
        let after_b = ss.get(&id).unwrap();
        assert_eq!(after_b.ends_at, b_end);
        gate_a.send(Ok(())).unwrap();
        // A's base changed under it: it is planned and written again.
        next_gate(&mut gates).await.send(Ok(())).unwrap();
        assert_eq!(a.await.unwrap().unwrap(), id);
        let after_a = ss.get(&id).unwrap();
        assert_eq!(after_a.ends_at, a_end, "A came second");
        assert!(after_a.updated_at > after_b.updated_at, "and later");
        assert_eq!(ss.list().len(), 1);
        assert_eq!(sink.rows(), memory(&ss));

        // A replaces it (new matchers) while B extends it; A applies first,
        // so B, redone, finds it expired and creates a silence of its own.
        let a = spawn_set(version(mins(120), "x=2"));
        let gate_a = next_gate(&mut gates).await;
        let b = spawn_set(version(mins(240), "x=1"));
        let gate_b = next_gate(&mut gates).await;
        gate_a.send(Ok(())).unwrap();
        let a_id = a.await.unwrap().unwrap();
        gate_b.send(Ok(())).unwrap();
        next_gate(&mut gates).await.send(Ok(())).unwrap();
        let b_id = b.await.unwrap().unwrap();
        assert!(a_id != id && b_id != id && a_id != b_id);
        let now = Timestamp::now();
        assert_eq!(ss.get(&id).unwrap().state(now), SilenceState::Expired);
        assert_eq!(ss.get(&a_id).unwrap().matchers.to_string(), r#"{x="2"}"#);
        let bs = ss.get(&b_id).unwrap();
        assert_eq!(
            (bs.state(now), bs.matchers.to_string().as_str()),
            (SilenceState::Active, r#"{x="1"}"#)
        );
        assert_eq!(ss.list().len(), 3, "one new silence each, no more");
        assert_eq!(
            sink.rows(),
            memory(&ss),
            "B's first row (the old silence extended) was written over"
        );
    }

    /// A change dropped while its commit is pending (the client went
    /// away) changes nothing in memory, and its row is written back as
    /// memory holds it.
    #[tokio::test]
    async fn a_dropped_change_puts_its_row_back() {
        let (ss, sink, mut gates, id) = gated_with_one().await;
        let before = memory(&ss);
        let mut longer = (*ss.get(&id).unwrap()).clone();
        longer.ends_at = mins(120);
        let change = tokio::spawn({
            let ss = ss.clone();
            async move { ss.set(longer, Timestamp::now()).await }
        });
        let _pending = next_gate(&mut gates).await;
        assert_ne!(sink.rows(), before, "the longer version is queued");
        change.abort();
        assert!(change.await.unwrap_err().is_cancelled());
        assert_eq!(memory(&ss), before);
        assert_eq!(sink.rows(), before);
    }

    /// Creations waiting for their commit count against the limit.
    #[tokio::test]
    async fn creations_in_flight_count_against_the_limit() {
        let (sink, mut gates) = Gated::new();
        let limits = Limits {
            max_silences: 1,
            max_silence_size_bytes: 0,
        };
        let ss = Arc::new(Silences::new(Duration::from_secs(100), limits, Some(sink)));
        let first = tokio::spawn({
            let ss = ss.clone();
            async move { ss.set(sil("a=b", 100, 200), t(100)).await }
        });
        let gate = next_gate(&mut gates).await;
        assert!(matches!(
            ss.set(sil("a=c", 100, 200), t(100)).await,
            Err(SilenceError::TooMany { count: 1, limit: 1 })
        ));
        gate.send(Ok(())).unwrap();
        assert!(first.await.unwrap().is_ok());
    }
}
