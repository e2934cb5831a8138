//! Reads `herald.db-wal` before SQLite does, so that damage to the log is
//! seen and said. SQLite replays the frames up to the last commit frame
//! whose checksum chain verifies and ignores everything after it without
//! a word: a torn last transaction after a crash looks to it exactly like
//! committed transactions lost behind a damaged frame. This reader tells
//! the two apart where the file allows it (format:
//! <https://www.sqlite.org/fileformat2.html#walformat>).

use std::path::Path;

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// The magic number; its lowest bit says whether the checksums read the
/// content as big-endian (1) or little-endian (0) words.
const MAGIC: u32 = 0x377f_0682;
const VERSION: u32 = 3_007_000;

/// What the log holds, as SQLite will see it and beyond.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct WalReport {
    pub(crate) len: u64,
    pub(crate) page_size: u32,
    /// Frames SQLite replays (up to and including the last valid commit).
    pub(crate) replayed_frames: u64,
    /// Frames of the current log after the last valid commit that SQLite
    /// ignores: an unfinished transaction, or frames that do not verify.
    pub(crate) dropped_frames: u64,
    /// Bytes after the last valid commit frame, stale frames included.
    pub(crate) dropped_bytes: u64,
    /// The first frame (0-based) whose checksum or salts did not verify,
    /// when it carries the current salts.
    pub(crate) first_bad_frame: Option<u64>,
    /// Committed transactions after a damaged frame: frames that verify
    /// against their predecessor's stored checksum and end in a commit
    /// frame. SQLite drops them; they were acknowledged.
    pub(crate) lost_commits: u64,
}

/// Why the log cannot be trusted as SQLite would take it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WalDamage {
    #[error("its header is not a write-ahead log header ({0})")]
    Header(String),
    #[error("frame {first_bad} (of {frames}) does not verify, but {lost_commits} committed transaction(s) after it do: SQLite would silently drop them")]
    LostCommits {
        first_bad: u64,
        frames: u64,
        lost_commits: u64,
    },
}

impl WalReport {
    /// Whether SQLite will ignore anything of the current log: worth a
    /// warning (a torn last transaction after a crash, usually).
    pub(crate) fn drops_anything(&self) -> bool {
        self.dropped_frames > 0 || self.first_bad_frame.is_some()
    }
}

/// Reads and checks the log at `path` (it must exist).
pub(crate) fn check_file(path: &Path) -> std::io::Result<Result<WalReport, WalDamage>> {
    let bytes = std::fs::read(path)?;
    Ok(check(&bytes))
}

/// SQLite's checksum: pairs of 32-bit words summed into two accumulators
/// that feed each other, seeded with the previous checksum.
fn checksum(big_endian: bool, seed: (u32, u32), data: &[u8]) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for pair in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let w = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s0 = s0.wrapping_add(word(&pair[0..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..8])).wrapping_add(s0);
    }
    (s0, s1)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks the bytes of a log.
