//! Notification history (Herald's, Alertmanager #172): what was sent, to
//! whom, when, and whether it worked, plus the flushes that sent nothing
//! because everything was already notified (deduplicated) or muted, so
//! "why didn't I get paged?" has an answer after the fact.
//!
//! The pipeline stages call [`Recorder::record`] where they decide (the
//! retry stage for sends and failures, the dedup stage for deduplicated
//! flushes, the mute stages for muted ones); the record is queued to the
//! storage writer and never waited for, so history adds no latency to a
//! notification. Storage implements [`HistoryStore`]: it owns the table,
//! coalesces a deduplicated or muted flush into the newest record of the
//! same integration when the outcome and the alerts are the same (its
//! `count` and `last_at` move, no row is added), keeps at most
//! `--notification-history.max-records` rows and drops those older than
//! `--data.retention`. Reads go through [`query`], on the blocking pool,
//! which the API answers from and the web UI can too.
//!
//! This module depends on no storage or front end: it defines the record,
//! its on-disk body, the query and its parameters.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::matcher::{parse_matcher, Matchers};
use crate::model::{Alert, Fingerprint, LabelSet};

/// What became of one flush at one integration (or, for muted flushes,
/// at the receiver: muting happens before the fan-out to integrations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Delivered (possibly after retries).
    Success,
    /// Given up: a permanent error, or retries until the flush deadline.
    Failure,
    /// Nothing new to say: the notification log already has these alerts
    /// and `repeat_interval` has not elapsed (or, in a cluster, a peer
    /// notified them).
    Deduplicated,
    /// Every alert of the flush matched an active silence.
    Silenced,
    /// Every alert of the flush was inhibited.
    Inhibited,
    /// The route was inside one of its `mute_time_intervals` or outside
    /// all its `active_time_intervals` (`mutedBy` names them).
    TimeMuted,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Deduplicated,
        Outcome::Silenced,
        Outcome::Inhibited,
        Outcome::TimeMuted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Deduplicated => "deduplicated",
            Outcome::Silenced => "silenced",
            Outcome::Inhibited => "inhibited",
            Outcome::TimeMuted => "time_muted",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The outcomes that repeat at every flush while nothing changes: they
    /// are coalesced rather than stored once per flush.
    pub fn coalesces(self) -> bool {
        !matches!(self, Outcome::Success | Outcome::Failure)
    }
}

/// One alert as a record carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedAlert {
    #[serde(with = "fingerprint_number")]
    pub fingerprint: Fingerprint,
    pub labels: LabelSet,
    /// Resolved at the flush, rather than firing.
    pub resolved: bool,
}

/// A fingerprint in a stored body: its number.
mod fingerprint_number {
    use crate::model::Fingerprint;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(fp: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(fp.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fingerprint, D::Error> {
        u64::deserialize(d).map(Fingerprint)
    }
}

/// A record as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Stable for the row's life (coalescing keeps it).
    pub id: i64,
    /// The order of the row's last change: newest first is by this, and
    /// the paging cursor is one.
    pub seq: i64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// Flushes this row stands for (more than one only for coalesced
    /// outcomes).
    pub count: u64,
    pub receiver: String,
    /// Empty for a muted flush (recorded at the receiver).
    pub integration: String,
    pub index: Option<u32>,
    pub group_key: String,
    pub outcome: Outcome,
    pub body: Body,
}

/// What a record holds beyond the columns queries select on; stored as
/// JSON in one column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub group_labels: LabelSet,
    pub alerts: Vec<RecordedAlert>,
    /// The dedup stage's notification reason ("first notification", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The `reason` of `alertmanager_notifications_failed_total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// The cluster peer name of the node that decided; empty on a node
    /// without a cluster.
    #[serde(default)]
    pub node: String,
    /// The time intervals that muted a `time_muted` flush.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub muted_by: Vec<String>,
}

