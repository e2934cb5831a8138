//! Large JSON arrays (`GET /api/v2/alerts`, `/alerts/groups`) rendered on
//! a few threads and sent while the client reads them.
//!
//! Rendering a million alerts into buffers first held the whole answer
//! (about 700 bytes an alert) in memory before its first byte went out.
//! Here the items are cut into ranges; range `k` is rendered by worker
//! `k % workers` and handed over through a channel holding
//! [`PIECES_AHEAD`] pieces, so at most a few pieces per worker exist at
//! any time, whatever the size of the answer. The body reads the ranges back in order, so the bytes are
//! those a single thread writing the items one after the other produces.

use axum::body::{Body, Bytes};
use tokio::sync::{mpsc, oneshot};

/// Pieces a worker may have rendered that the body has not read: enough
/// for a whole range (about three pieces), so that while one worker's
/// range is read the others render theirs instead of waiting (with one
/// piece, a worker could only run that piece ahead, and rendering was
/// nearly serial).
const PIECES_AHEAD: usize = 4;

/// What a worker hands over: part of a range once its buffer is full, and
/// the rest when the range is done.
enum Piece {
    Part(Vec<u8>),
    End(Vec<u8>),
}

/// The receiving side of a rendering, in the order the body reads it.
pub(crate) struct Ranges {
    workers: Vec<mpsc::Receiver<Piece>>,
    ranges: usize,
}

/// Where the rendering thread hands its [`Ranges`] once it knows what it
/// will render; the handler answers 200 only then.
pub(crate) type Ready = oneshot::Sender<Ranges>;

/// How a rendering is cut.
#[derive(Clone, Copy)]
pub(crate) struct Cut {
    /// Weight per range (items, or what [`render_parts`]'s `weight` counts):
    /// large enough that a small answer stays on one thread, small enough
    /// that the workers share a large one evenly, and that the worker
    /// whose range is read next can render all of it ahead.
    pub(crate) range_items: usize,
    /// A worker hands its buffer over once it holds this much.
    pub(crate) piece_bytes: usize,
}

/// Renders `items` as the elements of a JSON array, in order, for the body
/// `ready` receives (see [`body`]). `render` writes one element and returns
/// false for an item it skipped (whatever it wrote is dropped). Blocks
/// until every piece was taken by the body, or the body is gone (the
/// client left): call it on the blocking pool.
pub(crate) fn render<T: Sync>(
    items: &[T],
    cut: Cut,
    ready: Ready,
    render: impl Fn(&mut Vec<u8>, &T) -> bool + Sync,
) {
    render_parts(
        items,
        |_| 1,
        cut,
        ready,
        |out, item| {
            let mark = out.len();
            // Every element is written after a comma; the body turns
            // the answer's first byte into the opening bracket.
            out.push(b',');
            if !render(out, item) {
                out.truncate(mark);
            }
        },
    )
}

