//! Durable state in one SQLite database under `--storage.path`: alerts,
//! silences and the notification log, written through on every change so a
//! crash or SIGKILL loses nothing the API acknowledged (Alertmanager only
//! snapshots every 15 minutes, and never keeps alerts).
//!
//! One writer thread owns the connection and commits whatever is queued in
//! one transaction (group commit), so concurrent API requests do not take
//! turns on a lock. Queueing never waits; each caller gets a [`Commit`] that
//! resolves once the commit holding its change is done, which async code
//! awaits without holding a runtime worker.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::matcher::Matchers;
use crate::model::{Alert, Fingerprint, Interner, LabelSet};
use crate::nflog::{Entry, MemNotificationLog, NflogError, NotificationLog, ReceiverKey};
use crate::silence::{api_matcher, Annotations, Silence, SilenceSink, SilenceWrite};
pub use crate::write_error::WriteError;

mod alert_row;
mod files;
mod history;
pub mod recover;
mod wal;

pub use files::DB_FILE;

/// The schema version this Herald writes. Each migration moves a database
/// one version up; a database from a newer Herald is refused untouched.
const SCHEMA_VERSION: i64 = 2;

const MIGRATIONS: [&str; 2] = ["
    -- Alerts are an append-only log: a row per alert version, appended in
    -- arrival order (rowid). The latest version of a fingerprint wins on
    -- load; compaction deletes superseded and resolved versions in SQL.
    -- Appending is sequential I/O; a row keyed by fingerprint dirtied random
    -- pages of the whole table on every insert.
    CREATE TABLE alert_log (seq INTEGER PRIMARY KEY, fingerprint INTEGER NOT NULL, ends_at INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE TABLE silences (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at TEXT NOT NULL);
    CREATE TABLE nflog (key TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at TEXT NOT NULL);
", history::MIGRATION];

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("creating {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("opening {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the database {path} was written by a newer Herald (schema version {found}, this one knows up to {SCHEMA_VERSION}); refusing to touch it: it was left untouched, run that newer Herald on it")]
    TooNew { path: String, found: i64 },
    /// The database cannot be loaded as it is: Herald does not start, so
    /// that nothing it holds is lost silently or overwritten.
    #[error("the database {path} is damaged: {detail}. Herald left it untouched and did not start. To salvage every row that can still be read into a new database (the damaged files are kept beside it), stop every Herald on that directory and run: herald storage recover --storage.path={dir}")]
    Corrupt {
        path: String,
        dir: String,
        detail: String,
    },
    #[error("{dir}: {what}")]
    Busy { dir: String, what: String },
    #[error("storage: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("storage writer stopped")]
    Stopped,
    #[error(transparent)]
    Import(#[from] crate::migrate::ImportError),
}

enum Op {
    /// The last change at a clean stop: commits, checkpoints the
    /// write-ahead log into the database and ends the writer.
    Close,
    /// Forgets that the database was recovered: the node has the cluster's
    /// full state again.
    ClearRecovered,
    /// Versions of alerts: fingerprint, end (Unix seconds), JSON.
    AppendAlerts(Vec<(i64, i64, String)>),
    /// Rewrites the alert log keeping the latest version of each alert not
    /// resolved at the given time.
    CompactAlerts(Timestamp),
    /// Silence rows written together: a replaced silence's expiry and its
    /// successor commit in one transaction.
    Silences(Vec<SilenceRow>),
    /// Notification-log entries: state key, JSON, retention end.
    PutNflog(Vec<(String, String, String)>),
    DeleteNflogBefore(String),
    /// A notification-history record and the table's bound
    /// (`--notification-history.max-records`).
    History(Box<crate::history::Write>, usize),
    /// Drops history rows last changed before this (`--data.retention`).
    ExpireHistory(Timestamp),
    /// Writes nothing: its commit means every change queued before it is
    /// on disk.
    Barrier,
    /// Runs SQL on the writer's connection: tests fill the database with
    /// `PRAGMA max_page_count`, which fails commits as a full disk does.
    #[cfg(test)]
    Sql(&'static str),
}

enum SilenceRow {
    /// Id, JSON, retention end.
    Put(String, String, String),
    Delete(String),
}

type Ack = oneshot::Sender<Result<(), WriteError>>;

/// The outcome of a queued change, ready once the transaction holding it
/// has committed (or failed). Async code awaits it; code off the runtime
/// calls [`Commit::wait`]. Dropping it does not withdraw the change: it is
/// queued already, only nobody hears how it went (the writer counts and
/// logs failures).
pub struct Commit {
    rx: oneshot::Receiver<Result<(), WriteError>>,
    health: Arc<Health>,
}

impl Future for Commit {
    type Output = Result<(), WriteError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The writer drops the sender unanswered only when it is gone.
        let health = self.health.clone();
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(health.stopped())))
    }
}

impl Commit {
    /// Blocks the thread until the commit is done: only for callers that
    /// are not on the async runtime (it panics there).
    pub(crate) fn wait(self) -> Result<(), WriteError> {
        let health = self.health;
        self.rx
            .blocking_recv()
            .unwrap_or_else(|_| Err(health.stopped()))
    }
}

/// Failed writes by reason, shared by the writer thread and `/metrics`.
#[derive(Default)]
struct Health {
    failures: [AtomicU64; WriteError::REASONS.len()],
    stopped_logged: AtomicBool,
}

impl Health {
    fn count(&self, e: &WriteError, changes: u64) {
        let i = WriteError::REASONS
            .iter()
            .position(|r| *r == e.reason())
            .unwrap_or(WriteError::REASONS.len() - 1);
        self.failures[i].fetch_add(changes, Ordering::Relaxed);
    }

    /// A change that found the writer gone: counted each time, logged
    /// once, since it lasts until Herald restarts.
    fn stopped(&self) -> WriteError {
        let e = WriteError::Stopped;
        self.count(&e, 1);
        if !self.stopped_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                err = %e,
                "the storage writer is gone: no change can be stored until Herald restarts"
            );
        }
        e
    }
}

/// A run of failed commits, from the first failure to the next success:
/// logged at its start and at its end, not at every failed request (a full
/// disk under Prometheus' load would otherwise write a line per POST, to
/// the same disk perhaps).
struct Episode {
    started: std::time::Instant,
    failed: u64,
}

/// Follows the writer's commits: counts failures, logs an episode's first
/// failure with its cause and its end with how much failed meanwhile.
struct Outcomes {
    health: Arc<Health>,
    episode: Option<Episode>,
}

impl Outcomes {
    /// `wrote`: whether the transaction changed any row. One that changed
    /// none (deleting a row that is not there) commits without writing a
    /// page even on a full disk, and so does not end an episode.
    fn record(&mut self, result: &Result<(), WriteError>, changes: u64, wrote: bool) {
        match (result, &mut self.episode) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) if !wrote => {}
            (Ok(()), Some(ep)) => {
                tracing::info!(
                    failed_writes = ep.failed,
                    failing_for = ?ep.started.elapsed(),
                    "storage writable again"
                );
                self.episode = None;
            }
            (Err(e), ep) => {
                self.health.count(e, changes);
                match ep {
                    Some(ep) => ep.failed += changes,
                    None => {
                        tracing::error!(
                            err = %e,
                            reason = e.reason(),
                            "writing to the database failed; nothing of those changes was stored, and further failures are not logged until a write succeeds again"
                        );
                        self.episode = Some(Episode {
                            started: std::time::Instant::now(),
                            failed: changes,
                        });
                    }
                }
            }
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    tx: mpsc::Sender<(Op, Option<Ack>)>,
    path: Arc<PathBuf>,
    health: Arc<Health>,
    /// Loaded from a database `herald storage recover` wrote: in a
    /// cluster, the node must take in a peer's full state before it
    /// notifies.
    recovered: bool,
}