/// A record's [`Body`] as JSON, with `alerts` taken from the flush's
/// alerts, written by hand (serde's copy of each label set and its
/// escaping were a fifth of what recording costs); `Body`'s `Deserialize`
/// reads it back, field for field as serde would have written it.
fn body_json(b: &Body, alerts: &[Arc<Alert>], now: Timestamp) -> String {
    use crate::gojson::write_plain_str as str_;
    use std::io::Write as _;
    let mut out = Vec::with_capacity(128 + 96 * alerts.len());
    out.extend_from_slice(b"{\"group_labels\":");
    b.group_labels.write_plain_json(&mut out);
    out.extend_from_slice(b",\"alerts\":[");
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{{\"fingerprint\":{},\"labels\":", a.fingerprint.0);
        a.labels.write_plain_json(&mut out);
        out.extend_from_slice(if a.resolved_at(now) {
            b",\"resolved\":true}"
        } else {
            b",\"resolved\":false}"
        });
    }
    out.push(b']');
    for (name, v) in [
        ("reason", &b.reason),
        ("error", &b.error),
        ("failure_reason", &b.failure_reason),
    ] {
        if let Some(v) = v {
            let _ = write!(out, ",\"{name}\":");
            str_(&mut out, v);
        }
    }
    let _ = write!(out, ",\"attempts\":{},\"node\":", b.attempts);
    str_(&mut out, &b.node);
    if !b.muted_by.is_empty() {
        out.extend_from_slice(b",\"muted_by\":[");
        for (i, m) in b.muted_by.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            str_(&mut out, m);
        }
        out.push(b']');
    }
    out.push(b'}');
    // Only whole strings were copied in, so the bytes are UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// A record on its way to storage.
pub struct Write {
    pub at: Timestamp,
    pub receiver: String,
    pub integration: String,
    /// -1 for none (a receiver-level record).
    pub index: i64,
    pub group_key: String,
    pub outcome: Outcome,
    /// Of the alert set (fingerprints and states): coalescing compares it.
    pub alerts_hash: u64,
    /// The JSON of its [`Body`], built only when a row is inserted: a
    /// coalesced flush costs no serialising.
    pub body: Box<dyn FnOnce() -> String + Send>,
}

/// Why a history query failed: the server's fault, never the request's.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the notification history: {0}")]
    Read(String),
    #[error("the notification history query was interrupted: {0}")]
    Interrupted(String),
}

/// Where records go and come from (storage implements it).
pub trait HistoryStore: Send + Sync {
    /// Queues a record; never waits. `max_records` bounds the table.
    fn put(&self, w: Write, max_records: usize);

    /// Rows newest first (by `seq`) that pass `scan`'s column filters,
    /// handed to `visit` until it returns false. Blocks on the disk: call
    /// it off the async runtime.
    fn scan(&self, scan: &Scan, visit: &mut dyn FnMut(Record) -> bool) -> Result<(), HistoryError>;
}

/// The filters storage applies in SQL.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub before_seq: Option<i64>,
    /// Empty: any.
    pub outcomes: Vec<Outcome>,
    pub integrations: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// The recording end, held by the pipeline's stages.
pub struct Recorder {
    store: Arc<dyn HistoryStore>,
    max_records: usize,
    clock: Clock,
    cluster: Option<Arc<crate::cluster::ClusterHandle>>,
}

/// What a stage knows about the flush it records.
pub struct Flush<'a> {
    pub receiver: &'a str,
    /// Kind and index in the receiver; `None` at the receiver level.
    pub integration: Option<(&'static str, usize)>,
    pub group_key: &'a str,
    pub group_labels: &'a LabelSet,
    pub alerts: &'a [Arc<Alert>],
    /// The flush time, which decides whether an alert is resolved.
    pub now: Timestamp,
}

/// How it went.
pub struct Report<'a> {
    pub outcome: Outcome,
    pub reason: Option<&'static str>,
    pub error: Option<&'a str>,
    pub failure_reason: Option<&'static str>,
    pub attempts: u32,
    pub muted_by: Vec<String>,
}

