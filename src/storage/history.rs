//! The `notification_history` table: the writer's side (insert, coalesce,
//! bound, expire) and the readers' (a query on a read-only connection of
//! its own, which WAL lets run beside the writer's commits).
//!
//! Coalescing is decided here, on the writer thread, from what it knows of
//! the newest row of each (group key, receiver, integration, index): a
//! deduplicated or muted flush whose outcome and alert set are those of
//! that row moves the row (`last_at`, `count`, and `seq`, so it sorts as
//! new) instead of adding one. The writer learns that newest row from its
//! own inserts and, at start, from the table; a row since deleted (bound,
//! retention) is noticed when the update changes nothing, and a new row is
//! inserted instead.

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;
use rusqlite::{params, Connection, OpenFlags, Transaction};

use crate::history::{Body, HistoryError, Outcome, Record, Scan, Write};

/// Schema version 2.
pub(super) const MIGRATION: &str = "
    -- Times are Unix microseconds. `seq`, the rowid, orders rows by their
    -- last change (newest first, paging, the size bound): appending is the
    -- whole cost of a record, with no index to keep. `id` stays for the
    -- row's life (coalescing gives the row a new seq).
    CREATE TABLE notification_history (
        seq INTEGER PRIMARY KEY,
        id INTEGER NOT NULL,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        count INTEGER NOT NULL,
        receiver TEXT NOT NULL,
        integration TEXT NOT NULL,
        idx INTEGER NOT NULL,
        group_key TEXT NOT NULL,
        outcome TEXT NOT NULL,
        alerts_hash INTEGER NOT NULL,
        body TEXT NOT NULL
    );
";

pub(super) const TABLE: &str = "notification_history";

/// A (group key, receiver, integration, index) as the newest-row map
/// keys it: a 64-bit hash rather than the three strings, which the map
/// would hash twice per record (the transaction's map, then the writer's)
/// and keep for every group. Two keys colliding would also need the same
/// outcome and alert-set hash to be coalesced by mistake.
type Key = u64;

