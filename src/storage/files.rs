//! The files of the storage directory: what must be true of them before
//! SQLite may open the database, how a new database comes into place
//! whole, and the lock that keeps `herald storage recover` off a live one.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{import_alertmanager, wal, StorageError, MIGRATIONS};

pub const DB_FILE: &str = "herald.db";
const LOCK_FILE: &str = "herald.lock";
/// Where a new database is built before it is renamed into place.
pub(crate) const NEW_FILE: &str = "herald.db.new";
/// The first 16 bytes of every SQLite database.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub(crate) fn db(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

pub(crate) fn wal(dir: &Path) -> PathBuf {
    dir.join(format!("{DB_FILE}-wal"))
}

pub(crate) fn shm(dir: &Path) -> PathBuf {
    dir.join(format!("{DB_FILE}-shm"))
}

/// Takes the directory's lock: shared for a server (several may share
/// a directory, as before the lock existed), exclusive for a recovery.
/// The lock goes with the returned file.
pub(crate) fn lock(dir: &Path, exclusive: bool) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let shown = dir.display().to_string();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StorageError::Dir {
            path: path.display().to_string(),
            source,
        })?;
    let taken = if exclusive {
        f.try_lock()
    } else {
        f.try_lock_shared()
    };
    match taken {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Busy {
            dir: shown,
            what: if exclusive {
                "a Herald is running on this storage directory; stop it first".into()
            } else {
                "`herald storage recover` is running on this storage directory; start Herald when it is done".into()
            },
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StorageError::Dir {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Checks the files before SQLite touches them (it would create, truncate
/// or delete some): `Ok(false)` when there is no database yet, `Err` with
/// what is wrong when Herald must not open it.
pub(crate) fn check_before_open(dir: &Path) -> Result<bool, String> {
    let db = db(dir);
    let meta = match std::fs::metadata(&db) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // SQLite would delete a log it finds without its database.
            for orphan in [wal(dir), shm(dir)] {
                if orphan.exists() {
                    return Err(format!(
                        "it is missing, but {} is there: the database was lost or moved, and its write-ahead log holds the latest changes",
                        orphan.display()
                    ));
                }
            }
            return Ok(false);
        }
        Err(e) => return Err(format!("it cannot be read: {e}")),
    };
    if meta.len() == 0 {
        // Herald never leaves one (it builds a new database under another
        // name): a write lost by the file system, or a bad restore.
        return Err("it is empty (zero bytes)".into());
    }
    let mut head = [0u8; 100];
    let read = File::open(&db).and_then(|mut f| {
        use std::io::Read;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    });
    match read {
        Ok(n) if n == head.len() && &head[..16] == SQLITE_MAGIC => {}
        Ok(n) if n < head.len() => {
            return Err(format!(
                "it is {n} bytes long, shorter than an SQLite header"
            ))
        }
        Ok(_) => return Err("it is not an SQLite database (its header is wrong)".into()),
        Err(e) => return Err(format!("it cannot be read: {e}")),
    }
    let wal_path = wal(dir);
    if wal_path.exists() {
        let shown = wal_path.display();
        match wal::check_file(&wal_path) {
            Err(e) => return Err(format!("its write-ahead log {shown} cannot be read: {e}")),
            Ok(Err(damage)) => {
                return Err(format!("its write-ahead log {shown} is damaged: {damage}"))
            }
            Ok(Ok(r)) if r.drops_anything() => {
                // What a crash in the middle of a commit leaves: that
                // transaction was never acknowledged.
                tracing::warn!(
                    wal = %shown,
                    replayed_frames = r.replayed_frames,
                    dropped_frames = r.dropped_frames,
                    dropped_bytes = r.dropped_bytes,
                    first_bad_frame = r.first_bad_frame,
                    "The write-ahead log ends in an unfinished transaction (a crash during a commit, most likely); SQLite drops it"
                );
            }
            Ok(Ok(r)) => {
                tracing::debug!(wal = %shown, replayed_frames = r.replayed_frames, "write-ahead log verified")
            }
        }
    }
    Ok(true)
}

/// Builds a new database under a temporary name and renames it into
/// place once its schema (and, with `import`, an Alertmanager data
/// directory's state) has committed: Herald itself never leaves a
/// `herald.db` that is empty or half made, so one found is damage.
pub(crate) fn create(dir: &Path, import: bool) -> Result<(), StorageError> {
    let conn = create_at(dir)?;
    let tx = conn.unchecked_transaction()?;
    for (i, m) in MIGRATIONS.iter().enumerate() {
        tx.execute_batch(m)?;
        // A new database takes over an Alertmanager data directory in
        // the same transaction: if the import fails, nothing is
        // committed and the next start tries again.
        if i == 0 && import {
            import_alertmanager(&tx, dir)?;
        }
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()?;
    put_in_place(dir, conn)
}

/// An empty database at the temporary name, in rollback-journal mode so
/// that closing it leaves one whole file to rename.
pub(crate) fn create_at(dir: &Path) -> Result<Connection, StorageError> {
    let tmp = dir.join(NEW_FILE);
    // Left by a start or a recovery that stopped half way.
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", tmp.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StorageError::Dir {
                    path: p.display().to_string(),
                    source,
                })
            }
        }
    }
    Connection::open(&tmp).map_err(|source| StorageError::Open {
        path: tmp.display().to_string(),
        source,
    })
}

/// Closes the database built by [`create_at`], makes it durable and
/// renames it to `herald.db`.
pub(crate) fn put_in_place(dir: &Path, conn: Connection) -> Result<(), StorageError> {
    let tmp = dir.join(NEW_FILE);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| StorageError::Dir { path, source }
    };
    conn.close().map_err(|(_, e)| StorageError::Sql(e))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, db(dir)).map_err(io(&tmp))?;
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

/// The mark `herald storage recover` leaves: a row in a `meta` table,
/// which older Herald versions (same schema version) ignore.
pub(crate) fn set_recovered_mark(conn: &Connection, at: &str) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('recovered_at', ?1)",
        [at],
    )?;
    Ok(())
}

fn has_meta(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

pub(crate) fn recovered_mark(conn: &Connection) -> rusqlite::Result<bool> {
    if !has_meta(conn)? {
        return Ok(false);
    }
    conn.query_row(
        "SELECT count(*) FROM meta WHERE key = 'recovered_at'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

pub(crate) fn clear_recovered_mark(conn: &Connection) -> rusqlite::Result<()> {
    if has_meta(conn)? {
        conn.execute("DELETE FROM meta WHERE key = 'recovered_at'", [])?;
    }
    Ok(())
}