impl Report<'_> {
    pub fn of(outcome: Outcome) -> Self {
        Report {
            outcome,
            reason: None,
            error: None,
            failure_reason: None,
            attempts: 0,
            muted_by: Vec::new(),
        }
    }
}

impl Recorder {
    /// `None` when `max_records` is 0: recording is off and the stages
    /// skip it entirely.
    pub fn new(
        store: Arc<dyn HistoryStore>,
        max_records: usize,
        clock: Clock,
        cluster: Option<Arc<crate::cluster::ClusterHandle>>,
    ) -> Option<Arc<Recorder>> {
        (max_records > 0).then(|| {
            Arc::new(Recorder {
                store,
                max_records,
                clock,
                cluster,
            })
        })
    }

    /// Records one outcome, stamped now (when the attempts ended).
    pub fn record(&self, flush: &Flush<'_>, result: Report<'_>) {
        let now = flush.now;
        let mut hash = xxhash_rust::xxh64::Xxh64::new(0);
        let mut alerts: Vec<(Fingerprint, bool)> = flush
            .alerts
            .iter()
            .map(|a| (a.fingerprint, a.resolved_at(now)))
            .collect();
        alerts.sort_unstable();
        for (fp, resolved) in &alerts {
            hash.update(&fp.0.to_le_bytes());
            hash.update(&[u8::from(*resolved)]);
        }
        let body = Body {
            group_labels: flush.group_labels.clone(),
            alerts: Vec::new(),
            reason: result.reason.map(str::to_string),
            error: result.error.map(str::to_string),
            failure_reason: result.failure_reason.map(str::to_string),
            attempts: result.attempts,
            node: self.node(),
            muted_by: result.muted_by,
        };
        // The alerts are shared (`Arc`), so holding them until the body is
        // built (if it is) costs no copy.
        let held: Vec<Arc<Alert>> = flush.alerts.to_vec();
        let build = move || body_json(&body, &held, now);
        // A send's body is built here, on the notifying task, so that the
        // storage writer (which every commit waits on) only appends it; a
        // repeat that is likely coalesced is built there only if inserted.
        let body: Box<dyn FnOnce() -> String + Send> = if result.outcome.coalesces() {
            Box::new(build)
        } else {
            let built = build();
            Box::new(move || built)
        };
        let (integration, index) = match flush.integration {
            Some((kind, i)) => (kind.to_string(), i64::try_from(i).unwrap_or(i64::MAX)),
            None => (String::new(), -1),
        };
        self.store.put(
            Write {
                at: self.clock.now(),
                receiver: flush.receiver.to_string(),
                integration,
                index,
                group_key: flush.group_key.to_string(),
                outcome: result.outcome,
                alerts_hash: hash.digest(),
                body,
            },
            self.max_records,
        );
    }

    /// The cluster peer name; empty without a cluster: a single node's
    /// history is all its own.
    fn node(&self) -> String {
        self.cluster
            .as_ref()
            .and_then(|c| c.peer())
            .map(|p| p.name().to_string())
            .unwrap_or_default()
    }
}

/// `GET /api/herald/v1/notifications`'s parameters.
#[derive(Clone, Debug)]
pub(crate) struct HistoryQuery {
    pub receiver: Option<Regex>,
    pub group: Matchers,
    pub filter: Matchers,
    pub scan: Scan,
    pub limit: usize,
}

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

