//! `herald storage recover`: salvages every row SQLite can still read from
//! a damaged database into a new one, and keeps the damaged files beside
//! it. Rows are read by rowid, so one damaged page costs the rows on it,
//! not the table: a read that fails is skipped past by seeking ever
//! further ahead until a seek succeeds.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags};

use super::files;
use super::{StorageError, StoredAlert, StoredEntry, StoredSilence};

/// What one table gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Salvaged {
    /// Rows copied into the new database.
    pub recovered: u64,
    /// Rows read whose content is not what Herald wrote (bad JSON, wrong
    /// types): left out.
    pub unparsable: u64,
    /// Stretches of rowids that could not be read at all (their rows
    /// cannot be counted: the pages that would say how many are lost).
    pub unreadable_ranges: u64,
    /// The table itself could not be read (its schema or root is lost).
    pub table_lost: bool,
}

/// The outcome of a recovery.
#[derive(Debug)]
pub struct Recovered {
    pub silences: Salvaged,
    pub alerts: Salvaged,
    pub nflog: Salvaged,
    /// The new database.
    pub db: PathBuf,
    /// Where the damaged files went.
    pub kept: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}: there is no database to recover (neither herald.db nor its write-ahead log)")]
    Nothing(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("writing the new database: {0}")]
    Sql(#[from] rusqlite::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecoverError {
    let path = path.display().to_string();
    move |source| RecoverError::Io { path, source }
}

/// Salvages `<dir>/herald.db` (with its write-ahead log) into a new
/// `herald.db`; the damaged files are renamed `herald.db.damaged-<time>`
/// (`-wal`, `-shm`). Refused while a Herald runs on the directory.
pub fn recover(dir: &Path) -> Result<Recovered, RecoverError> {
    let _lock = files::lock(dir, true)?;
    let (db, wal, shm) = (files::db(dir), files::wal(dir), files::shm(dir));
    if !db.exists() && !wal.exists() {
        return Err(RecoverError::Nothing(dir.display().to_string()));
    }
    // SQLite would checkpoint the log into the database it opens: it
    // reads copies, so the damaged files stay exactly as they were.
    let work = dir.join(".herald-recover");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io(&work))?;
    }
    std::fs::create_dir(&work).map_err(io(&work))?;
    let copy = work.join("damaged.db");
    if db.exists() {
        std::fs::copy(&db, &copy).map_err(io(&db))?;
    } else {
        // A log without its database: SQLite reads the pages it holds.
        std::fs::File::create(&copy).map_err(io(&copy))?;
    }
    if wal.exists() {
        std::fs::copy(&wal, work.join("damaged.db-wal")).map_err(io(&wal))?;
    }
    let out = files::create_at(dir)?;
    let (silences, alerts, nflog) = {
        let src = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(StorageError::from)?;
        // Damaged cells are reported as errors rather than read as rows.
        let _ = src.pragma_update(None, "cell_size_check", true);
        let tx = out.unchecked_transaction()?;
        for m in super::MIGRATIONS {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(None, "user_version", super::MIGRATIONS.len() as i64)?;
        let silences = salvage(
            &src,
            "silences",
            "id, body, expires_at",
            |row| {
                let body = text(&row[2])?;
                let s: StoredSilence = serde_json::from_str(body).ok()?;
                s.matchers
                    .iter()
                    .map(|m| crate::silence::api_matcher(&m.name, &m.value, m.is_regex, m.is_equal))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                let expires = text(&row[3])?;
                expires.parse::<Timestamp>().ok()?;
                Some((
                    text(&row[1])?.to_string(),
                    body.to_string(),
                    expires.to_string(),
                ))
            },
            |(id, body, expires)| {
                tx.execute(
                    "INSERT OR REPLACE INTO silences (id, body, expires_at) VALUES (?1, ?2, ?3)",
                    params![id, body, expires],
                )
                .map(|_| ())
            },
        )?;
        let alerts = salvage(
            &src,
            "alert_log",
            "fingerprint, ends_at, body",
            |row| {
                let seq = int(&row[0])?;
                let body = text(&row[3])?;
                let a: StoredAlert = serde_json::from_str(body).ok()?;
                // The columns are derived from the body: rebuilt from it.
                Some((
                    seq,
                    a.labels.fingerprint().0 as i64,
                    a.ends_at.as_second(),
                    body.to_string(),
                ))
            },
            |(seq, fp, ends, body)| {
                tx.execute(
                "INSERT INTO alert_log (seq, fingerprint, ends_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![seq, fp, ends, body],
            )
            .map(|_| ())
            },
        )?;
        let nflog = salvage(
            &src,
            "nflog",
            "key, body, expires_at",
            |row| {
                let body = text(&row[2])?;
                let e: StoredEntry = serde_json::from_str(body).ok()?;
                Some((
                    text(&row[1])?.to_string(),
                    body.to_string(),
                    e.expires_at.to_string(),
                ))
            },
            |(key, body, expires)| {
                tx.execute(
                    "INSERT OR REPLACE INTO nflog (key, body, expires_at) VALUES (?1, ?2, ?3)",
                    params![key, body, expires],
                )
                .map(|_| ())
            },
        )?;
        files::set_recovered_mark(&tx, &Timestamp::now().to_string())?;
        tx.commit()?;
        (silences, alerts, nflog)
    };
    // The damaged files go aside under one name, then the new database
    // takes the place of the old one (a rename replaces it at once). The
    // log must be gone before: SQLite would apply it to the new file.
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = dir.join(format!("{}.damaged-{stamp}", files::DB_FILE));
    let mut kept = Vec::new();
    if db.exists() {
        std::fs::hard_link(&db, &aside).map_err(io(&db))?;
        kept.push(aside.clone());
    }
    for (from, suffix) in [(&wal, "-wal"), (&shm, "-shm")] {
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(from, &to).map_err(io(from))?;
            kept.push(to);
        }
    }
    files::put_in_place(dir, out)?;
    if !db.exists() {
        return Err(RecoverError::Io {
            path: db.display().to_string(),
            source: std::io::Error::other("the new database is not in place"),
        });
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(Recovered {
        silences,
        alerts,
        nflog,
        db,
        kept,
    })
}