/// What was on disk at startup.
pub struct Loaded {
    /// Their strings are `interner`'s.
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
    pub nflog: Vec<(String, Entry)>,
    /// What the loaded alerts' strings were taken from: the interner the
    /// app goes on with, so that nothing is interned twice.
    pub interner: Interner,
}

#[derive(Serialize, Deserialize)]
struct StoredAlert {
    labels: LabelSet,
    annotations: LabelSet,
    starts_at: Timestamp,
    ends_at: Timestamp,
    generator_url: String,
    updated_at: Timestamp,
    timeout: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredMatcher {
    name: String,
    value: String,
    is_regex: bool,
    is_equal: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredSilence {
    id: String,
    matchers: Vec<StoredMatcher>,
    starts_at: Timestamp,
    ends_at: Timestamp,
    updated_at: Timestamp,
    created_by: String,
    comment: String,
    /// Added with silence annotations: rows written before have none.
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    annotations: Annotations,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    firing: Vec<u64>,
    resolved: Vec<u64>,
    timestamp: Timestamp,
    expires_at: Timestamp,
    /// Absent in entries written before it existed: the JSON body needs
    /// no schema change, and older Herald versions ignore the key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    receiver_data: crate::nflog::ReceiverData,
}

/// The plain writing of a row, which `version_body` is checked against.
#[cfg(test)]
fn stored(a: &Alert) -> StoredAlert {
    StoredAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        generator_url: a.generator_url.to_string(),
        updated_at: a.updated_at,
        timeout: a.timeout,
    }
}

/// The plain reading of a row, which `alert_row` is checked against.
#[cfg(test)]
fn alert_from(s: StoredAlert) -> Alert {
    Alert {
        fingerprint: s.labels.fingerprint(),
        labels: s.labels,
        annotations: s.annotations,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        generator_url: Arc::from(s.generator_url),
        updated_at: s.updated_at,
        timeout: s.timeout,
    }
}

/// A row of the alert log for one alert version.
fn version_row(a: &Alert) -> Result<(i64, i64, String), String> {
    Ok((
        a.fingerprint.0 as i64,
        a.ends_at.as_second(),
        version_body(a)?,
    ))
}

/// The JSON `StoredAlert` serializes to (the same keys, in its order),
/// written directly: through serde, with the copies `stored` makes, it was
/// the largest share of the POST path after JSON decoding. Strings are
/// written as [`crate::gojson::write_plain_str`] writes them, which any JSON reader reads
/// back the same.
fn version_body(a: &Alert) -> Result<String, String> {
    let mut out = Vec::with_capacity(640);
    out.extend_from_slice(b"{\"labels\":");
    a.labels.write_plain_json(&mut out);
    out.extend_from_slice(b",\"annotations\":");
    a.annotations.write_plain_json(&mut out);
    let time = |out: &mut Vec<u8>, key: &[u8], t: Timestamp| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":\"");
        write_timestamp(out, t).map_err(|e| e.to_string())?;
        out.push(b'"');
        Ok::<(), String>(())
    };
    time(&mut out, b"starts_at", a.starts_at)?;
    time(&mut out, b"ends_at", a.ends_at)?;
    out.extend_from_slice(b",\"generator_url\":");
    crate::gojson::write_plain_str(&mut out, &a.generator_url);
    time(&mut out, b"updated_at", a.updated_at)?;
    out.extend_from_slice(if a.timeout {
        b",\"timeout\":true}"
    } else {
        b",\"timeout\":false}"
    });
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Appends `t` as jiff's `Display` writes it (its serde form): RFC 3339
/// in UTC, the fraction of a second with only the digits it needs. Through
/// `Display` the three times of a row were a sixth of writing it; years
/// before 0 (six digits and a sign) still go through it.
fn write_timestamp(out: &mut Vec<u8>, t: Timestamp) -> std::io::Result<()> {
    use std::io::Write;
    let (secs, nanos) = (t.as_second(), t.subsec_nanosecond());
    // Before 1970 jiff's fraction is negative.
    let (secs, nanos) = if nanos < 0 {
        (secs - 1, nanos + 1_000_000_000)
    } else {
        (secs, nanos)
    };
    let mut buf = [0u8; 30];
    let year = crate::model::write_civil_seconds(&mut buf, secs);
    if !(0..=9999).contains(&year) {
        return write!(out, "{t}");
    }
    let mut len = 19;
    if nanos > 0 {
        buf[19] = b'.';
        crate::model::put_digits(&mut buf, 20, i64::from(nanos), 9);
        len = 29;
        while buf[len - 1] == b'0' {
            len -= 1;
        }
    }
    buf[len] = b'Z';
    out.extend_from_slice(&buf[..=len]);
    Ok(())
}

/// The alert log reduced to the latest version of each alert, its strings
/// taken from `interner` (see [`alert_row`]).
fn read_alert_log(
    conn: &Connection,
    interner: &Interner,
) -> Result<Vec<Alert>, Box<dyn std::error::Error>> {
    let rows: i64 = conn.query_row("SELECT count(*) FROM alert_log", [], |r| r.get(0))?;
    let mut latest: HashMap<Fingerprint, Alert, fnv::FnvBuildHasher> =
        HashMap::with_capacity_and_hasher(
            usize::try_from(rows).unwrap_or(0),
            fnv::FnvBuildHasher::default(),
        );
    let mut stmt = conn.prepare("SELECT body FROM alert_log ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let a = alert_row::read(row.get_ref(0)?.as_str()?, interner)?;
        latest.insert(a.fingerprint, a);
    }
    Ok(latest.into_values().collect())
}