/// Like [`render`], for items that are parts of the array's elements (a
/// group's alerts cut in chunks, so that one large group is rendered by
/// every worker): `write` writes an item's bytes as they are, the comma
/// that starts each element included (the body turns the answer's first
/// byte into the opening bracket). Ranges are cut once the items'
/// `weight` reaches `cut.range_items`.
pub(crate) fn render_parts<T: Sync>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    cut: Cut,
    ready: Ready,
    write: impl Fn(&mut Vec<u8>, &T) + Sync,
) {
    // `starts[k]..starts[k + 1]` is range `k`.
    let mut starts = vec![0];
    let mut held = 0;
    for (i, item) in items.iter().enumerate() {
        held += weight(item);
        if held >= cut.range_items.max(1) && i + 1 < items.len() {
            starts.push(i + 1);
            held = 0;
        }
    }
    starts.push(items.len());
    let ranges = if items.is_empty() {
        0
    } else {
        starts.len() - 1
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
        .min(ranges)
        .max(1);
    let (senders, workers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| mpsc::channel(PIECES_AHEAD)).unzip();
    if ready.send(Ranges { workers, ranges }).is_err() {
        return;
    }
    let work = |w: usize, tx: mpsc::Sender<Piece>| {
        for k in (w..ranges).step_by(threads) {
            let part = &items[starts[k]..starts[k + 1]];
            let capacity = cut.piece_bytes + cut.piece_bytes / 4;
            let mut out = Vec::with_capacity(capacity);
            for item in part {
                write(&mut out, item);
                if out.len() >= cut.piece_bytes
                    && tx
                        .blocking_send(Piece::Part(std::mem::replace(
                            &mut out,
                            Vec::with_capacity(capacity),
                        )))
                        .is_err()
                {
                    return;
                }
            }
            if tx.blocking_send(Piece::End(out)).is_err() {
                return;
            }
        }
    };
    let mut senders = senders.into_iter();
    let first = senders.next();
    std::thread::scope(|s| {
        for (w, tx) in senders.enumerate() {
            let work = &work;
            s.spawn(move || work(w + 1, tx));
        }
        if let Some(tx) = first {
            work(0, tx);
        }
    });
}

/// The answer's body: `[`, the elements as they are rendered, `]` and
/// Go's trailing newline. A rendering that stopped early (a panic) ends
/// the body with an error, so the client sees a cut answer, not a short
/// one.
pub(crate) fn body(ranges: Ranges) -> Body {
    Body::from_stream(stream(ranges))
}

struct Reading {
    ranges: Ranges,
    next: usize,
    started: bool,
    done: bool,
}

fn stream(
    ranges: Ranges,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let state = Reading {
        ranges,
        next: 0,
        started: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if st.next == st.ranges.ranges {
                st.done = true;
                let end: &'static [u8] = if st.started { b"]\n" } else { b"[]\n" };
                return Some((Ok(Bytes::from_static(end)), st));
            }
            let n = st.ranges.workers.len();
            let (mut bytes, end) = match st.ranges.workers[st.next % n].recv().await {
                Some(Piece::Part(b)) => (b, false),
                Some(Piece::End(b)) => (b, true),
                None => {
                    st.done = true;
                    return Some((
                        Err(std::io::Error::other("rendering the answer stopped")),
                        st,
                    ));
                }
            };
            if end {
                st.next += 1;
            }
            if bytes.is_empty() {
                continue;
            }
            if !st.started {
                bytes[0] = b'[';
                st.started = true;
            }
            return Some((Ok(Bytes::from(bytes)), st));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// The answer as one thread writes it: every kept item, joined.
    fn plain(items: &[u32], keep: impl Fn(u32) -> bool) -> Vec<u8> {
        let kept: Vec<String> = items
            .iter()
            .filter(|i| keep(**i))
            .map(|i| format!("{{\"n\":{}}}", "x".repeat(*i as usize % 37)))
            .collect();
        format!("[{}]\n", kept.join(",")).into_bytes()
    }

    fn streamed(items: Vec<u32>, cut: Cut, keep: fn(u32) -> bool) -> Result<Vec<u8>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, rx) = oneshot::channel();
        let renderer = std::thread::spawn(move || {
            render(&items, cut, tx, |out, i| {
                assert!(*i != 999_999, "a render that fails");
                out.extend_from_slice(
                    format!("{{\"n\":{}}}", "x".repeat(*i as usize % 37)).as_bytes(),
                );
                // What a skipping render may leave behind is dropped.
                if !keep(*i) {
                    out.extend_from_slice(b"garbage");
                }
                keep(*i)
            })
        });
        let out = rt.block_on(async {
            let mut s = std::pin::pin!(stream(rx.await.unwrap()));
            let mut out = Vec::new();
            while let Some(piece) = s.next().await {
                match piece {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(out)
        });
        let _ = renderer.join();
        out
    }

    #[test]
    fn streamed_answers_equal_plain_ones() {
        // xorshift: many shapes of answers, reproducibly.
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let keeps: [fn(u32) -> bool; 4] = [|_| true, |_| false, |i| i % 3 != 0, |i| i % 50 == 7];
        for round in 0..300 {
            let len = (next() % if round % 10 == 0 { 5000 } else { 200 }) as usize;
            let items: Vec<u32> = (0..len).map(|_| (next() % 100_000) as u32).collect();
            let cut = Cut {
                range_items: (next() % 70) as usize,
                piece_bytes: 1 + (next() % 300) as usize,
            };
            let keep = keeps[round % keeps.len()];
            let expected = plain(&items, keep);
            assert_eq!(
                streamed(items, cut, keep).unwrap(),
                expected,
                "round {round}, {len} items, {} per range, {} byte pieces",
                cut.range_items,
                cut.piece_bytes
            );
        }
    }

    /// Groups of elements written in chunks, as `/alerts/groups` writes
    /// its groups' alerts, equal the groups written whole by one thread.
    #[test]
    fn answers_written_in_parts_equal_plain_ones() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let element = |g: usize, i: usize| format!("{{\"a\":{}}}", "y".repeat((g * 7 + i) % 23));
        for round in 0..300 {
            let groups: Vec<usize> = (0..next() % 12)
                .map(|_| match next() % 4 {
                    0 => 1,
                    1 => (next() % 2000) as usize,
                    _ => (next() % 40) as usize,
                })
                .collect();
            let plain = format!(
                "[{}]\n",
                groups
                    .iter()
                    .enumerate()
                    .map(|(g, n)| format!(
                        "{{\"g\":[{}],\"n\":{g}}}",
                        (0..*n).map(|i| element(g, i)).collect::<Vec<_>>().join(",")
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let chunk = 1 + (next() % 100) as usize;
            let mut parts = Vec::new();
            for (g, n) in groups.iter().enumerate() {
                let mut lo = 0;
                loop {
                    let hi = (lo + chunk).min(*n);
                    parts.push((g, lo, hi, *n));
                    if hi == *n {
                        break;
                    }
                    lo = hi;
                }
            }
            let cut = Cut {
                range_items: (next() % 300) as usize,
                piece_bytes: 1 + (next() % 3000) as usize,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let (tx, rx) = oneshot::channel();
            let renderer = std::thread::spawn(move || {
                render_parts(
                    &parts,
                    |p| p.2 - p.1,
                    cut,
                    tx,
                    |out, &(g, lo, hi, n)| {
                        if lo == 0 {
                            out.extend_from_slice(b",{\"g\":[");
                        }
                        for i in lo..hi {
                            if i > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(element(g, i).as_bytes());
                        }
                        if hi == n {
                            out.extend_from_slice(format!("],\"n\":{g}}}").as_bytes());
                        }
                    },
                )
            });
            let got = rt.block_on(async {
                let mut s = std::pin::pin!(stream(rx.await.unwrap()));
                let mut out = Vec::new();
                while let Some(piece) = s.next().await {
                    out.extend_from_slice(&piece.unwrap());
                }
                out
            });
            renderer.join().unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                plain,
                "round {round}, groups {groups:?}, chunks of {chunk}, {} per range, {} byte pieces",
                cut.range_items,
                cut.piece_bytes
            );
        }
    }

    #[test]
    fn a_failed_rendering_cuts_the_body() {
        let mut items: Vec<u32> = (0..1000).collect();
        items[700] = 999_999;
        let cut = Cut {
            range_items: 10,
            piece_bytes: 64,
        };
        assert!(streamed(items, cut, |_| true).is_err());
    }

    #[test]
    fn a_client_gone_stops_the_workers() {
        let items: Vec<u32> = (0..100_000).collect();
        let (tx, rx) = oneshot::channel();
        let renderer = std::thread::spawn(move || {
            render(
                &items,
                Cut {
                    range_items: 10,
                    piece_bytes: 16,
                },
                tx,
                |out, _| {
                    out.extend_from_slice(b"1");
                    true
                },
            )
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = Box::pin(stream(rx.await.unwrap()));
            assert!(s.next().await.is_some());
            // The body dropped after one piece: the render returns.
        });
        renderer.join().unwrap();
    }
}
