//! A damaged database is never loaded silently: each kind of damage an
//! operator meets (a truncated file, garbage in it, a write-ahead log cut
//! or overwritten, a log without its database) either refuses to start
//! with every file as it was, or is the normal aftermath of a crash; and
//! `herald storage recover` gets back every row that can still be read.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const CONFIG: &str = "route:\n  receiver: r\nreceivers:\n  - name: r\n";
const SILENCES: usize = 20;

fn data(root: &Path) -> PathBuf {
    root.join("data")
}

fn db(root: &Path) -> PathBuf {
    data(root).join("herald.db")
}

fn wal(root: &Path) -> PathBuf {
    data(root).join("herald.db-wal")
}

/// A silence whose comment is long and unique, so that twenty of them
/// fill several pages and each can be found in the file.
fn marker(i: usize) -> String {
    format!("silence-{i:02}-{}", "x".repeat(900))
}

/// Starts Herald on `root`, creates the silences one request (one commit)
/// at a time and returns their ids.
async fn populate(root: &Path) -> (Server, Vec<String>) {
    let h = start_herald_at(root, CONFIG, &[]).await;
    let mut ids = Vec::new();
    for i in 0..SILENCES {
        ids.push(create_silence(&h.base, "alertname", &format!("A{i}"), "t", &marker(i)).await);
    }
    (h, ids)
}

fn sigkill(mut s: Server) {
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

fn sigterm(mut s: Server) {
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "herald exited with {st}");
            return;
        }
        assert!(Instant::now() < deadline, "herald did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file of the storage directory but the lock, with its length and
/// a hash of its bytes.
fn files(root: &Path) -> BTreeMap<String, (usize, u64)> {
    use std::hash::{Hash, Hasher};
    std::fs::read_dir(data(root))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "herald.lock")
        .map(|e| {
            (e.file_name().to_string_lossy().into_owned(), {
                let b = std::fs::read(e.path()).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                b.hash(&mut h);
                (b.len(), h.finish())
            })
        })
        .collect()
}