impl Storage {
    /// Opens (or creates) `<dir>/herald.db`, checks it and migrates it to
    /// the current schema, and returns what it holds. A database that
    /// exists but cannot be loaded whole is refused with every file left
    /// as it was: `herald storage recover` salvages it.
    pub fn open(dir: &Path) -> Result<(Storage, Loaded), StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        // Held for as long as the writer runs: `herald storage recover`
        // takes it exclusively, so it never rewrites a live database.
        let lock = files::lock(dir, false)?;
        let path = dir.join(DB_FILE);
        let shown = path.display().to_string();
        let corrupt = |detail: String| StorageError::Corrupt {
            path: shown.clone(),
            dir: dir.display().to_string(),
            detail,
        };
        if !files::check_before_open(dir).map_err(corrupt)? {
            files::create(dir, true)?;
        }
        let wal_existed = files::wal(dir).exists();
        // SQLite rebuilds the log's index on open: a refused database gets
        // its old one back, byte for byte.
        let shm_before = std::fs::read(files::shm(dir)).ok();
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
            |source| StorageError::Open {
                path: shown.clone(),
                source,
            },
        )?;
        // Until the database has passed every check, closing must not
        // checkpoint the write-ahead log into it (SQLite does on the last
        // close) nor delete the log: a refused database stays as it was.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        let checked = check_and_load(&conn).map_err(|e| match e {
            Refusal::Damaged(detail) => corrupt(detail),
            Refusal::TooNew(found) => StorageError::TooNew {
                path: shown.clone(),
                found,
            },
            Refusal::Other(e) => e,
        });
        let (loaded, recovered) = match checked {
            Ok(v) => v,
            Err(e) => {
                drop(conn);
                // SQLite makes an empty log and its index on open: what was
                // not there before goes again.
                match &shm_before {
                    Some(b) => {
                        let _ = std::fs::write(files::shm(dir), b);
                    }
                    None => {
                        let _ = std::fs::remove_file(files::shm(dir));
                    }
                }
                if !wal_existed && std::fs::metadata(files::wal(dir)).is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(files::wal(dir));
                }
                return Err(e);
            }
        };
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            false,
        )?;
        if recovered {
            tracing::warn!(db = %shown, "This database was written by `herald storage recover`; in a cluster, notifications wait until a peer's full state is merged");
        }
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(Health::default());
        let outcomes = Outcomes {
            health: health.clone(),
            episode: None,
        };
        thread::Builder::new()
            .name("herald-storage".into())
            .spawn(move || {
                writer(conn, rx, outcomes);
                drop(lock);
            })
            .map_err(|e| StorageError::Dir {
                path: shown.clone(),
                source: e,
            })?;
        Ok((
            Storage {
                tx,
                path: Arc::new(path),
                health,
                recovered,
            },
            loaded,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database was written by `herald storage recover` and
    /// the node has not yet had a peer's full state since.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Drops the recovery mark, once a peer's full state is merged (and
    /// queued to disk before this): a later restart waits for no peer.
    pub fn clear_recovered(&self) -> Commit {
        self.queue(Op::ClearRecovered)
    }

    /// Commits what is queued, checkpoints the write-ahead log into the
    /// database (so a clean stop leaves an empty log) and stops the
    /// writer: at shutdown, off the runtime. Changes queued later fail.
    pub fn close(&self) -> Result<(), WriteError> {
        self.queue(Op::Close).wait()
    }

    /// Waits until every change queued so far (those nobody waits for,
    /// such as merged peer entries) is on disk: at shutdown, off the
    /// runtime.
    pub fn sync(&self) -> Result<(), WriteError> {
        self.queue(Op::Barrier).wait()
    }

    /// Queues a change; the commit holding it answers on the returned
    /// future. Changes are committed in the order they are queued.
    fn queue(&self, op: Op) -> Commit {
        let (ack, done) = oneshot::channel();
        // When the writer is gone the message, and with it `ack`, is
        // dropped: `done` then reports that the writer stopped.
        let _ = self.tx.send((op, Some(ack)));
        Commit {
            rx: done,
            health: self.health.clone(),
        }
    }

    /// Changes that failed to commit so far, by reason (`WriteError::REASONS`
    /// order): `herald_storage_write_failures_total`.
    pub fn write_failures(&self) -> [(&'static str, u64); WriteError::REASONS.len()] {
        std::array::from_fn(|i| {
            (
                WriteError::REASONS[i],
                self.health.failures[i].load(Ordering::Relaxed),
            )
        })
    }

    /// Queues a change nobody waits for.
    fn queue_unanswered(&self, op: Op) -> Result<(), StorageError> {
        self.tx.send((op, None)).map_err(|_| StorageError::Stopped)
    }

    /// Appends versions of alerts; resolves once they are on disk.
    /// The whole batch is one change: on disk together or not at all.
    pub async fn put_alerts(&self, alerts: &[Arc<Alert>]) -> Result<(), WriteError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let rows = alerts
            .iter()
            .map(|a| version_row(a))
            .collect::<Result<Vec<_>, String>>()
            .map_err(WriteError::Failed)?;
        self.queue(Op::AppendAlerts(rows)).await
    }

    /// Drops superseded versions and alerts resolved at `now` from disk
    /// (with the store's alert GC). The alert GC does not wait for it; a
    /// test does.
    pub fn compact_alerts(&self, now: Timestamp) -> Commit {
        self.queue(Op::CompactAlerts(now))
    }
}

/// Why `check_and_load` turns a database down.
enum Refusal {
    Damaged(String),
    TooNew(i64),
    Other(StorageError),
}

/// Checks an existing database (it must be Herald's, whole, and not from
/// a newer Herald), migrates it and loads it; also says whether it holds
/// the mark of `herald storage recover`.
fn check_and_load(conn: &Connection) -> Result<(Loaded, bool), Refusal> {
    let damaged = |e: rusqlite::Error| Refusal::Damaged(e.to_string());
    // Reading the header fails on a file that is not a database at all.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(damaged)?;
    // Measured: 0.9 s for a million alert versions and 10,000 silences
    // (a 414 MB file, warm cache) on a 2-core VM, less than the load that
    // follows reads anyway; it finds damage in pages load never reads
    // (indexes, free pages, the schema).
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(damaged)?;
    if check != "ok" {
        return Err(Refusal::Damaged(format!(
            "SQLite's integrity check reports: {check}"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(Refusal::TooNew(version));
    }
    if version < 1 {
        return Err(Refusal::Damaged(
            "it does not hold Herald's schema (schema version 0): it is not a database Herald wrote, or it lost Herald's first commit".into(),
        ));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('alert_log', 'silences', 'nflog')",
            [],
            |r| r.get(0),
        )
        .map_err(damaged)?;
    if tables != 3 {
        return Err(Refusal::Damaged(format!(
            "Herald's tables are missing (found {tables} of alert_log, silences, nflog)"
        )));
    }
    let other = |e: rusqlite::Error| Refusal::Other(e.into());
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(other)?;
    // WAL with synchronous=FULL: every commit is fsynced, so what the
    // API acknowledged survives a power loss too, not only a crash.
    // Group commit spreads the fsync over all writers waiting at that
    // moment; measured here, ingest rate and single-POST latency did
    // not change against NORMAL (the VM's disk flushes are cheap, a
    // cloud volume's cost more).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(other)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction().map_err(other)?;
        tx.execute_batch(m).map_err(other)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(other)?;
        tx.commit().map_err(other)?;
    }
    let history: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [history::TABLE],
            |r| r.get(0),
        )
        .map_err(damaged)?;
    if history != 1 {
        return Err(Refusal::Damaged(format!(
            "Herald's table {} is missing",
            history::TABLE
        )));
    }
    let loaded = load(conn).map_err(|e| Refusal::Damaged(format!("a row does not load: {e}")))?;
    let recovered = files::recovered_mark(conn).map_err(damaged)?;
    Ok((loaded, recovered))
}

/// Copies the silences and notification log of an Alertmanager data
/// directory (`silences`, `nflog` snapshot files) into a new database.
fn import_alertmanager(tx: &Connection, dir: &Path) -> Result<(), StorageError> {
    let now = Timestamp::now();
    let silences = crate::migrate::silences(dir, now)?;
    let entries = crate::migrate::nflog(dir, now)?;
    for (s, expires) in &silences {
        let body = serde_json::to_string(&stored_silence(s)).unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO silences (id, body, expires_at) VALUES (?1, ?2, ?3)",
            params![s.id, body, expires.to_string()],
        )?;
    }
    for (key, e) in &entries {
        let json = serde_json::to_string(&stored_entry(e)).unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO nflog (key, body, expires_at) VALUES (?1, ?2, ?3)",
            params![key, json, e.expires_at.to_string()],
        )?;
    }
    if !silences.is_empty() || !entries.is_empty() {
        tracing::info!(silences = silences.len(), nflog_entries = entries.len(), dir = %dir.display(), "Imported Alertmanager's snapshot files");
    }
    Ok(())
}