/// Parses the query string; the error is the message a 400 carries.
pub(crate) fn parse_query(raw: Option<&str>) -> Result<HistoryQuery, String> {
    let mut q = HistoryQuery {
        receiver: None,
        group: Matchers::default(),
        filter: Matchers::default(),
        scan: Scan::default(),
        limit: DEFAULT_LIMIT,
    };
    let time = |k: &str, v: &str| {
        v.parse::<Timestamp>()
            .map_err(|e| format!("{k}: {v:?} is not an RFC 3339 time: {e}"))
    };
    let matcher = |k: &str, v: &str| {
        parse_matcher(v, "api").map_err(|e| format!("{k}: bad matcher {v:?}: {e}"))
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "receiver" => {
                if q.receiver.is_some() {
                    return Err("receiver: given more than once".into());
                }
                q.receiver = Some(
                    Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| format!("receiver: bad regular expression: {e}"))?,
                );
            }
            "group" => q.group.0.push(matcher("group", &v)?),
            "filter" => q.filter.0.push(matcher("filter", &v)?),
            "outcome" => match v.as_ref() {
                "muted" => q.scan.outcomes.extend([
                    Outcome::Silenced,
                    Outcome::Inhibited,
                    Outcome::TimeMuted,
                ]),
                o => q.scan.outcomes.push(Outcome::parse(o).ok_or_else(|| {
                    format!("outcome: unknown {o:?}; one of success, failure, deduplicated, silenced, inhibited, time_muted, muted")
                })?),
            },
            "integration" => q.scan.integrations.push(v.into_owned()),
            "since" => q.scan.since = Some(time("since", &v)?),
            "until" => q.scan.until = Some(time("until", &v)?),
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit: {v:?} is not a whole number from 1 to {MAX_LIMIT}")
                    })?;
            }
            "before" => {
                q.scan.before_seq = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("before: {v:?} is not a cursor this API returned as next"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; known: receiver, group, filter, outcome, integration, since, until, limit, before"
                ))
            }
        }
    }
    if let (Some(s), Some(u)) = (q.scan.since, q.scan.until) {
        if s > u {
            return Err(format!("since ({s}) is after until ({u})"));
        }
    }
    Ok(q)
}

/// One page of records, newest first, and the cursor of the next page
/// (`before=`), if there are more.
#[derive(Debug)]
pub(crate) struct Page {
    pub records: Vec<Record>,
    pub next: Option<String>,
}

impl HistoryQuery {
    /// The filters SQL cannot apply: the receiver's regex, the group and
    /// alert matchers (a record matches `filter` when one of its alerts
    /// matches every `filter` matcher).
    fn accepts(&self, r: &Record) -> bool {
        self.receiver
            .as_ref()
            .is_none_or(|re| re.is_match(&r.receiver))
            && self.group.matches(&r.body.group_labels)
            && (self.filter.0.is_empty()
                || r.body.alerts.iter().any(|a| self.filter.matches(&a.labels)))
    }