/// Runs Herald's binary to completion (failing the test if it is still
/// running at the deadline) and returns its exit status and output.
fn run(args: &[String]) -> (bool, String, String) {
    let mut child = Command::new(herald_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("herald {args:?} still running at the deadline");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starting Herald on `root` fails, leaves every file byte for byte as it
/// was, and says which database is wrong and how to recover it. Returns
/// the message.
fn assert_refused(root: &Path) -> String {
    let before = files(root);
    std::fs::write(root.join("herald.yml"), CONFIG).unwrap();
    let (ok, _, err) = run(&[
        format!("--config.file={}", root.join("herald.yml").display()),
        format!("--storage.path={}", data(root).display()),
        "--web.listen-address=127.0.0.1:0".into(),
    ]);
    assert!(!ok, "herald started on a damaged database:\n{err}");
    assert!(
        err.contains(&db(root).display().to_string()),
        "the message names the database: {err}"
    );
    assert!(
        err.contains("untouched"),
        "the message says it was left as it was: {err}"
    );
    assert!(
        err.contains(&format!(
            "herald storage recover --storage.path={}",
            data(root).display()
        )),
        "the message gives the recovery command: {err}"
    );
    assert!(
        !err.contains("loading configuration file"),
        "the configuration file is not to blame: {err}"
    );
    assert_eq!(files(root), before, "the files must be left untouched");
    err
}

/// Runs `herald storage recover` and returns (silences recovered, output).
fn recover(root: &Path) -> (usize, String) {
    let (ok, out, err) = run(&[
        "storage".into(),
        "recover".into(),
        format!("--storage.path={}", data(root).display()),
    ]);
    assert!(ok, "recover failed:\n{out}\n{err}");
    let n = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("silences: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no silence count in:\n{out}"));
    let names: Vec<String> = files(root).into_keys().collect();
    assert!(
        names.iter().any(|n| n.starts_with("herald.db.damaged-")),
        "the damaged database is kept beside the new one: {names:?}"
    );
    (n, out)
}

async fn served_silences(root: &Path) -> (Server, Vec<Value>) {
    let h = start_herald_at(root, CONFIG, &[]).await;
    let got = get_json(&format!("{}/api/v2/silences", h.base)).await;
    let list = got.as_array().unwrap().clone();
    (h, list)
}

/// Byte offsets in `bytes` where `needle` starts.
fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_an_empty_log_and_everything_in_the_database() {
    let root = tempfile::tempdir().unwrap();
    let (h, ids) = populate(root.path()).await;
    assert!(
        std::fs::metadata(wal(root.path())).is_ok_and(|m| m.len() > 0),
        "while running, the log holds the latest commits"
    );
    sigterm(h);
    let wal_len = std::fs::metadata(wal(root.path())).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "the log is checkpointed at a clean stop");
    // The database alone holds every silence.
    let c = rusqlite::Connection::open_with_flags(
        db(root.path()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM silences", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as usize, ids.len());
    drop(c);
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_database_is_refused_and_recovered() {
    let root = tempfile::tempdir().unwrap();
    let (h, _) = populate(root.path()).await;
    sigterm(h);
    let bytes = std::fs::read(db(root.path())).unwrap();
    std::fs::write(db(root.path()), &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(root.path());
    let (n, out) = recover(root.path());
    assert!(n < SILENCES, "half the file is gone: {out}");
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), n, "Herald serves what recover reported");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_database_with_its_log_after_sigkill_is_refused_and_recovered() {
    let root = tempfile::tempdir().unwrap();
    let (h, _) = populate(root.path()).await;
    sigkill(h);
    assert!(
        std::fs::metadata(wal(root.path())).is_ok_and(|m| m.len() > 0),
        "SIGKILL leaves the log"
    );
    let bytes = std::fs::read(db(root.path())).unwrap();
    std::fs::write(db(root.path()), &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(root.path());
    let (n, _) = recover(root.path());
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_length_database_is_refused() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data(root.path())).unwrap();
    std::fs::write(db(root.path()), b"").unwrap();
    let err = assert_refused(root.path());
    assert!(err.contains("empty"), "{err}");
    // Nothing to salvage, but recovery gives a database Herald starts on.
    let (n, _) = recover(root.path());
    assert_eq!(n, 0);
    let (_h, served) = served_silences(root.path()).await;
    assert!(served.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_storage_directory_never_holds_a_half_made_database() {
    let root = tempfile::tempdir().unwrap();
    let h = start_herald_at(root.path(), CONFIG, &[]).await;
    let names: Vec<String> = files(root.path()).into_keys().collect();
    assert!(
        !names.iter().any(|n| n.starts_with("herald.db.new")),
        "{names:?}"
    );
    assert!(std::fs::metadata(db(root.path())).unwrap().len() > 0);
    sigterm(h);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_with_a_garbage_header_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (h, _) = populate(root.path()).await;
    sigterm(h);
    let mut bytes = std::fs::read(db(root.path())).unwrap();
    bytes[..100].fill(0x5a);
    std::fs::write(db(root.path()), &bytes).unwrap();
    let err = assert_refused(root.path());
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_without_herald_schema_is_refused() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data(root.path())).unwrap();
    let c = rusqlite::Connection::open(db(root.path())).unwrap();
    c.execute_batch("CREATE TABLE notes (x); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    drop(c);
    let err = assert_refused(root.path());
    assert!(err.contains("schema"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_one_page_of_the_database_costs_only_that_page() {
    let root = tempfile::tempdir().unwrap();
    let (h, ids) = populate(root.path()).await;
    sigterm(h);
    let mut bytes = std::fs::read(db(root.path())).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    // The page that holds the tenth silence's row.
    let at = find(&bytes, marker(9).as_bytes()).expect("the silence is in the file");
    let start = at / page * page;
    // Silences whose rows share that page are lost with it.
    let on_page = (0..SILENCES)
        .filter(|&i| find(&bytes[start..start + page], &marker(i).as_bytes()[..12]).is_some())
        .count();
    bytes[start..start + page].fill(0xa5);
    std::fs::write(db(root.path()), &bytes).unwrap();
    assert_refused(root.path());
    let (n, out) = recover(root.path());
    assert!(
        n == ids.len() - on_page,
        "recovered {n} of {} with {on_page} on the damaged page:\n{out}",
        ids.len()
    );
    assert!(out.contains("damaged stretch"), "{out}");
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), n);
    for s in &served {
        assert!(ids.contains(&s["id"].as_str().unwrap().to_string()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_cut_in_half_after_a_crash_is_a_torn_tail_said_and_survived() {
    let root = tempfile::tempdir().unwrap();
    let (h, ids) = populate(root.path()).await;
    sigkill(h);
    let bytes = std::fs::read(wal(root.path())).unwrap();
    std::fs::write(wal(root.path()), &bytes[..bytes.len() / 2]).unwrap();
    // Nothing after the cut says more was committed: SQLite keeps what
    // verifies, and Herald says what it dropped.
    let (h, served) = served_silences(root.path()).await;
    assert!(
        !served.is_empty() && served.len() < ids.len(),
        "{}",
        served.len()
    );
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("write-ahead log ends in an unfinished transaction")
            && log.contains("dropped_bytes"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_the_middle_of_the_log_is_refused_and_recovered() {
    let root = tempfile::tempdir().unwrap();
    let (h, ids) = populate(root.path()).await;
    sigkill(h);
    let mut bytes = std::fs::read(wal(root.path())).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 256].fill(0x3c);
    std::fs::write(wal(root.path()), &bytes).unwrap();
    let err = assert_refused(root.path());
    assert!(err.contains("write-ahead log"), "{err}");
    // Recovery keeps what SQLite can read: the commits before the garbage.
    let (n, out) = recover(root.path());
    assert!(n > 0 && n < ids.len(), "{out}");
    let names: Vec<String> = files(root.path()).into_keys().collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("herald.db.damaged-") && n.ends_with("-wal")),
        "the damaged log is kept beside the database: {names:?}"
    );
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_without_its_database_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (h, _) = populate(root.path()).await;
    sigkill(h);
    std::fs::rename(db(root.path()), root.path().join("elsewhere.db")).unwrap();
    let err = assert_refused(root.path());
    assert!(err.contains("missing"), "{err}");
    assert!(wal(root.path()).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_herald_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data(root.path())).unwrap();
    let c = rusqlite::Connection::open(db(root.path())).unwrap();
    c.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 42;")
        .unwrap();
    drop(c);
    let before = files(root.path());
    std::fs::write(root.path().join("herald.yml"), CONFIG).unwrap();
    let (ok, _, err) = run(&[
        format!("--config.file={}", root.path().join("herald.yml").display()),
        format!("--storage.path={}", data(root.path()).display()),
        "--web.listen-address=127.0.0.1:0".into(),
    ]);
    assert!(!ok);
    assert!(err.contains("newer Herald"), "{err}");
    assert!(
        err.contains(&db(root.path()).display().to_string()),
        "{err}"
    );
    assert!(!err.contains("loading configuration file"), "{err}");
    assert_eq!(files(root.path()), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_is_refused_while_herald_runs() {
    let root = tempfile::tempdir().unwrap();
    let (h, ids) = populate(root.path()).await;
    let (ok, _, err) = run(&[
        "storage".into(),
        "recover".into(),
        format!("--storage.path={}", data(root.path()).display()),
    ]);
    assert!(!ok);
    assert!(err.contains("a Herald is running"), "{err}");
    sigterm(h);
    // Stopped, an intact database recovers whole.
    let (n, _) = recover(root.path());
    assert_eq!(n, ids.len());
    let (_h, served) = served_silences(root.path()).await;
    assert_eq!(served.len(), ids.len());
}