fn load(conn: &Connection) -> Result<Loaded, Box<dyn std::error::Error>> {
    let interner = Interner::default();
    let alerts = read_alert_log(conn, &interner)?;
    let mut silences = Vec::new();
    let mut stmt = conn.prepare("SELECT body FROM silences")?;
    for body in stmt.query_map([], |r| r.get::<_, String>(0))? {
        let s: StoredSilence = serde_json::from_str(&body?)?;
        let matchers = s
            .matchers
            .iter()
            .map(|m| api_matcher(&m.name, &m.value, m.is_regex, m.is_equal))
            .collect::<Result<Vec<_>, _>>()?;
        silences.push(Silence {
            id: s.id,
            matchers: Matchers(matchers),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: s.updated_at,
            created_by: s.created_by,
            comment: s.comment,
            annotations: s.annotations,
        });
    }
    let mut nflog = Vec::new();
    let mut stmt = conn.prepare("SELECT key, body FROM nflog")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (key, body) = row?;
        let e: StoredEntry = serde_json::from_str(&body)?;
        nflog.push((
            key,
            Entry {
                firing: e.firing,
                resolved: e.resolved,
                timestamp: e.timestamp,
                expires_at: e.expires_at,
                receiver_data: e.receiver_data,
            },
        ));
    }
    Ok(Loaded {
        alerts,
        silences,
        nflog,
        interner,
    })
}

/// Superseded alert versions the writer lets pile up before it deletes
/// them, and the most it deletes in one transaction: the commits queued
/// behind a deletion wait for at most this many row deletes, however large
/// the log.
const STALE_CHUNK: usize = 2048;

/// What the writer knows of the alert log: the row of each fingerprint's
/// latest version and the rows superseded since. Superseded rows are
/// deleted by rowid a chunk at a time, so the cost of keeping the log small
/// follows the re-sends, not the size of the log: a whole-log compaction
/// (`seq NOT IN (SELECT max(seq) ... GROUP BY fingerprint)`) stalled every
/// commit behind it for 0.4 s at 21k rows, 3.4 s at 221k.
/// Fingerprints are hashes already: FNV over their 8 bytes is enough, and
/// the writer updates this map once per appended version.
type SeqByFingerprint = HashMap<i64, i64, fnv::FnvBuildHasher>;

#[derive(Default)]
struct LogSize {
    /// Fingerprint → seq of its latest version.
    latest: SeqByFingerprint,
    /// Seqs of superseded versions, not yet deleted.
    stale: Vec<i64>,
    /// The seq the next appended version gets. Never reused, so a seq
    /// handed out in a transaction that failed names no other row later.
    next_seq: i64,
}

/// A change to `LogSize` that holds once its transaction has committed.
enum LogEvent {
    Appended {
        fingerprint: i64,
        seq: i64,
    },
    /// The log was compacted: these are its rows now.
    Rebuilt(SeqByFingerprint),
}

impl LogSize {
    /// Reads the log's rows (seq and fingerprint, not bodies) at start.
    fn read(conn: &Connection) -> rusqlite::Result<LogSize> {
        let mut size = LogSize::default();
        let mut st = conn.prepare("SELECT seq, fingerprint FROM alert_log ORDER BY seq")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (seq, fingerprint) = row?;
            size.record(LogEvent::Appended { fingerprint, seq });
        }
        Ok(size)
    }

    fn record(&mut self, event: LogEvent) {
        match event {
            LogEvent::Appended { fingerprint, seq } => {
                self.next_seq = self.next_seq.max(seq + 1);
                if let Some(old) = self.latest.insert(fingerprint, seq) {
                    self.stale.push(old);
                }
            }
            LogEvent::Rebuilt(latest) => {
                self.latest = latest;
                self.stale.clear();
            }
        }
    }

    fn needs_compaction(&self) -> bool {
        self.stale.len() >= STALE_CHUNK
    }
}

/// Deletes up to `STALE_CHUNK` superseded versions, oldest first, in one
/// transaction; on failure they stay listed for the next attempt.
fn delete_stale(conn: &mut Connection, size: &mut LogSize) -> rusqlite::Result<()> {
    let take = size.stale.len().min(STALE_CHUNK);
    let mut chunk: Vec<i64> = size.stale.drain(..take).collect();
    chunk.sort_unstable();
    let result = (|| {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached("DELETE FROM alert_log WHERE seq = ?1")?;
            for seq in &chunk {
                st.execute(params![seq])?;
            }
        }
        tx.commit()
    })();
    if result.is_err() {
        size.stale.extend(chunk);
    }
    result
}

/// The writer thread: applies every queued change in one transaction, then
/// acknowledges them all. Ends when every `Storage` handle is gone.
fn writer(mut conn: Connection, rx: mpsc::Receiver<(Op, Option<Ack>)>, mut outcomes: Outcomes) {
    let mut size = match LogSize::read(&conn) {
        Ok(size) => size,
        Err(e) => {
            // The log loaded a moment ago; if its rows cannot be listed
            // now, appends still work (seqs continue after the largest)
            // and only superseded versions stay on disk.
            tracing::warn!(err = %e, "reading the alert log's rows failed; superseded versions are kept");
            LogSize {
                next_seq: conn
                    .query_row("SELECT coalesce(max(seq), 0) + 1 FROM alert_log", [], |r| {
                        r.get(0)
                    })
                    .unwrap_or(1),
                ..LogSize::default()
            }
        }
    };
    let mut hist = match history::State::read(&conn) {
        Ok(h) => h,
        Err(e) => {
            // Loaded and checked a moment ago: if it cannot be read now,
            // the next commits fail and say why.
            tracing::warn!(err = %e, "reading the notification history's counters failed");
            history::State::default()
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        linger_for_history(&rx, &mut batch);
        let rows_before = conn.total_changes();
        let result = apply(&mut conn, &mut batch, &mut size, &mut hist)
            .map_err(|e| WriteError::from_sql(&e));
        let changes = batch
            .iter()
            .filter(|(op, _)| !matches!(op, Op::Barrier | Op::Close))
            .count() as u64;
        outcomes.record(&result, changes, conn.total_changes() != rows_before);
        let close = batch.iter().any(|(op, _)| matches!(op, Op::Close));
        if close {
            // After the last commit: the next start finds the whole state
            // in the database and an empty write-ahead log.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(err = %e, "checkpointing the database at shutdown failed");
            }
        }
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
        if close {
            return;
        }
        if size.needs_compaction() {
            let rows_before = conn.total_changes();
            let compacted =
                delete_stale(&mut conn, &mut size).map_err(|e| WriteError::from_sql(&e));
            outcomes.record(&compacted, 1, conn.total_changes() != rows_before);
        }
    }
}

/// How long a batch of notification-history records alone waits for more
/// before it commits.
const HISTORY_LINGER: Duration = Duration::from_millis(50);

