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
    fit_size_to_file(&copy).map_err(io(&copy))?;
    let out = files::create_at(dir)?;
    let (silences, alerts, nflog) = {
        let src = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(StorageError::from)?;
        // Damaged cells are reported as errors rather than read as rows,
        // and a damaged schema entry does not hide the intact ones.
        let _ = src.pragma_update(None, "cell_size_check", true);
        let _ = src.pragma_update(None, "writable_schema", true);
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

/// A file cut short still says in its header how many pages it had, and
/// SQLite then refuses to read even the pages left. The copy is told its
/// true size (header bytes 28-31), so that it reads what is there.
fn fit_size_to_file(copy: &Path) -> std::io::Result<()> {
    let mut b = std::fs::read(copy)?;
    if b.len() < 100 || &b[..16] != b"SQLite format 3\0" {
        return Ok(());
    }
    let page = match u16::from_be_bytes([b[16], b[17]]) {
        1 => 65536,
        p => p as usize,
    };
    if page < 512 {
        return Ok(());
    }
    let stated = u32::from_be_bytes([b[28], b[29], b[30], b[31]]) as usize;
    let actual = b.len() / page;
    if stated > actual {
        b[28..32].copy_from_slice(&(actual as u32).to_be_bytes());
        std::fs::write(copy, &b)?;
    }
    Ok(())
}

fn text(v: &rusqlite::types::Value) -> Option<&str> {
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
/// to `parse`, and each parsed row to `put`. A damaged page costs its own
/// rows only: after a forward pass that skips past damage, a backward
/// pass from the end reads the rows just behind each damaged stretch,
/// which no seek from the front can reach when the damaged page is the
/// one a seek for them descends into.
fn salvage<T>(
    src: &Connection,
    table: &str,
    columns: &str,
    parse: impl Fn(&[rusqlite::types::Value]) -> Option<T>,
    mut put: impl FnMut(T) -> rusqlite::Result<()>,
) -> Result<Salvaged, RecoverError> {
    let mut out = Salvaged::default();
    let mut seen = std::collections::HashSet::new();
    let mut take = |values: Vec<rusqlite::types::Value>, out: &mut Salvaged| {
        if let Some(rowid) = int(&values[0]) {
            if !seen.insert(rowid) {
                return Ok(());
            }
        }
        match parse(&values) {
            Some(t) => {
                put(t)?;
                out.recovered += 1;
            }
            None => out.unparsable += 1,
        }
        Ok::<(), RecoverError>(())
    };
    let ranges = scan(src, table, columns, true, &mut |v| take(v, &mut out));
    let Some(ranges) = ranges? else {
        out.table_lost = true;
        return Ok(out);
    };
    out.unreadable_ranges = ranges;
    if ranges > 0 {
        scan(src, table, columns, false, &mut |v| take(v, &mut out))?;
    }
    Ok(out)
}

/// One pass over the table in rowid order (`forward`) or against it,
/// skipping past damage; `None` when the table cannot be read at all,
/// else the number of damaged stretches skipped. Rowids below zero (which
/// Herald never writes) are not looked for past damage.
fn scan(
    src: &Connection,
    table: &str,
    columns: &str,
    forward: bool,
    take: &mut dyn FnMut(Vec<rusqlite::types::Value>) -> Result<(), RecoverError>,
) -> Result<Option<u64>, RecoverError> {
    let ncols = columns.split(',').count() + 1;
    let (cmp, order, strict) = if forward {
        (">=", "ASC", ">")
    } else {
        ("<=", "DESC", "<")
    };
    let scan =
        format!("SELECT rowid, {columns} FROM {table} WHERE rowid {cmp} ?1 ORDER BY rowid {order}");
    let seek =
        format!("SELECT rowid FROM {table} WHERE rowid {strict} ?1 ORDER BY rowid {order} LIMIT 1");
    let (mut scan, mut seek) = match (src.prepare(&scan), src.prepare(&seek)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Ok(None),
    };
    // Moves a rowid one further in the scan's direction.
    let ahead = |r: i64, by: i64| {
        if forward {
            r.checked_add(by)
        } else {
            r.checked_sub(by)
        }
    };
    let mut from = if forward { i64::MIN } else { i64::MAX };
    let mut ranges = 0u64;
    loop {
        let mut rows = match scan.query([from]) {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        let mut failed = false;
        loop {
            match rows.next() {
                Ok(None) => break,
                Ok(Some(row)) => {
                    let values: Option<Vec<rusqlite::types::Value>> =
                        (0..ncols).map(|i| row.get_ref(i).ok().map(owned)).collect();
                    let Some(values) = values else { continue };
                    if let Some(r) = int(&values[0]) {
                        match ahead(r, 1) {
                            Some(n) => from = n,
                            None => {
                                take(values)?;
                                return Ok(Some(ranges));
                            }
                        }
                    }
                    take(values)?;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            return Ok(Some(ranges));
        }
        drop(rows);
        ranges += 1;
        // Seek ever further past the damage until a seek succeeds, then
        // back towards the damage for the first seek that still does: a
        // doubling step alone would jump over readable rows.
        let mut seek_past = |probe: i64| -> Result<Option<i64>, ()> {
            match seek.query_row([probe], |r| r.get::<_, i64>(0)) {
                Ok(next) => Ok(Some(next)),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(_) => Err(()),
            }
        };
        if forward {
            from = from.max(0);
        }
        let mut failed_at = from;
        let mut step: i64 = 1;
        let (mut ok_at, mut next) = loop {
            let Some(probe) = ahead(from, step) else {
                return Ok(Some(ranges));
            };
            match seek_past(probe) {
                Ok(next) => break (probe, next),
                Err(()) => {
                    failed_at = probe;
                    step = step.saturating_mul(2);
                    if step == i64::MAX {
                        return Ok(Some(ranges));
                    }
                }
            }
        };
        while (ok_at - failed_at).abs() > 1 {
            let mid = failed_at + (ok_at - failed_at) / 2;
            match seek_past(mid) {
                Ok(n) => (ok_at, next) = (mid, n),
                Err(()) => failed_at = mid,
            }
        }
        match next {
            Some(n) => from = n,
            None => return Ok(Some(ranges)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `n` rows of about 1 KB, three or so to a page.
    fn table(path: &Path, n: i64) {
        let c = Connection::open(path).unwrap();
        c.execute_batch("CREATE TABLE t (body TEXT NOT NULL)")
            .unwrap();
        for i in 0..n {
            c.execute(
                "INSERT INTO t (body) VALUES (?1)",
                [format!("row-{i:03}-{}", "x".repeat(1000))],
            )
            .unwrap();
        }
    }

    /// The ids of the rows of `table` salvaged from `c`, sorted.
    fn salvage_ids(c: &Connection) -> (Vec<i64>, Salvaged) {
        let mut got = Vec::new();
        let s = salvage(
            c,
            "t",
            "body",
            |row| text(&row[1])?[4..7].parse::<i64>().ok(),
            |i| {
                got.push(i);
                Ok(())
            },
        )
        .unwrap();
        got.sort();
        (got, s)
    }

    fn rows_on(bytes: &[u8], n: i64) -> Vec<i64> {
        (0..n)
            .filter(|i| {
                let m = format!("row-{i:03}-");
                bytes.windows(m.len()).any(|w| w == m.as_bytes())
            })
            .collect()
    }

    /// Garbage over one leaf page costs the rows on it, and no others.
    #[test]
    fn a_damaged_page_costs_only_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        table(&path, 40);
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096;
        let at = bytes.windows(8).position(|w| w == b"row-020-").unwrap();
        let start = at / page * page;
        let lost = rows_on(&bytes[start..start + page], 40);
        bytes[start..start + page].fill(0xa5);
        std::fs::write(&path, &bytes).unwrap();
        let c = Connection::open(&path).unwrap();
        let (got, s) = salvage_ids(&c);
        let want: Vec<i64> = (0..40).filter(|i| !lost.contains(i)).collect();
        assert_eq!(got, want, "lost {lost:?}");
        assert_eq!(s.recovered as usize, want.len());
        assert_eq!(s.unreadable_ranges, 1);
    }

    /// A file cut short: every row on the pages left is read, and the scan
    /// ends.
    #[test]
    fn a_truncated_file_gives_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        table(&path, 40);
        let bytes = std::fs::read(&path).unwrap();
        let half = bytes.len() / 2 / 4096 * 4096;
        std::fs::write(&path, &bytes[..half]).unwrap();
        let kept = rows_on(&bytes[..half], 40);
        fit_size_to_file(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        let (got, _) = salvage_ids(&c);
        assert_eq!(got, kept);
    }
}