fn key(group_key: &str, receiver: &str, integration: &str, idx: i64) -> Key {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for s in [group_key, receiver, integration] {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.update(&idx.to_le_bytes());
    h.digest()
}

#[derive(Clone, Copy, Debug)]
struct Latest {
    /// The row's current seq (its rowid).
    seq: i64,
    outcome: Outcome,
    hash: i64,
}

/// What the writer knows of the table.
#[derive(Default)]
pub(super) struct State {
    next_id: i64,
    next_seq: i64,
    rows: i64,
    latest: HashMap<Key, Latest>,
}

/// A transaction's changes to [`State`], applied once it has committed.
#[derive(Default)]
pub(super) struct Pending {
    latest: HashMap<Key, Latest>,
    added: i64,
    deleted: i64,
    /// The bound of the batch's last record: the table is trimmed to it.
    max_records: Option<usize>,
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

impl State {
    /// Reads the table's counters and the newest row of each key.
    pub(super) fn read(conn: &Connection) -> rusqlite::Result<State> {
        let (next_id, next_seq, rows) = conn.query_row(
            "SELECT coalesce(max(id), 0) + 1, coalesce(max(seq), 0) + 1, count(*) FROM notification_history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut latest = HashMap::new();
        let mut st = conn.prepare(
            "SELECT seq, group_key, receiver, integration, idx, outcome, alerts_hash FROM notification_history \
             WHERE seq IN (SELECT max(seq) FROM notification_history GROUP BY group_key, receiver, integration, idx)",
        )?;
        let found = st.query_map([], |r| {
            let k = key(
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                r.get(4)?,
            );
            let outcome: String = r.get(5)?;
            Ok((k, Outcome::parse(&outcome), r.get(0)?, r.get(6)?))
        })?;
        for row in found {
            // A row of an outcome this Herald does not know never
            // coalesces.
            if let (k, Some(outcome), seq, hash) = row? {
                latest.insert(k, Latest { seq, outcome, hash });
            }
        }
        Ok(State {
            next_id,
            next_seq,
            rows,
            latest,
        })
    }

    pub(super) fn commit(&mut self, p: Pending, conn: &Connection) {
        self.rows += p.added - p.deleted;
        self.latest.extend(p.latest);
        // Keys of deleted rows are only noticed when used: once they
        // outnumber the rows, the map is read again from the table.
        if self.latest.len() as i64 > 2 * self.rows + 1024 {
            match State::read(conn) {
                Ok(fresh) => self.latest = fresh.latest,
                Err(e) => tracing::debug!(err = %e, "re-reading the newest history rows failed"),
            }
        }
    }
}

/// Inserts a record, or coalesces it into the newest row of its key.
pub(super) fn put(
    tx: &Transaction<'_>,
    state: &mut State,
    pending: &mut Pending,
    w: &mut Write,
    max_records: usize,
) -> rusqlite::Result<()> {
    pending.max_records = Some(max_records);
    let k = key(&w.group_key, &w.receiver, &w.integration, w.index);
    let hash = w.alerts_hash as i64;
    let outcome = w.outcome.as_str();
    let at = micros(w.at);
    // Seqs are never reused, even from a transaction that failed.
    let seq = state.next_seq;
    state.next_seq += 1;
    if w.outcome.coalesces() {
        let newest = pending.latest.get(&k).or_else(|| state.latest.get(&k));
        if let Some(&l) = newest.filter(|l| l.outcome == w.outcome && l.hash == hash) {
            let changed = tx
                .prepare_cached(
                    "UPDATE notification_history SET seq = ?1, last_at = max(last_at, ?2), count = count + 1 WHERE seq = ?3",
                )?
                .execute(params![seq, at, l.seq])?;
            if changed == 1 {
                pending.latest.insert(k, Latest { seq, ..l });
                return Ok(());
            }
        }
    }
    let id = state.next_id;
    state.next_id += 1;
    let body = std::mem::replace(&mut w.body, Box::new(String::new))();
    tx.prepare_cached(
        "INSERT INTO notification_history (id, seq, first_at, last_at, count, receiver, integration, idx, group_key, outcome, alerts_hash, body) \
         VALUES (?1, ?2, ?3, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id,
        seq,
        at,
        w.receiver,
        w.integration,
        w.index,
        w.group_key,
        outcome,
        hash,
        body
    ])?;
    pending.added += 1;
    pending.latest.insert(
        k,
        Latest {
            seq,
            outcome: w.outcome,
            hash,
        },
    );
    Ok(())
}

/// Deletes the oldest rows beyond the batch's bound, in the batch's
/// transaction: the table never holds more than the bound once committed.
pub(super) fn trim(
    tx: &Transaction<'_>,
    state: &State,
    pending: &mut Pending,
) -> rusqlite::Result<()> {
    let Some(max) = pending.max_records else {
        return Ok(());
    };
    let excess = state.rows + pending.added - pending.deleted - max as i64;
    if excess > 0 {
        let n = tx
            .prepare_cached(
                "DELETE FROM notification_history WHERE seq IN (SELECT seq FROM notification_history ORDER BY seq LIMIT ?1)",
            )?
            .execute(params![excess])?;
        pending.deleted += n as i64;
    }
    Ok(())
}

/// Deletes rows whose last change is before `before` (`--data.retention`).
pub(super) fn expire(
    tx: &Transaction<'_>,
    pending: &mut Pending,
    before: Timestamp,
) -> rusqlite::Result<()> {
    let n = tx
        .prepare_cached("DELETE FROM notification_history WHERE last_at < ?1")?
        .execute(params![micros(before)])?;
    pending.deleted += n as i64;
    Ok(())
}

/// Reads rows newest first on a read-only connection of its own; blocks.
pub(super) fn scan(
    db: &Path,
    scan: &Scan,
    visit: &mut dyn FnMut(Record) -> bool,
) -> Result<(), HistoryError> {
    let read = |e: rusqlite::Error| HistoryError::Read(e.to_string());
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(read)?;
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(b) = scan.before_seq {
        conds.push("seq < ?".into());
        args.push(b.into());
    }
    if !scan.outcomes.is_empty() {
        conds.push(format!(
            "outcome IN ({})",
            vec!["?"; scan.outcomes.len()].join(",")
        ));
        args.extend(scan.outcomes.iter().map(|o| o.as_str().to_string().into()));
    }
    if !scan.integrations.is_empty() {
        conds.push(format!(
            "integration IN ({})",
            vec!["?"; scan.integrations.len()].join(",")
        ));
        args.extend(scan.integrations.iter().map(|i| i.clone().into()));
    }
    // A coalesced row spans first_at..last_at: it is in a range it meets.
    if let Some(s) = scan.since {
        conds.push("last_at >= ?".into());
        args.push(micros(s).into());
    }
    if let Some(u) = scan.until {
        conds.push("first_at <= ?".into());
        args.push(micros(u).into());
    }
    let mut sql = String::from(
        "SELECT id, seq, first_at, last_at, count, receiver, integration, idx, group_key, outcome, body FROM notification_history",
    );
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(" ORDER BY seq DESC");
    let mut st = conn.prepare(&sql).map_err(read)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(read)?;
    let time = |us: i64| {
        Timestamp::from_microsecond(us)
            .map_err(|e| HistoryError::Read(format!("a row's time {us}: {e}")))
    };
    while let Some(row) = rows.next().map_err(read)? {
        let outcome: String = row.get(9).map_err(read)?;
        let body: String = row.get(10).map_err(read)?;
        let id: i64 = row.get(0).map_err(read)?;
        let record = Record {
            id,
            seq: row.get(1).map_err(read)?,
            first_at: time(row.get(2).map_err(read)?)?,
            last_at: time(row.get(3).map_err(read)?)?,
            count: u64::try_from(row.get::<_, i64>(4).map_err(read)?).unwrap_or(0),
            receiver: row.get(5).map_err(read)?,
            integration: row.get(6).map_err(read)?,
            index: u32::try_from(row.get::<_, i64>(7).map_err(read)?).ok(),
            group_key: row.get(8).map_err(read)?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| {
                HistoryError::Read(format!("row {id}: unknown outcome {outcome:?}"))
            })?,
            body: serde_json::from_str::<Body>(&body)
                .map_err(|e| HistoryError::Read(format!("row {id}: {e}")))?,
        };
        if !visit(record) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Op, Storage, MIGRATIONS};
    use crate::history::{HistoryStore, Outcome, Scan, Write};
    use jiff::Timestamp;
    use rusqlite::Connection;

    fn write(group: &str, outcome: Outcome, hash: u64, at: i64) -> Write {
        let body = format!(r#"{{"group_labels":{{"g":"{group}"}},"alerts":[],"attempts":1}}"#);
        Write {
            at: Timestamp::from_second(at).unwrap(),
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
            group_key: group.into(),
            outcome,
            alerts_hash: hash,
            body: Box::new(move || body),
        }
    }

    fn all(st: &Storage) -> Vec<crate::history::Record> {
        let mut out = Vec::new();
        st.scan(&Scan::default(), &mut |r| {
            out.push(r);
            true
        })
        .unwrap();
        out
    }

    fn sync(st: &Storage) {
        st.queue(Op::Barrier).wait().unwrap();
    }

    /// Repeated deduplicated or muted flushes of the same alerts become
    /// one row whose count and last time move (and which sorts as new); a
    /// different alert set, another outcome in between or a send starts a
    /// new row; sends never coalesce. The writer's knowledge of the newest
    /// row survives a restart.
    #[test]
    fn repeats_coalesce_and_sends_do_not() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (st, _) = Storage::open(dir.path()).unwrap();
            st.put(write("g1", Outcome::Success, 1, 100), 100);
            st.put(write("g1", Outcome::Success, 1, 101), 100);
            for t in 102..107 {
                st.put(write("g1", Outcome::Deduplicated, 1, t), 100);
            }
            st.put(write("g2", Outcome::Silenced, 7, 107), 100);
            sync(&st);
            let rows = all(&st);
            assert_eq!(rows.len(), 4, "{rows:?}");
            let dedup = &rows[1];
            assert_eq!(dedup.outcome, Outcome::Deduplicated);
            assert_eq!(dedup.count, 5);
            assert_eq!(dedup.first_at.as_second(), 102);
            assert_eq!(dedup.last_at.as_second(), 106);
            assert_eq!(rows[0].group_key, "g2");
            assert!(rows.iter().all(|r| r.body.attempts == 1));
            // Coalescing moves the row to the top.
            st.put(write("g1", Outcome::Deduplicated, 1, 108), 100);
            sync(&st);
            let rows = all(&st);
            assert_eq!((rows[0].id, rows[0].count), (dedup.id, 6));
        }
        let (st, _) = Storage::open(dir.path()).unwrap();
        st.put(write("g1", Outcome::Deduplicated, 1, 109), 100);
        st.put(write("g1", Outcome::Deduplicated, 2, 110), 100);
        st.put(write("g1", Outcome::Inhibited, 2, 111), 100);
        st.put(write("g1", Outcome::Deduplicated, 2, 112), 100);
        sync(&st);
        let rows = all(&st);
        assert_eq!(rows.len(), 7, "{rows:?}");
        assert_eq!(rows[3].count, 7, "coalesced after the restart");
    }

    /// The table never holds more than the bound, the oldest rows go
    /// first, a coalesced row whose row was trimmed is inserted again, and
    /// retention drops rows by their last change.
    #[test]
    fn the_bound_and_retention_hold() {
        let dir = tempfile::tempdir().unwrap();
        let (st, _) = Storage::open(dir.path()).unwrap();
        st.put(write("old", Outcome::Deduplicated, 1, 50), 5);
        for t in 0..20 {
            st.put(write(&format!("g{t}"), Outcome::Success, 1, 100 + t), 5);
        }
        sync(&st);
        let rows = all(&st);
        let groups: Vec<&str> = rows.iter().map(|r| r.group_key.as_str()).collect();
        assert_eq!(groups, ["g19", "g18", "g17", "g16", "g15"]);
        st.put(write("old", Outcome::Deduplicated, 1, 200), 5);
        sync(&st);
        let rows = all(&st);
        assert_eq!(
            (rows.len(), rows[0].group_key.as_str(), rows[0].count),
            (5, "old", 1)
        );
        st.expire_history(Timestamp::from_second(118).unwrap());
        sync(&st);
        let groups: Vec<String> = all(&st).into_iter().map(|r| r.group_key).collect();
        assert_eq!(groups, ["old", "g19", "g18"]);
    }

    /// A database of schema version 1 (before the history) opens, keeps
    /// what it held and gets the table.
    #[test]
    fn a_version_1_database_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("herald.db");
        {
            // Herald's first schema, as a release before the history
            // wrote it, holding an alert.
            let c = Connection::open(&db).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            let a = crate::model::test_alert(100, 4_000_000_000, 100, false);
            let (fp, ends, body) = super::super::version_row(&a).unwrap();
            c.execute(
                "INSERT INTO alert_log (seq, fingerprint, ends_at, body) VALUES (1, ?1, ?2, ?3)",
                rusqlite::params![fp, ends, body],
            )
            .unwrap();
        }
        let (st, loaded) = Storage::open(dir.path()).unwrap();
        assert_eq!(loaded.alerts.len(), 1, "the alerts are still there");
        let c = Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        st.put(write("g", Outcome::Success, 1, 100), 10);
        sync(&st);
        assert_eq!(all(&st).len(), 1);
    }

    /// A version-2 database whose history table is gone is damaged, not
    /// silently repaired.
    #[test]
    fn a_missing_history_table_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Storage::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("herald.db")).unwrap();
        c.execute_batch("DROP TABLE notification_history;").unwrap();
        drop(c);
        let err = Storage::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("notification_history"), "{err}");
    }
}