    /// Runs the query against `store`, blocking: what [`query`] runs on
    /// the blocking pool.
    pub(crate) fn run(&self, store: &dyn HistoryStore) -> Result<Page, HistoryError> {
        let mut records = Vec::new();
        let mut more = false;
        store.scan(&self.scan, &mut |r| {
            if !self.accepts(&r) {
                return true;
            }
            if records.len() == self.limit {
                more = true;
                return false;
            }
            records.push(r);
            true
        })?;
        let next = if more {
            records.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        Ok(Page { records, next })
    }
}

/// The query the API and the web UI answer from: off the runtime, since
/// it reads the database.
pub(crate) async fn query(
    store: Arc<dyn HistoryStore>,
    q: HistoryQuery,
) -> Result<Page, HistoryError> {
    tokio::task::spawn_blocking(move || q.run(store.as_ref()))
        .await
        .map_err(|e| HistoryError::Interrupted(e.to_string()))?
}

/// How long records are kept: `--data.retention`; the storage writer
/// drops older ones at each maintenance.
pub(crate) fn expiry_cutoff(now: Timestamp, retention: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(retention)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written body reads back as the body serde would have
    /// written, over random labels (escapes, non-ASCII) and fields.
    #[test]
    fn hand_written_bodies_read_back_as_serde_writes_them() {
        let mut next = crate::testing::xorshift(0x5eed_4157);
        let texts = [
            "a",
            "é",
            "x\"y",
            "back\\slash",
            "<&>",
            "\u{1}",
            "",
            "team-1",
        ];
        let pick = |n: u64| texts[(n % texts.len() as u64) as usize].to_string();
        let now = Timestamp::from_second(1_000_000).unwrap();
        for _ in 0..2000 {
            let alerts: Vec<Arc<Alert>> = (0..next() % 4)
                .map(|_| {
                    let mut a = crate::model::random_alert(&mut next, &texts, 5);
                    if next().is_multiple_of(2) {
                        a.ends_at = Timestamp::from_second(10).unwrap();
                    }
                    Arc::new(a)
                })
                .collect();
            let opt = |n: u64| (!n.is_multiple_of(3)).then(|| pick(n));
            let body = Body {
                group_labels: LabelSet::from_strs([("g", texts[(next() % 8) as usize])]),
                alerts: Vec::new(),
                reason: opt(next()),
                error: opt(next()),
                failure_reason: opt(next()),
                attempts: (next() % 5) as u32,
                node: pick(next()),
                muted_by: (0..next() % 3).map(|_| pick(next())).collect(),
            };
            let written = body_json(&body, &alerts, now);
            let got: Body = serde_json::from_str(&written).unwrap();
            let mut want = body.clone();
            want.alerts = alerts
                .iter()
                .map(|a| RecordedAlert {
                    fingerprint: a.fingerprint,
                    labels: a.labels.clone(),
                    resolved: a.resolved_at(now),
                })
                .collect();
            let via_serde: Body =
                serde_json::from_str(&serde_json::to_string(&want).unwrap()).unwrap();
            assert_eq!(got, via_serde, "{written}");
        }
    }

    #[test]
    fn parameters_parse_and_bad_ones_say_why() {
        let q = parse_query(Some(
            "receiver=team-.*&group=alertname%3D%22A%22&filter=instance%3D~%22h.*%22&filter=job%3D%22x%22&outcome=muted&outcome=failure&since=2026-01-01T00:00:00Z&limit=7&before=42&integration=webhook",
        ))
        .unwrap();
        assert!(q.receiver.as_ref().unwrap().is_match("team-a"));
        assert!(
            !q.receiver.as_ref().unwrap().is_match("xteam-a"),
            "anchored"
        );
        assert_eq!(q.group.0.len(), 1);
        assert_eq!(q.filter.0.len(), 2);
        assert_eq!(q.scan.outcomes.len(), 4);
        assert_eq!(q.limit, 7);
        assert_eq!(q.scan.before_seq, Some(42));
        assert_eq!(q.scan.integrations, ["webhook"]);
        assert!(q.scan.since.is_some() && q.scan.until.is_none());
        for (bad, says) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("since=yesterday", "since"),
            ("outcome=sent", "outcome"),
            ("filter=%7B", "filter"),
            ("group=a%3D%22b", "group"),
            ("receiver=(", "receiver"),
            ("receiver=a&receiver=b", "receiver"),
            ("before=abc", "before"),
            ("reciever=a", "unknown parameter"),
            (
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                "after until",
            ),
        ] {
            let e = parse_query(Some(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(parse_query(None).unwrap().limit, DEFAULT_LIMIT);
    }

    /// A store in memory with the same contract as storage's: newest
    /// first, column filters applied.
    #[derive(Default)]
    struct Mem(std::sync::Mutex<Vec<(Write, usize)>>);

    impl HistoryStore for Mem {
        fn put(&self, w: Write, max: usize) {
            self.0.lock().unwrap().push((w, max));
        }
        fn scan(
            &self,
            _: &Scan,
            visit: &mut dyn FnMut(Record) -> bool,
        ) -> Result<(), HistoryError> {
            let mut rows = self.0.lock().unwrap();
            for (i, (w, _)) in rows.drain(..).enumerate().rev() {
                let body: Body = serde_json::from_str(&(w.body)()).unwrap();
                let r = Record {
                    id: i as i64 + 1,
                    seq: i as i64 + 1,
                    first_at: w.at,
                    last_at: w.at,
                    count: 1,
                    receiver: w.receiver,
                    integration: w.integration,
                    index: u32::try_from(w.index).ok(),
                    group_key: w.group_key,
                    outcome: w.outcome,
                    body,
                };
                if !visit(r) {
                    break;
                }
            }
            Ok(())
        }
    }

    fn alert(name: &str, instance: &str) -> Arc<Alert> {
        let mut a = crate::model::test_alert(100, 4_000_000_000, 100, false);
        a.labels = LabelSet::from_strs([("alertname", name), ("instance", instance)]);
        a.fingerprint = a.labels.fingerprint();
        Arc::new(a)
    }

    /// What a stage records reads back whole, the alert set hashes the
    /// same in any order and differently once an alert resolves, and the
    /// filters SQL leaves to Rust select by receiver, group and alert.
    #[test]
    fn records_read_back_and_filter_by_labels() {
        let store = Arc::new(Mem::default());
        let rec = Recorder::new(store.clone(), 10, Clock::system(), None).unwrap();
        assert!(Recorder::new(store.clone(), 0, Clock::system(), None).is_none());
        let now = Timestamp::from_second(1000).unwrap();
        let (a, b) = (alert("A", "h1"), alert("A", "h2"));
        let gl = LabelSet::from_strs([("alertname", "A")]);
        let flush = |receiver, alerts| Flush {
            receiver,
            integration: Some(("webhook", 0)),
            group_key: "{}:{alertname=\"A\"}",
            group_labels: &gl,
            alerts,
            now,
        };
        let both = [a.clone(), b.clone()];
        let swapped = [b.clone(), a.clone()];
        let mut failed = Report::of(Outcome::Failure);
        failed.error = Some("boom");
        failed.failure_reason = Some("clientError");
        failed.attempts = 1;
        rec.record(&flush("team-a", &both), failed);
        rec.record(
            &flush("team-b", &swapped),
            Report::of(Outcome::Deduplicated),
        );
        {
            let rows = store.0.lock().unwrap();
            assert_eq!(rows[0].0.alerts_hash, rows[1].0.alerts_hash);
            assert_eq!(rows[0].1, 10);
        }
        let mut resolved = (*b).clone();
        resolved.ends_at = Timestamp::from_second(900).unwrap();
        let with_resolved = [a.clone(), Arc::new(resolved)];
        rec.record(
            &flush("team-b", &with_resolved),
            Report::of(Outcome::Success),
        );
        {
            let rows = store.0.lock().unwrap();
            assert_ne!(rows[1].0.alerts_hash, rows[2].0.alerts_hash);
        }
        let q = parse_query(Some("receiver=team-a&filter=instance%3D%22h2%22")).unwrap();
        let page = q.run(store.as_ref()).unwrap();
        assert_eq!(page.records.len(), 1);
        assert!(page.next.is_none());
        let r = &page.records[0];
        assert_eq!(r.outcome, Outcome::Failure);
        assert_eq!(r.body.error.as_deref(), Some("boom"));
        assert_eq!(r.body.failure_reason.as_deref(), Some("clientError"));
        assert_eq!(r.body.alerts.len(), 2);
        assert_eq!(r.body.group_labels, gl);
        assert_eq!(r.index, Some(0));
    }

    #[test]
    fn pages_end_with_a_cursor_only_when_more_match() {
        let store = Arc::new(Mem::default());
        let rec = Recorder::new(store.clone(), 10, Clock::system(), None).unwrap();
        let gl = LabelSet::default();
        let alerts = [alert("A", "h")];
        for _ in 0..3 {
            rec.record(
                &Flush {
                    receiver: "r",
                    integration: None,
                    group_key: "g",
                    group_labels: &gl,
                    alerts: &alerts,
                    now: Timestamp::from_second(1000).unwrap(),
                },
                Report::of(Outcome::Silenced),
            );
        }
        let page = parse_query(Some("limit=2"))
            .unwrap()
            .run(store.as_ref())
            .unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next.as_deref(), Some("2"), "the last one returned");
        assert_eq!(page.records[0].index, None, "a receiver-level record");
    }
}