pub(crate) fn check(b: &[u8]) -> Result<WalReport, WalDamage> {
    let len = b.len() as u64;
    // SQLite takes a log shorter than its header as empty: it is what a
    // truncating checkpoint leaves, or a log created and not yet written.
    if b.len() < HEADER {
        return Ok(WalReport {
            len,
            dropped_bytes: len,
            ..WalReport::default()
        });
    }
    let magic = be32(b, 0);
    if magic & !1 != MAGIC {
        return Err(WalDamage::Header(format!("magic number {magic:#010x}")));
    }
    let big_endian = magic & 1 == 1;
    let version = be32(b, 4);
    if version != VERSION {
        return Err(WalDamage::Header(format!("format version {version}")));
    }
    let page_size = be32(b, 8);
    let page_ok = (512..=65536).contains(&page_size) && page_size.is_power_of_two();
    let salts = (be32(b, 16), be32(b, 20));
    let header_sum = checksum(big_endian, (0, 0), &b[..24]);
    if !page_ok || header_sum != (be32(b, 24), be32(b, 28)) {
        // A header is written in one sector, after a checkpoint has copied
        // every frame into the database: a torn one is next to impossible,
        // and a damaged one hides whatever the frames hold.
        return Err(WalDamage::Header(if page_ok {
            "header checksum does not verify".into()
        } else {
            format!("page size {page_size}")
        }));
    }
    let frame_len = FRAME_HEADER + page_size as usize;
    let frames = (b.len() - HEADER) / frame_len;
    let frame = |i: usize| &b[HEADER + i * frame_len..HEADER + (i + 1) * frame_len];
    let stored = |f: &[u8]| (be32(f, 16), be32(f, 20));
    let salted = |f: &[u8]| (be32(f, 8), be32(f, 12)) == salts;
    // The frame's checksum covers the first 8 bytes of its header and its
    // page, seeded with the checksum before it.
    let verifies = |f: &[u8], seed: (u32, u32)| {
        let s = checksum(big_endian, seed, &f[..8]);
        checksum(big_endian, s, &f[FRAME_HEADER..]) == stored(f)
    };
    let commit = |f: &[u8]| be32(f, 4) != 0;

    let mut seed = header_sum;
    let mut last_commit: Option<usize> = None;
    let mut valid = 0usize;
    let mut first_bad: Option<usize> = None;
    for i in 0..frames {
        let f = frame(i);
        if !salted(f) || !verifies(f, seed) {
            // Frames with other salts are what an earlier generation of the
            // log left behind (SQLite restarts the log from its start after
            // a full checkpoint): stale, not damage. A frame with the
            // current salts that does not verify is damaged or torn.
            if salted(f) {
                first_bad = Some(i);
            }
            break;
        }
        seed = stored(f);
        valid = i + 1;
        if commit(f) {
            last_commit = Some(i);
        }
    }
    let replayed = last_commit.map_or(0, |i| i + 1);
    // Past the break, look for frames of this generation that still chain
    // to their predecessor's stored checksum and reach a commit frame:
    // transactions that were committed after the damaged frame.
    let mut lost_commits = 0u64;
    let mut current_frames = valid;
    for i in valid..frames {
        let f = frame(i);
        if !salted(f) {
            continue;
        }
        current_frames = i + 1;
        let prev = i.checked_sub(1).map(frame);
        let chained = i > valid && prev.is_some_and(|p| salted(p) && verifies(f, stored(p)));
        if chained && commit(f) {
            lost_commits += 1;
        }
    }
    let report = WalReport {
        len,
        page_size,
        replayed_frames: replayed as u64,
        dropped_frames: (current_frames - replayed) as u64,
        dropped_bytes: len - (HEADER + replayed * frame_len) as u64,
        first_bad_frame: first_bad.map(|i| i as u64),
        lost_commits,
    };
    if lost_commits > 0 {
        return Err(WalDamage::LostCommits {
            first_bad: first_bad.unwrap_or(valid) as u64,
            frames: frames as u64,
            lost_commits,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// Builds a log as SQLite writes one: `frames` are (page number,
    /// commit size, fill byte).
    fn wal(big_endian: bool, salts: (u32, u32), frames: &[(u32, u32, u8)]) -> Vec<u8> {
        let mut b = Vec::new();
        let magic = MAGIC | big_endian as u32;
        for w in [magic, VERSION, PAGE as u32, 0, salts.0, salts.1] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        let mut seed = checksum(big_endian, (0, 0), &b);
        b.extend_from_slice(&seed.0.to_be_bytes());
        b.extend_from_slice(&seed.1.to_be_bytes());
        for &(page, commit, fill) in frames {
            let mut h = Vec::new();
            for w in [page, commit, salts.0, salts.1] {
                h.extend_from_slice(&w.to_be_bytes());
            }
            let content = vec![fill; PAGE];
            seed = checksum(big_endian, seed, &h[..8]);
            seed = checksum(big_endian, seed, &content);
            h.extend_from_slice(&seed.0.to_be_bytes());
            h.extend_from_slice(&seed.1.to_be_bytes());
            b.extend_from_slice(&h);
            b.extend_from_slice(&content);
        }
        b
    }

    fn at(frame: usize) -> usize {
        HEADER + frame * (FRAME_HEADER + PAGE)
    }

    /// Two transactions of two frames each, then one of three.
    fn three_transactions(big_endian: bool) -> Vec<u8> {
        wal(
            big_endian,
            (7, 9),
            &[
                (1, 0, 1),
                (2, 2, 2),
                (3, 0, 3),
                (1, 3, 4),
                (4, 0, 5),
                (5, 0, 6),
                (2, 5, 7),
            ],
        )
    }

    #[test]
    fn an_intact_log_replays_every_frame() {
        for be in [false, true] {
            let r = check(&three_transactions(be)).unwrap();
            assert_eq!(r.replayed_frames, 7);
            assert_eq!(r.dropped_frames, 0);
            assert_eq!(r.dropped_bytes, 0);
            assert!(!r.drops_anything());
        }
    }

    #[test]
    fn empty_and_header_only_logs_are_fine() {
        assert!(!check(&[]).unwrap().drops_anything());
        let r = check(&wal(false, (1, 2), &[])).unwrap();
        assert_eq!((r.replayed_frames, r.dropped_frames), (0, 0));
    }

    /// A crash in the middle of the last transaction: its frames are
    /// dropped, which SQLite is right to do and Herald only reports.
    #[test]
    fn a_torn_last_transaction_is_reported_not_refused() {
        let full = three_transactions(false);
        // Cut inside the sixth frame: the third transaction is unfinished.
        let cut = &full[..at(5) + 100];
        let r = check(cut).unwrap();
        assert_eq!(r.replayed_frames, 4);
        assert_eq!(
            r.dropped_frames, 1,
            "the fifth frame verifies but never commits"
        );
        assert_eq!(r.dropped_bytes, (cut.len() - at(4)) as u64);
        assert!(r.drops_anything());
        // The commit frame itself half written.
        let mut torn = full.clone();
        torn[at(6) + FRAME_HEADER + 10..].fill(0);
        let r = check(&torn).unwrap();
        assert_eq!(r.replayed_frames, 4);
        assert_eq!(r.first_bad_frame, Some(6));
        assert_eq!(r.dropped_frames, 3);
    }

    /// The log cut in half: whatever followed the cut is gone from the
    /// file, and nothing left says it was ever committed.
    #[test]
    fn a_log_cut_in_half_keeps_what_verifies() {
        let full = three_transactions(true);
        let r = check(&full[..full.len() / 2]).unwrap();
        assert_eq!(r.replayed_frames, 2);
        assert_eq!(r.dropped_frames, 1);
    }

    /// Garbage over a frame in the middle: later frames still chain to
    /// their predecessors and end in a commit, so committed data would be
    /// dropped.
    #[test]
    fn garbage_in_the_middle_is_damage() {
        for be in [false, true] {
            let mut b = three_transactions(be);
            b[at(2) + FRAME_HEADER + 40..at(2) + FRAME_HEADER + 80].fill(0xAB);
            let err = check(&b).unwrap_err();
            assert_eq!(
                err,
                WalDamage::LostCommits {
                    first_bad: 2,
                    frames: 7,
                    lost_commits: 2
                }
            );
        }
        // Garbage over a frame header (its stored checksum too): the frame
        // after it cannot chain, the ones after that can.
        let mut b = three_transactions(false);
        b[at(4)..at(4) + FRAME_HEADER].fill(0x55);
        assert!(matches!(
            check(&b),
            Err(WalDamage::LostCommits {
                first_bad: 4,
                lost_commits: 1,
                ..
            })
        ));
    }

    /// Garbage in the last transaction before its intact commit frame:
    /// a commit frame is written after every frame before it, so that
    /// transaction had committed, and is lost too.
    #[test]
    fn garbage_before_the_last_commit_is_damage_too() {
        let mut b = three_transactions(false);
        b[at(5) + FRAME_HEADER + 1] ^= 0xFF;
        assert_eq!(
            check(&b),
            Err(WalDamage::LostCommits {
                first_bad: 5,
                frames: 7,
                lost_commits: 1
            })
        );
        // Garbage over the commit frame itself: nothing after it says the
        // transaction was complete; a torn write looks the same.
        let mut b = three_transactions(false);
        b[at(6) + FRAME_HEADER + 1] ^= 0xFF;
        let r = check(&b).unwrap();
        assert_eq!(r.replayed_frames, 4);
        assert_eq!(r.first_bad_frame, Some(6));
        assert_eq!(r.dropped_frames, 3);
    }

    /// Frames an earlier generation of the log left after the current
    /// ones (other salts) are neither replayed nor damage.
    #[test]
    fn stale_frames_of_an_earlier_generation_are_not_damage() {
        let old = three_transactions(false);
        let new = wal(false, (8, 10), &[(1, 0, 9), (2, 2, 9)]);
        let mut b = old.clone();
        b[..new.len()].copy_from_slice(&new);
        let r = check(&b).unwrap();
        assert_eq!(r.replayed_frames, 2);
        assert_eq!(r.dropped_frames, 0);
        assert_eq!(r.first_bad_frame, None);
        assert!(!r.drops_anything());
        assert_eq!(r.dropped_bytes, (old.len() - new.len()) as u64);
    }

    #[test]
    fn a_damaged_header_is_damage() {
        let mut b = three_transactions(false);
        b[0] = 0;
        assert!(matches!(check(&b), Err(WalDamage::Header(_))));
        let mut b = three_transactions(false);
        b[17] ^= 1; // a salt: the header checksum no longer verifies
        assert!(matches!(check(&b), Err(WalDamage::Header(_))));
        let mut b = three_transactions(false);
        b[8..12].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(check(&b), Err(WalDamage::Header(_))));
    }

    /// The reader agrees with SQLite on a log SQLite wrote.
    #[test]
    fn a_log_written_by_sqlite_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch("CREATE TABLE t (x)").unwrap();
        for i in 0..20 {
            c.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>3000}")])
                .unwrap();
        }
        let wal_path = dir.path().join("t.db-wal");
        let bytes = std::fs::read(&wal_path).unwrap();
        let r = check(&bytes).unwrap();
        assert!(r.replayed_frames >= 21, "{r:?}");
        assert!(!r.drops_anything(), "{r:?}");
        // Garbage over a frame of the fifth transaction: the fifteen after
        // it are committed and would be lost.
        let frame_len = FRAME_HEADER + r.page_size as usize;
        let mid = HEADER + (r.replayed_frames as usize / 3) * frame_len + FRAME_HEADER + 100;
        let mut bad = bytes.clone();
        bad[mid..mid + 64].fill(0x42);
        assert!(matches!(check(&bad), Err(WalDamage::LostCommits { .. })));
        drop(c);
    }
}