fn text<'a>(v: &'a rusqlite::types::Value) -> Option<&'a str> {
    match v {
        rusqlite::types::Value::Text(s) => Some(s),
        _ => None,
    }
}

fn int(v: &rusqlite::types::Value) -> Option<i64> {
    match v {
        rusqlite::types::Value::Integer(i) => Some(*i),
        _ => None,
    }
}

/// Reads `table` by rowid, hands each row (rowid first, then `columns`)
/// to `parse`, and each parsed row to `put`.
fn salvage<T>(
    src: &Connection,
    table: &str,
    columns: &str,
    parse: impl Fn(&[rusqlite::types::Value]) -> Option<T>,
    mut put: impl FnMut(T) -> rusqlite::Result<()>,
) -> Result<Salvaged, RecoverError> {
    let mut out = Salvaged::default();
    let ncols = columns.split(',').count() + 1;
    let scan = format!("SELECT rowid, {columns} FROM {table} WHERE rowid >= ?1 ORDER BY rowid");
    let seek = format!("SELECT rowid FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT 1");
    let (mut scan, mut seek) = match (src.prepare(&scan), src.prepare(&seek)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            out.table_lost = true;
            return Ok(out);
        }
    };
    // The lowest rowid not yet read.
    let mut from = i64::MIN;
    loop {
        let mut rows = match scan.query([from]) {
            Ok(r) => r,
            Err(_) => {
                out.table_lost = true;
                return Ok(out);
            }
        };
        let mut failed = false;
        loop {
            match rows.next() {
                Ok(None) => break,
                Ok(Some(row)) => {
                    let values: Option<Vec<rusqlite::types::Value>> =
                        (0..ncols).map(|i| row.get_ref(i).ok().map(owned)).collect();
                    let rowid = values.as_ref().and_then(|v| int(&v[0]));
                    if let Some(r) = rowid {
                        from = r.saturating_add(1);
                    }
                    match values.as_deref().and_then(&parse) {
                        Some(t) => {
                            put(t)?;
                            out.recovered += 1;
                        }
                        None => out.unparsable += 1,
                    }
                    if rowid == Some(i64::MAX) {
                        return Ok(out);
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            return Ok(out);
        }
        drop(rows);
        out.unreadable_ranges += 1;
        // Seek ever further past the damage until a seek succeeds: the
        // first rowid there is where reading goes on.
        let mut step: i64 = 1;
        loop {
            let Some(probe) = from.checked_add(step) else {
                return Ok(out);
            };
            match seek.query_row([probe], |r| r.get::<_, i64>(0)) {
                Ok(next) => {
                    from = next;
                    break;
                }
                Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(out),
                Err(_) => step = step.saturating_mul(2),
            }
        }
    }
}

fn owned(v: ValueRef<'_>) -> rusqlite::types::Value {
    match v {
        // Text that is not UTF-8 is damage: kept as bytes, it parses as
        // nothing.
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => rusqlite::types::Value::Text(s.to_string()),
            Err(_) => rusqlite::types::Value::Blob(t.to_vec()),
        },
        ValueRef::Null => rusqlite::types::Value::Null,
        ValueRef::Integer(i) => rusqlite::types::Value::Integer(i),
        ValueRef::Real(f) => rusqlite::types::Value::Real(f),
        ValueRef::Blob(b) => rusqlite::types::Value::Blob(b.to_vec()),
    }
}