/// A batch of history records only (nobody waits for them) waits a moment
/// for more, so a burst of notifications is a few commits rather than one
/// (and one fsync) each: committed one by one they cost 12% of the
/// notification throughput. Any change somebody waits for ends the wait at
/// once; a crash loses at most that moment's records.
fn linger_for_history(rx: &mpsc::Receiver<(Op, Option<Ack>)>, batch: &mut Vec<(Op, Option<Ack>)>) {
    let only_history = |b: &[(Op, Option<Ack>)]| {
        b.iter()
            .all(|(op, ack)| ack.is_none() && matches!(op, Op::History(..)))
    };
    if !only_history(batch) {
        return;
    }
    let until = std::time::Instant::now() + HISTORY_LINGER;
    while batch.len() < 4096 {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(op) => {
                batch.push(op);
                if !only_history(&batch[batch.len() - 1..]) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn apply(
    conn: &mut Connection,
    batch: &mut [(Op, Option<Ack>)],
    size: &mut LogSize,
    hist: &mut history::State,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut events = Vec::new();
    let mut hist_pending = history::Pending::default();
    for (op, _) in batch.iter_mut() {
        // The one change the writer consumes (its body is built here).
        if let Op::History(w, max) = op {
            history::put(&tx, hist, &mut hist_pending, w, *max)?;
            continue;
        }
        match &*op {
            Op::Barrier | Op::Close => {}
            Op::ClearRecovered => files::clear_recovered_mark(&tx)?,
            #[cfg(test)]
            Op::Sql(sql) => tx.execute_batch(sql)?,
            Op::AppendAlerts(rows) => {
                // Multi-row INSERTs: one statement step per 64 versions.
                // Seqs are given, so the writer knows each version's row.
                for chunk in rows.chunks(64) {
                    let mut sql = String::from(
                        "INSERT INTO alert_log (seq, fingerprint, ends_at, body) VALUES ",
                    );
                    for i in 0..chunk.len() {
                        sql.push_str(if i == 0 { "(?,?,?,?)" } else { ",(?,?,?,?)" });
                    }
                    let seqs: Vec<i64> =
                        (0..chunk.len() as i64).map(|i| size.next_seq + i).collect();
                    size.next_seq += chunk.len() as i64;
                    let mut st = tx.prepare_cached(&sql)?;
                    let params: Vec<&dyn rusqlite::ToSql> = chunk
                        .iter()
                        .zip(&seqs)
                        .flat_map(|((fp, ends, body), seq)| {
                            [seq as &dyn rusqlite::ToSql, fp, ends, body]
                        })
                        .collect();
                    st.execute(params.as_slice())?;
                    events.extend(chunk.iter().zip(&seqs).map(|((fp, _, _), seq)| {
                        LogEvent::Appended {
                            fingerprint: *fp,
                            seq: *seq,
                        }
                    }));
                }
            }
            Op::CompactAlerts(now) => {
                tx.execute("DELETE FROM alert_log WHERE seq NOT IN (SELECT max(seq) FROM alert_log GROUP BY fingerprint)", [])?;
                tx.execute(
                    "DELETE FROM alert_log WHERE ends_at < ?1",
                    params![now.as_second()],
                )?;
                let latest = tx
                    .prepare("SELECT fingerprint, seq FROM alert_log")?
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<SeqByFingerprint, _>>()?;
                events.push(LogEvent::Rebuilt(latest));
            }
            Op::Silences(rows) => {
                for row in rows {
                    match row {
                        SilenceRow::Put(id, body, expires) => {
                            tx.prepare_cached(
                                "INSERT OR REPLACE INTO silences (id, body, expires_at) VALUES (?1, ?2, ?3)",
                            )?
                            .execute(params![id, body, expires])?;
                        }
                        SilenceRow::Delete(id) => {
                            tx.prepare_cached("DELETE FROM silences WHERE id = ?1")?
                                .execute(params![id])?;
                        }
                    }
                }
            }
            Op::PutNflog(rows) => {
                for (key, body, expires) in rows {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO nflog (key, body, expires_at) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![key, body, expires])?;
                }
            }
            Op::DeleteNflogBefore(now) => {
                // RFC 3339 UTC strings of equal precision sort as times do;
                // compare through julianday to be safe with any precision.
                tx.prepare_cached(
                    "DELETE FROM nflog WHERE julianday(expires_at) <= julianday(?1)",
                )?
                .execute(params![now])?;
            }
            Op::History(..) => {}
            Op::ExpireHistory(before) => history::expire(&tx, &mut hist_pending, *before)?,
        }
    }
    history::trim(&tx, hist, &mut hist_pending)?;
    tx.commit()?;
    for e in events {
        size.record(e);
    }
    hist.commit(hist_pending, conn);
    Ok(())
}

fn stored_entry(e: &Entry) -> StoredEntry {
    StoredEntry {
        firing: e.firing.clone(),
        resolved: e.resolved.clone(),
        timestamp: e.timestamp,
        expires_at: e.expires_at,
        receiver_data: e.receiver_data.clone(),
    }
}

fn stored_silence(s: &Silence) -> StoredSilence {
    use crate::matcher::MatchType::*;
    StoredSilence {
        id: s.id.clone(),
        matchers: s
            .matchers
            .0
            .iter()
            .map(|m| StoredMatcher {
                name: m.name.to_string(),
                value: m.value.to_string(),
                is_regex: matches!(m.kind, Regexp | NotRegexp),
                is_equal: matches!(m.kind, Equal | Regexp),
            })
            .collect(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        updated_at: s.updated_at,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        annotations: s.annotations.clone(),
    }
}

impl SilenceSink for Storage {
    fn write(&self, writes: &[SilenceWrite<'_>]) -> BoxFuture<'static, Result<(), WriteError>> {
        let rows = writes
            .iter()
            .map(|w| match w {
                SilenceWrite::Put(s, expires_at) => {
                    let json =
                        serde_json::to_string(&stored_silence(s)).map_err(|e| e.to_string())?;
                    Ok(SilenceRow::Put(s.id.clone(), json, expires_at.to_string()))
                }
                SilenceWrite::Delete(id) => Ok(SilenceRow::Delete(id.to_string())),
            })
            .collect::<Result<Vec<_>, String>>();
        match rows.map_err(WriteError::Failed) {
            Ok(rows) => Box::pin(self.queue(Op::Silences(rows))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// The notification history's rows: queued without waiting (a record must
/// not delay the notification it describes; one lost in a crash is only
/// history), read on a connection of each query's own.
impl crate::history::HistoryStore for Storage {
    fn put(&self, w: crate::history::Write, max_records: usize) {
        let _ = self.queue_unanswered(Op::History(Box::new(w), max_records));
    }

    fn scan(
        &self,
        scan: &crate::history::Scan,
        visit: &mut dyn FnMut(crate::history::Record) -> bool,
    ) -> Result<(), crate::history::HistoryError> {
        history::scan(&self.path, scan, visit)
    }
}

impl Storage {
    /// Drops history rows last changed before `before`; not waited for.
    pub fn expire_history(&self, before: Timestamp) {
        let _ = self.queue_unanswered(Op::ExpireHistory(before));
    }
}

/// The notification log kept in memory for reads and written through to
/// the database, so a restart neither re-sends what was delivered nor
/// forgets a firing notification whose resolution is due.
pub struct DurableNotificationLog {
    mem: MemNotificationLog,
    storage: Storage,
    /// Told of every entry logged here (not of merges from peers): the
    /// cluster gossips it.
    on_local_log: std::sync::OnceLock<crate::nflog::LocalLog>,
    /// State keys of entries logged in memory whose commit failed (a full
    /// disk): written again with the next entry logged.
    unstored: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// An entry's row in the `nflog` table.
fn entry_row(key: &str, e: &Entry) -> Result<(String, String, String), NflogError> {
    let json = serde_json::to_string(&stored_entry(e))
        .map_err(|err| NflogError::Storage(WriteError::Failed(err.to_string())))?;
    Ok((key.to_string(), json, e.expires_at.to_string()))
}

impl DurableNotificationLog {
    pub fn new(
        storage: Storage,
        entries: Vec<(String, Entry)>,
        stats: crate::nflog::NflogStats,
    ) -> DurableNotificationLog {
        let mut mem = MemNotificationLog::default();
        mem.stats = stats;
        mem.restore(entries);
        DurableNotificationLog {
            mem,
            storage,
            on_local_log: std::sync::OnceLock::new(),
            unstored: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl NotificationLog for DurableNotificationLog {
    fn query(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry> {
        self.mem.query(group_key, receiver)
    }

    fn peek(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry> {
        self.mem.peek(group_key, receiver)
    }

    async fn log(
        &self,
        group_key: &str,
        receiver: &ReceiverKey,
        firing: Vec<u64>,
        resolved: Vec<u64>,
        receiver_data: crate::nflog::ReceiverData,
        now: Timestamp,
        expiry: Duration,
    ) -> Result<(), NflogError> {
        // Never go back in time, on disk either: a newer entry (from a
        // concurrent flush) wins, as in the in-memory log. The entry
        // comes sorted: it is on disk as it is compared.
        let Some((key, entry)) = self.mem.prepare(
            group_key,
            receiver,
            firing,
            resolved,
            receiver_data,
            now,
            expiry,
        ) else {
            return Ok(());
        };
        // Entries whose commit failed before are written again with this
        // one, from memory (which holds them), in the same transaction.
        let own = entry_row(&key, &entry)?;
        let (commit, rewritten) = {
            let mut unstored = self.unstored.lock().unwrap_or_else(|e| e.into_inner());
            let rewritten: Vec<String> = unstored.drain().collect();
            let mut rows: Vec<_> = rewritten
                .iter()
                .filter_map(|k| self.mem.query_key(k).map(|e| entry_row(k, &e)))
                .filter_map(Result::ok)
                .collect();
            rows.push(own);
            // Queued under the lock (queueing never waits), so a rewrite
            // cannot overtake a newer version of the same entry.
            (self.storage.queue(Op::PutNflog(rows)), rewritten)
        };
        let failed = commit.await.err();
        if let Some(f) = self.on_local_log.get() {
            f(&key, &entry);
        }
        self.mem.insert(key.clone(), entry);
        if let Some(e) = failed {
            // The notification went out; what failed is its record on
            // disk. Alertmanager's log lives in memory and never fails
            // here, so the flush succeeds as it would there: memory and
            // the peers have the entry (no re-send every group_interval,
            // and the resolution of these alerts is still sent), and it is
            // written again with the next entry logged (hence marked only
            // once memory holds it). Only a restart before that forgets
            // it. The writer counts and logs the failure, once per episode.
            tracing::debug!(err = %e, key = %key, "notification log entry kept in memory only, for now");
            let mut unstored = self.unstored.lock().unwrap_or_else(|e| e.into_inner());
            unstored.extend(rewritten);
            unstored.insert(key);
        }
        Ok(())
    }

    fn gc(&self, now: Timestamp) -> usize {
        // Not waited for: what it deletes has expired in memory already.
        let _ = self
            .storage
            .queue_unanswered(Op::DeleteNflogBefore(now.to_string()));
        self.mem.gc(now)
    }

    fn snapshot(&self) -> Vec<(String, Entry)> {
        self.mem.snapshot()
    }

    fn on_local_log(&self, f: crate::nflog::LocalLog) {
        let _ = self.on_local_log.set(f);
    }

    fn told(&self, group_key: &str, receiver: &ReceiverKey) -> crate::nflog::Told {
        self.mem.told(group_key, receiver)
    }

    fn merge(&self, key: &str, entry: Entry, now: Timestamp) -> Result<bool, NflogError> {
        let newer = entry.expires_at >= now
            && self
                .mem
                .query_key(key)
                .is_none_or(|cur| cur.timestamp < entry.timestamp);
        if !newer {
            return Ok(false);
        }
        let row = entry_row(key, &entry)?;
        // Queued, not waited for: the gossip loop merges every peer's
        // entries one by one, and waiting for each commit made it fall
        // seconds behind under load (delaying claims, causing duplicates).
        // An entry lost in a crash is the peer's, and comes back by
        // push/pull when this node rejoins.
        self.storage
            .queue_unanswered(Op::PutNflog(vec![row]))
            .map_err(|_| NflogError::Storage(WriteError::Stopped))?;
        self.mem.merge(key, entry, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::parse_matchers;

    fn silence(id: &str) -> Silence {
        Silence {
            id: id.into(),
            matchers: Matchers(parse_matchers(r#"alertname="A",instance=~"a|b""#).unwrap()),
            starts_at: Timestamp::from_second(100).unwrap(),
            ends_at: Timestamp::from_second(200).unwrap(),
            updated_at: Timestamp::from_second(100).unwrap(),
            created_by: "me".into(),
            comment: "c".into(),
            annotations: [("ticket".to_string(), "T-1".to_string())].into(),
        }
    }

    /// Rows written before silences had annotations load with none, and a
    /// silence without annotations writes no such key.
    /// Rows written directly hold what serde writes for `StoredAlert`,
    /// and read back as the alert, over strings that need escaping.
    /// Byte for byte jiff's `Display`, over its whole range (years before
    /// 0, Go's zero time, whole seconds and every length of fraction).
    #[test]
    fn timestamps_are_written_as_jiff_displays_them() {
        let mut next = crate::testing::xorshift(0x7157_a3d1);
        let (min, max) = (
            Timestamp::MIN.as_nanosecond(),
            Timestamp::MAX.as_nanosecond(),
        );
        let mut cases = vec![Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH];
        cases.push(crate::model::GO_ZERO_TIME);
        for _ in 0..50_000 {
            let span = (max - min) as u128;
            let wide = ((u128::from(next()) << 64 | u128::from(next())) % span) as i128 + min;
            // Most times are near now, and many have a short fraction.
            let near = 1_700_000_000_000_000_000 + (next() % 10_000_000_000_000_000_000) as i128;
            for n in [wide, near] {
                let n = match next() % 4 {
                    0 => n - n.rem_euclid(1_000_000_000),
                    1 => n - n.rem_euclid(1_000_000),
                    _ => n,
                };
                cases.push(Timestamp::from_nanosecond(n.clamp(min, max)).unwrap());
            }
        }
        for t in cases {
            let mut out = Vec::new();
            write_timestamp(&mut out, t).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), t.to_string(), "{t:?}");
        }
    }

    /// The word-at-a-time test against the byte-by-byte rule, on strings of
    /// every length with one byte of interest anywhere.
    #[test]
    fn plain_json_strings_are_those_without_escapes() {
        let mut next = crate::testing::xorshift(0x1b7e_94a3);
        let bytes = [
            b'a', b' ', b'"', b'\\', 0x1f, 0x00, 0x7f, 0x80, 0xff, 0x21, 0x5d, 0x19,
        ];
        for _ in 0..50_000 {
            let len = (next() % 40) as usize;
            let mut s: Vec<u8> = vec![b'x'; len];
            for _ in 0..next() % 3 {
                if len > 0 {
                    s[(next() % len as u64) as usize] =
                        bytes[(next() % bytes.len() as u64) as usize];
                }
            }
            let plain = s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
            assert_eq!(crate::gojson::plain_json(&s), plain, "{s:?}");
        }
    }

    #[test]
    fn version_body_is_stored_alerts_json() {
        let interner = Interner::default();
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let texts = [
            "a",
            "b\"q",
            "ü\n",
            "",
            "job",
            "x\\y",
            "\u{1}",
            "<&>",
            "\u{2028}\u{2029}",
            "\t\r",
            "日本",
            "\u{7f}",
            "http://p:9090/graph?g0.expr=up%3D%3D0&x=<y>",
        ];
        for _ in 0..2000 {
            let mut a = crate::model::random_alert(&mut next, &texts, 12);
            let extra = texts[(next() % texts.len() as u64) as usize];
            a.annotations =
                LabelSet::from_strs([("summary", a.annotations.value("summary")), (extra, "d")]);
            a.starts_at =
                Timestamp::from_nanosecond((next() % 4_000_000_000_000_000_000) as i128).unwrap();
            if next().is_multiple_of(3) {
                a.ends_at = crate::model::GO_ZERO_TIME;
            }
            let fast = version_body(&a).unwrap();
            let plain = serde_json::to_string(&stored(&a)).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&fast).unwrap(),
                serde_json::from_str::<serde_json::Value>(&plain).unwrap(),
                "{fast}\n{plain}"
            );
            assert_eq!(alert_row::read(&fast, &interner).unwrap(), a, "{fast}");
            let back: StoredAlert = serde_json::from_str(&fast).unwrap();
            assert_eq!(alert_from(back), a);
        }
    }

    #[tokio::test]
    async fn silence_rows_without_annotations_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut plain = silence("old");
        plain.annotations.clear();
        let body = serde_json::to_string(&stored_silence(&plain)).unwrap();
        assert!(!body.contains("annotations"), "{body}");
        {
            let (st, _) = Storage::open(dir.path()).unwrap();
            st.write(&[SilenceWrite::Put(
                &plain,
                Timestamp::from_second(500).unwrap(),
            )])
            .await
            .unwrap();
        }
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        assert_eq!(loaded.silences, vec![plain]);
    }

    #[tokio::test]
    async fn everything_written_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (st, loaded) = Storage::open(dir.path()).unwrap();
            assert!(
                loaded.alerts.is_empty() && loaded.silences.is_empty() && loaded.nflog.is_empty()
            );
            st.write(&[SilenceWrite::Put(
                &silence("s1"),
                Timestamp::from_second(500).unwrap(),
            )])
            .await
            .unwrap();
            let mut a = crate::model::test_alert(100, 900, 150, true);
            a.annotations = LabelSet::from_strs([("summary", "<disk> full")]);
            st.put_alerts(&[Arc::new(a.clone())]).await.unwrap();
            // A newer version appended later wins on load.
            let mut newer = a.clone();
            newer.updated_at = Timestamp::from_second(160).unwrap();
            st.put_alerts(&[Arc::new(newer)]).await.unwrap();
            let nf = DurableNotificationLog::new(st.clone(), Vec::new(), Default::default());
            let rk = ReceiverKey {
                group_name: "r".into(),
                integration: "webhook",
                index: 0,
            };
            nf.log(
                "{}:{}",
                &rk,
                vec![3, 1],
                vec![2],
                // Slack's update_message state survives a restart.
                [(
                    "threadTs".to_string(),
                    crate::nflog::ReceiverDataValue::Str("1700.01".into()),
                )]
                .into(),
                Timestamp::from_second(150).unwrap(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
            // An entry from a peer is written through as well.
            let merged = crate::nflog::Entry {
                firing: vec![9],
                resolved: vec![],
                timestamp: Timestamp::from_second(170).unwrap(),
                expires_at: Timestamp::from_second(900).unwrap(),
                receiver_data: Default::default(),
            };
            assert!(nf
                .merge(
                    "{}:{}:peer/email/0",
                    merged,
                    Timestamp::from_second(171).unwrap()
                )
                .unwrap());
            // Merged entries are queued without waiting: a barrier after
            // them is what a shutting-down node waits for.
            st.queue(Op::Barrier).await.unwrap();
        }
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        assert_eq!(loaded.silences, vec![silence("s1")]);
        assert_eq!(loaded.alerts.len(), 1);
        let a = &loaded.alerts[0];
        assert_eq!(a.updated_at.as_second(), 160);
        assert_eq!(a.annotations.get("summary"), Some("<disk> full"));
        assert!(a.timeout);
        assert_eq!(a.fingerprint, a.labels.fingerprint());
        let mut nflog = loaded.nflog.clone();
        nflog.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(nflog.len(), 2);
        assert_eq!(nflog[1].0, "{}:{}:r/webhook/0");
        assert_eq!(nflog[1].1.firing, vec![1, 3]);
        assert_eq!(
            nflog[1].1.receiver_data["threadTs"].as_str(),
            Some("1700.01")
        );
        assert!(nflog[0].1.receiver_data.is_empty());
        assert_eq!(nflog[0].0, "{}:{}:peer/email/0");
        assert_eq!(nflog[0].1.firing, vec![9]);
    }

    /// Every path that commits works on a current-thread runtime (nothing
    /// blocks a worker to wait for the disk), and what the awaited changes
    /// leave on disk is what memory holds.
    #[tokio::test]
    async fn changes_commit_on_a_current_thread_runtime() {
        use crate::silence::{Limits, Silences};
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = Storage::open(dir.path()).unwrap();
        let silences = Silences::new(
            Duration::from_secs(3600),
            Limits::default(),
            Some(Arc::new(st.clone())),
        );
        let now = Timestamp::now();
        let later = |h: i64| {
            now.checked_add(jiff::SignedDuration::from_hours(h))
                .unwrap()
        };
        let mut s = silence("");
        (s.starts_at, s.ends_at) = (now, later(1));
        let id = silences.set(s.clone(), now).await.unwrap();
        let mut longer = (*silences.get(&id).unwrap()).clone();
        longer.ends_at = later(2);
        assert_eq!(silences.set(longer, now).await.unwrap(), id);
        let mut other = s.clone();
        other.comment = "other".into();
        let other = silences.set(other, now).await.unwrap();
        silences.expire(&other, now).await.unwrap();
        let nf = DurableNotificationLog::new(st.clone(), Vec::new(), Default::default());
        let rk = ReceiverKey {
            group_name: "r".into(),
            integration: "webhook",
            index: 0,
        };
        nf.log(
            "{}:{}",
            &rk,
            vec![1],
            vec![],
            Default::default(),
            now,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        st.put_alerts(&[Arc::new(crate::model::test_alert(100, 900, 150, false))])
            .await
            .unwrap();

        let (_, loaded) = Storage::open(dir.path()).unwrap();
        let mut on_disk = loaded.silences;
        on_disk.sort_by(|a, b| a.id.cmp(&b.id));
        let mut in_memory: Vec<Silence> = silences.list().iter().map(|s| (**s).clone()).collect();
        in_memory.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(on_disk, in_memory);
        assert_eq!(in_memory.len(), 2);
        assert_eq!(loaded.nflog.len(), 1);
        assert_eq!(loaded.alerts.len(), 1);
    }

    #[test]
    fn compaction_keeps_the_latest_live_alerts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (st, _) = Storage::open(dir.path()).unwrap();
            let live = crate::model::test_alert(100, 5000, 100, false);
            let mut newer = live.clone();
            newer.updated_at = Timestamp::from_second(200).unwrap();
            let mut gone = crate::model::test_alert(100, 900, 100, false);
            gone.labels = LabelSet::from_strs([("alertname", "Gone")]);
            for a in [&live, &gone, &newer] {
                st.queue(Op::AppendAlerts(vec![version_row(a).unwrap()]))
                    .wait()
                    .unwrap();
            }
            st.compact_alerts(Timestamp::from_second(1000).unwrap())
                .wait()
                .unwrap();
        }
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        assert_eq!(loaded.alerts.len(), 1);
        assert_eq!(loaded.alerts[0].updated_at.as_second(), 200);
        let conn = Connection::open(dir.path().join("herald.db")).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM alert_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            rows, 1,
            "superseded and resolved versions are gone from disk"
        );
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Storage::open(dir.path()).err().unwrap();
        assert!(
            matches!(err, StorageError::TooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("newer Herald"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_corrupt_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        let garbage = b"this is not an SQLite database, it is somebody's notes".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        let err = Storage::open(dir.path()).err().unwrap();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
}

#[cfg(test)]
mod full_disk_tests {
    use super::*;

    /// Caps the database at the pages it has: a change that needs a new
    /// page fails with SQLITE_FULL, as on a full disk.
    async fn fill(st: &Storage) {
        st.queue(Op::Sql("PRAGMA max_page_count = 1"))
            .await
            .unwrap();
    }

    async fn make_room(st: &Storage) {
        st.queue(Op::Sql("PRAGMA max_page_count = 1000000"))
            .await
            .unwrap();
    }

    fn big_alert(name: &str) -> Arc<Alert> {
        let mut a = crate::model::test_alert(100, 4_000_000_000, 100, false);
        a.labels = LabelSet::from_strs([("alertname", name)]);
        a.annotations = LabelSet::from_strs([("filler", "x".repeat(20_000).as_str())]);
        Arc::new(a)
    }

    #[tokio::test]
    async fn a_failed_batch_is_typed_counted_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = Storage::open(dir.path()).unwrap();
        st.put_alerts(&[big_alert("Before")]).await.unwrap();
        fill(&st).await;
        let err = st
            .put_alerts(&[big_alert("Never1"), big_alert("Never2")])
            .await
            .unwrap_err();
        assert_eq!(err, WriteError::DiskFull);
        assert!(err.retryable());
        assert_eq!(
            st.put_alerts(&[big_alert("Never3")]).await,
            Err(WriteError::DiskFull)
        );
        let counts = st.write_failures();
        assert_eq!(counts[0], ("disk_full", 2));
        assert!(counts[1..].iter().all(|(_, n)| *n == 0), "{counts:?}");
        make_room(&st).await;
        st.put_alerts(&[big_alert("After")]).await.unwrap();
        drop(st);
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        let mut names: Vec<String> = loaded
            .alerts
            .iter()
            .map(|a| a.labels.get("alertname").unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["After", "Before"]);
    }

    /// A notification sent while the disk is full is logged in memory
    /// (no re-send, its resolution still due), and written to disk with
    /// the next entry that commits.
    #[tokio::test]
    async fn a_notification_log_entry_that_failed_to_commit_is_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = Storage::open(dir.path()).unwrap();
        let nf = DurableNotificationLog::new(st.clone(), Vec::new(), Default::default());
        let rk = ReceiverKey {
            group_name: "r".into(),
            integration: "webhook",
            index: 0,
        };
        let now = Timestamp::now();
        let big: crate::nflog::ReceiverData = [(
            "threadTs".to_string(),
            crate::nflog::ReceiverDataValue::Str("x".repeat(20_000)),
        )]
        .into();
        fill(&st).await;
        nf.log(
            "{}:{a}",
            &rk,
            vec![1],
            vec![],
            big,
            now,
            Duration::from_secs(3600),
        )
        .await
        .expect("the flush is not failed by its record");
        assert_eq!(nf.query("{}:{a}", &rk).unwrap().firing, vec![1]);
        assert_eq!(st.write_failures()[0], ("disk_full", 1));
        make_room(&st).await;
        nf.log(
            "{}:{b}",
            &rk,
            vec![2],
            vec![],
            Default::default(),
            now,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        drop((nf, st));
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        let mut keys: Vec<&str> = loaded.nflog.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["{}:{a}:r/webhook/0", "{}:{b}:r/webhook/0"]);
    }
}

#[cfg(test)]
mod compaction_tests {
    use super::*;

    #[test]
    fn the_log_compacts_itself_as_resends_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = Storage::open(dir.path()).unwrap();
        // The same alert re-sent many times, as Prometheus does.
        let a = crate::model::test_alert(100, 4_000_000_000, 100, false);
        let batch: Vec<_> = (0..1000).map(|_| version_row(&a).unwrap()).collect();
        for _ in 0..55 {
            st.queue(Op::AppendAlerts(batch.clone())).wait().unwrap();
        }
        let conn = Connection::open(dir.path().join("herald.db")).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM alert_log", [], |r| r.get(0))
            .unwrap();
        assert!(
            rows <= 5_001,
            "the writer compacted the log on its own ({rows} rows)"
        );
        let (_, loaded) = Storage::open(dir.path()).unwrap();
        assert_eq!(loaded.alerts.len(), 1);
    }

    /// The writer's chunked deletes against the plain model (the latest
    /// version of each fingerprint, minus those a compaction found
    /// resolved), over random appends, repeats within one batch,
    /// compactions and restarts: the latest row of every fingerprint is the
    /// model's, no other fingerprint has rows, and superseded rows never
    /// pile up past a chunk or two.
    #[test]
    fn chunked_deletes_keep_exactly_the_latest_versions() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let mut model: HashMap<i64, (i64, String)> = HashMap::new();
            let mut n = 0u64;
            let mut st = Storage::open(dir.path()).unwrap().0;
            for step in 0..150 {
                match rng.random_range(0..40) {
                    0 => {
                        let now = rng.random_range(0..100i64);
                        st.compact_alerts(Timestamp::from_second(now).unwrap())
                            .wait()
                            .unwrap();
                        model.retain(|_, (ends, _)| *ends >= now);
                    }
                    1 => {
                        st.close().unwrap();
                        drop(st);
                        st = Storage::open(dir.path()).unwrap().0;
                    }
                    _ => {
                        let pool = if round % 2 == 0 { 50 } else { 5000 };
                        let rows: Vec<(i64, i64, String)> = (0..rng.random_range(1..600))
                            .map(|_| {
                                n += 1;
                                let k = rng.random_range(0..pool);
                                let mut a = crate::model::test_alert(1, 1, 1, false);
                                a.labels = LabelSet::from_strs([("alertname", &*format!("A{k}"))]);
                                a.fingerprint = a.labels.fingerprint();
                                a.ends_at =
                                    Timestamp::from_second(rng.random_range(1..100)).unwrap();
                                a.updated_at = Timestamp::from_second(n as i64).unwrap();
                                version_row(&a).unwrap()
                            })
                            .collect();
                        for (fp, ends, body) in &rows {
                            model.insert(*fp, (*ends, body.clone()));
                        }
                        st.queue(Op::AppendAlerts(rows)).wait().unwrap();
                    }
                }
                let conn = Connection::open(dir.path().join("herald.db")).unwrap();
                let on_disk: HashMap<i64, (i64, String)> = conn
                    .prepare(
                        "SELECT fingerprint, ends_at, body FROM alert_log \
                         WHERE seq IN (SELECT max(seq) FROM alert_log GROUP BY fingerprint)",
                    )
                    .unwrap()
                    .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(on_disk, model, "round {round} step {step}");
                let rows: i64 = conn
                    .query_row("SELECT count(*) FROM alert_log", [], |r| r.get(0))
                    .unwrap();
                assert!(
                    rows as usize <= model.len() + 2 * STALE_CHUNK + 600,
                    "round {round} step {step}: {rows} rows for {} alerts",
                    model.len()
                );
            }
        }
    }
}
