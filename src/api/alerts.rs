//! `/api/v2/alerts` and `/api/v2/alerts/groups`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::decode::{self, merge, GoStr, Pairs, PairsSeed, StrSeed};
use super::stream;
use super::{error_response, schema_error, ApiState};
use crate::app::App;
use crate::dispatch::GroupView;
use crate::gojson;
use crate::model::{
    notification_order_indices, write_rfc3339_millis, Alert, Fingerprint, Interner, LabelSet,
    GO_ZERO_TIME,
};
use crate::query::{
    parse_query, query_group_views, query_groups, receiver_labels, AlertQuery, Suppression,
};

/// `postableAlert`. Strings are borrowed from the request body where JSON
/// escaping allows, and interned once, straight into the stored label sets.
/// Read with Go's rules (see [`decode`]): times are parsed while reading, so
/// a bad one fails the whole request, as in Alertmanager.
#[derive(Default)]
struct PostableAlert<'a> {
    labels: Option<Pairs<'a>>,
    annotations: Option<Pairs<'a>>,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    generator_url: Option<String>,
}

const ALERT_FIELDS: [&str; 5] = [
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
];
const INTO_STRUCT: &str = "Go value of type models.PostableAlert";

impl<'de: 'a, 'a> Deserialize<'de> for PostableAlert<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = PostableAlert<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an alert")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut a = PostableAlert::default();
                while let Some(k) = m.next_key_seed(StrSeed("Go value of type string"))? {
                    let GoStr::Str(k) = k else {
                        continue;
                    };
                    match decode::field(&k, &ALERT_FIELDS) {
                        Some(0) => {
                            merge(&mut a.labels, m.next_value_seed(PairsSeed("Alert.labels"))?)
                        }
                        Some(1) => merge(
                            &mut a.annotations,
                            m.next_value_seed(PairsSeed("postableAlert.annotations"))?,
                        ),
                        Some(i @ (2 | 3)) => {
                            if let GoStr::Str(v) =
                                m.next_value_seed(StrSeed("Go value of type string"))?
                            {
                                let t = parse_time(&v).map_err(serde::de::Error::custom)?;
                                *(if i == 2 {
                                    &mut a.starts_at
                                } else {
                                    &mut a.ends_at
                                }) = t;
                            }
                        }
                        Some(_) => {
                            if let GoStr::Str(v) =
                                m.next_value_seed(StrSeed("Go value of type string"))?
                            {
                                a.generator_url = Some(v.into_owned());
                            }
                        }
                        None => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(a)
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                _: S,
            ) -> Result<Self::Value, S::Error> {
                Err(decode::type_error(serde::de::Unexpected::Seq, INTO_STRUCT))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Str(v),
                    INTO_STRUCT,
                ))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Bool(v),
                    INTO_STRUCT,
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Signed(v),
                    INTO_STRUCT,
                ))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Unsigned(v),
                    INTO_STRUCT,
                ))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Float(v),
                    INTO_STRUCT,
                ))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `models.PostableAlerts`: `null` is no alerts. A `null` element makes
/// Alertmanager 0.33.1 panic (the connection closes without an answer);
/// Herald refuses the request.
struct PostableAlerts<'a>(Vec<PostableAlert<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for PostableAlerts<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = PostableAlerts<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of alerts")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(PostableAlerts(Vec::new()))
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut s: S,
            ) -> Result<Self::Value, S::Error> {
                let mut v = Vec::with_capacity(s.size_hint().unwrap_or(16).min(4096));
                while let Some(a) = s.next_element::<Option<PostableAlert<'a>>>()? {
                    match a {
                        Some(a) => v.push(a),
                        None => {
                            return Err(serde::de::Error::custom(format!(
                                "alert {} is null",
                                v.len()
                            )))
                        }
                    }
                }
                Ok(PostableAlerts(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _: A,
            ) -> Result<Self::Value, A::Error> {
                Err(decode::type_error(
                    serde::de::Unexpected::Map,
                    "Go value of type models.PostableAlerts",
                ))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Str(v),
                    "Go value of type models.PostableAlerts",
                ))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Bool(v),
                    "Go value of type models.PostableAlerts",
                ))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(decode::type_error(
                    serde::de::Unexpected::Float(v),
                    "Go value of type models.PostableAlerts",
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Label pairs into a stored set: a repeated name keeps its last value
/// (Go's map), then `keep` drops what Alertmanager drops. Sorted and
/// deduplicated while still borrowed from the body, then interned straight
/// into the set, rather than interning every pair, building a set and
/// copying it again to filter.
fn into_labels(
    mut pairs: Pairs<'_>,
    interner: &Interner,
    recent: &mut Recent,
    keep: impl Fn(&str) -> bool,
) -> LabelSet {
    // Prometheus sends its labels sorted: then there is nothing to do.
    // Reversing them made them the insertion sort's worst case.
    if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        // Reversed, a stable sort puts the last value given for a name
        // first in its run, which is the one `dedup_by` keeps.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|a, b| a.0 == b.0);
    }
    pairs.retain(|(_, v)| keep(v));
    LabelSet::from_sorted_unique(
        pairs.iter().enumerate().map(|(i, (k, v))| {
            (
                Recent::intern(&mut recent.names, i, k, interner),
                Recent::intern(&mut recent.values, i, v, interner),
            )
        }),
        interner,
    )
}

/// The interned strings of the previous alert's labels (or annotations)
/// of a request, by position. The alerts of a batch mostly share their
/// names and many values (`job`, `severity`, a rule's `description`):
/// one comparison with the string at the same place is cheaper than
/// hashing it and locking an interner shard (interning was a tenth of the
/// POST path). The `Arc`s held keep the strings in the interner.
#[derive(Default)]
struct RecentStrings {
    labels: Recent,
    annotations: Recent,
    url: Vec<Arc<str>>,
}

#[derive(Default)]
struct Recent {
    names: Vec<Arc<str>>,
    values: Vec<Arc<str>>,
}

impl Recent {
    fn intern(slots: &mut Vec<Arc<str>>, i: usize, s: &str, interner: &Interner) -> Arc<str> {
        if let Some(had) = slots.get(i) {
            if **had == *s {
                return had.clone();
            }
        }
        let a = interner.intern(s);
        match slots.get_mut(i) {
            Some(slot) => *slot = a.clone(),
            None => slots.push(a.clone()),
        }
        a
    }
}

fn parse_time(v: &str) -> Result<Option<Timestamp>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    decode::parse_datetime(v)
        .map(|t| if t == GO_ZERO_TIME { None } else { Some(t) })
        .ok_or_else(|| decode::datetime_error(v))
}

fn valid_label_name(n: &str, classic: bool) -> bool {
    if classic {
        crate::matcher::is_valid_classic_label_name(n)
    } else {
        !n.is_empty()
    }
}

pub(crate) async fn post_alerts(State(s): State<ApiState>, req: Request) -> Response {
    let limits = s.app.settings.input_limits;
    let body = match decode::read_body(req, limits.max_request_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let value = match decode::first_value(&body, "alerts") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let posted = match decode::parse::<PostableAlerts>(&value, "alerts") {
        Ok(v) => v.0,
        Err(r) => return r,
    };
    // Schema validation happens before the handler in Alertmanager: a
    // missing `labels` rejects the whole request with 422.
    if let Some(i) = posted.iter().position(|a| a.labels.is_none()) {
        return schema_error(602, format!("{i}.labels in body is required"));
    }
    // go-swagger's `format: uri`, checked with the schema: the whole
    // request is refused.
    // Every alert of a rule carries the same URL, and parsing one was 6% of
    // the POST path: a URL equal to the last one that passed passes.
    let mut last_valid: Option<&str> = None;
    if let Some((i, u)) = posted.iter().enumerate().find_map(|(i, a)| {
        let u = a.generator_url.as_deref()?;
        if last_valid == Some(u) {
            return None;
        }
        if valid_generator_url(u) {
            last_valid = Some(u);
            return None;
        }
        Some((i, u))
    }) {
        return schema_error(
            601,
            format!("{i}.generatorURL in body must be of type uri: {u:?}"),
        );
    }
    let max_alerts = limits.max_alerts_per_request;
    if max_alerts > 0 && posted.len() > max_alerts {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "{} alerts in one request, more than --alerts.max-alerts-per-request={max_alerts}",
                posted.len()
            ),
        );
    }
    let app = &s.app;
    let now = app.settings.clock.now();
    let resolve_timeout = app.runtime().config.global().resolve_timeout.0;
    let classic = app.settings.classic_mode;
    let mut errors: Vec<String> = Vec::new();
    let mut stored = Vec::with_capacity(posted.len());
    let (mut firing, mut resolved) = (0, 0);
    let mut recent = RecentStrings::default();
    for p in posted {
        match to_alert(p, now, resolve_timeout, classic, &app.interner, &mut recent)
            .and_then(|a| check_limits(&a, &limits).map(|()| a))
        {
            Ok(alert) => {
                if alert.ends_at > now {
                    firing += 1;
                } else {
                    resolved += 1;
                }
                stored.extend(app.put_alert(alert, now));
            }
            Err(e) => {
                // Counted as received as well: Alertmanager counts before validating.
                firing += 1;
                errors.push(e);
            }
        }
    }
    app.metrics
        .alerts_received(firing, resolved, errors.len() as u64);
    // Acknowledged only once on disk: a crash after this answer loses nothing.
    // The batch is one change: none of it is on disk after a failure.
    if let Err(e) = app.storage.put_alerts(&stored).await {
        return e.into_response();
    }
    if errors.is_empty() {
        Response::new(axum::body::Body::empty())
    } else {
        // `errors.Join` separates with newlines.
        error_response(StatusCode::BAD_REQUEST, &errors.join("\n"))
    }
}

fn valid_generator_url(u: &str) -> bool {
    u.is_empty() || url::Url::parse(u).is_ok() || u.starts_with('/')
}

/// Herald's `--alerts.max-labels-per-alert` and
/// `--alerts.max-label-value-bytes`, on the labels as they would be stored.
fn check_limits(a: &Alert, limits: &crate::app::InputLimits) -> Result<(), String> {
    let max = limits.max_labels_per_alert;
    if max > 0 && a.labels.len() > max {
        return Err(format!(
            "alert has {} labels, more than --alerts.max-labels-per-alert={max}",
            a.labels.len()
        ));
    }
    let max = limits.max_label_value_bytes;
    if max > 0 {
        if let Some((n, v)) = a.labels.iter().find(|(_, v)| v.len() > max) {
            return Err(format!(
                "label {} has a value of {} bytes, more than --alerts.max-label-value-bytes={max}",
                crate::model::gostr::go_quote(n),
                v.len()
            ));
        }
    }
    Ok(())
}

/// Applies Alertmanager's defaults and `Alert.Validate`.
fn to_alert(
    p: PostableAlert,
    now: Timestamp,
    resolve_timeout: std::time::Duration,
    classic: bool,
    interner: &Interner,
    recent: &mut RecentStrings,
) -> Result<Alert, String> {
    let (starts, ends) = (p.starts_at, p.ends_at);
    let labels = into_labels(
        p.labels.unwrap_or_default(),
        interner,
        &mut recent.labels,
        |v| !v.is_empty(),
    );
    let annotations = into_labels(
        p.annotations.unwrap_or_default(),
        interner,
        &mut recent.annotations,
        |_| true,
    );
    let starts_at = starts.or(ends).unwrap_or(now);
    let (ends_at, timeout) = match ends {
        Some(e) => (e, false),
        None => (now.checked_add(resolve_timeout).unwrap_or(now), true),
    };
    if ends.is_some() && ends_at < starts_at {
        return Err("start time must be before end time".into());
    }
    for (n, _) in labels.iter() {
        if !valid_label_name(n, classic) {
            return Err(format!("invalid label set: invalid name {n:?}"));
        }
    }
    if labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    for (n, _) in annotations.iter() {
        if !valid_label_name(n, classic) {
            return Err(format!("invalid annotations: invalid name {n:?}"));
        }
    }
    // Interned too: every alert of a rule carries the same URL.
    let generator_url = Recent::intern(
        &mut recent.url,
        0,
        p.generator_url.as_deref().unwrap_or_default(),
        interner,
    );
    Ok(Alert {
        fingerprint: labels.fingerprint(),
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url,
        updated_at: now,
        timeout,
    })
}

/// Appends a `gettableAlert`, keys in go-swagger's order, written directly
/// (not through serde) because large answers spend their time here.
fn write_gettable(out: &mut Vec<u8>, a: &Alert, receivers: &[&str], status: &Suppression) {
    out.extend_from_slice(b"{\"annotations\":");
    a.annotations.write_json(out);
    out.extend_from_slice(b",\"endsAt\":");
    write_time(out, a.ends_at, TimeField::Ends);
    out.extend_from_slice(b",\"fingerprint\":\"");
    write_fingerprint(out, a.fingerprint);
    out.extend_from_slice(b"\",\"receivers\":[");
    for (i, r) in receivers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        gojson::write_str(out, r);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"startsAt\":");
    write_time(out, a.starts_at, TimeField::Starts);
    out.extend_from_slice(b",\"status\":{\"inhibitedBy\":[");
    if let Some(fp) = status.inhibited_by {
        out.push(b'"');
        write_fingerprint(out, fp);
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"mutedBy\":[");
    for (i, m) in status.muted_by.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        gojson::write_str(out, m);
    }
    out.extend_from_slice(b"],\"silencedBy\":[");
    for (i, id) in status.silenced_by.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        gojson::write_str(out, id);
    }
    let state: &[u8] = if status.suppressed() {
        b"suppressed"
    } else {
        b"active"
    };
    out.extend_from_slice(b"],\"state\":\"");
    out.extend_from_slice(state);
    out.extend_from_slice(b"\"},\"updatedAt\":");
    write_time(out, a.updated_at, TimeField::Updated);
    if !a.generator_url.is_empty() {
        out.extend_from_slice(b",\"generatorURL\":");
        gojson::write_str(out, &a.generator_url);
    }
    out.extend_from_slice(b",\"labels\":");
    a.labels.write_json(out);
    out.push(b'}');
}

/// Which of an alert's times [`write_time`] writes: each has its own
/// last value.
#[derive(Clone, Copy)]
enum TimeField {
    Starts,
    Ends,
    Updated,
}

/// The text of `write_rfc3339_millis`, with its quotes.
const TIME_TEXT: usize = 26;

thread_local! {
    /// The last value of each time this thread wrote, and its text: the
    /// alerts of a rule share `startsAt` and `endsAt` (formatting the times
    /// was 7% of a GET's profile at 100k alerts).
    static LAST_TIMES: std::cell::RefCell<[(Timestamp, [u8; TIME_TEXT]); 3]> =
        const { std::cell::RefCell::new([(Timestamp::UNIX_EPOCH, [0; TIME_TEXT]); 3]) };
}

/// `write_rfc3339_millis`, from the last text of `field` when `t` is its
/// last value.
fn write_time(out: &mut Vec<u8>, t: Timestamp, field: TimeField) {
    LAST_TIMES.with(|last| {
        let mut last = last.borrow_mut();
        let (at, text) = &mut last[field as usize];
        if *at != t || text[0] != b'"' {
            let mark = out.len();
            write_rfc3339_millis(out, t);
            // Only a text of the usual length is kept.
            if let Ok(written) = <[u8; TIME_TEXT]>::try_from(&out[mark..]) {
                (*at, *text) = (t, written);
            }
            return;
        }
        out.extend_from_slice(text);
    })
}

fn write_fingerprint(out: &mut Vec<u8>, fp: Fingerprint) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((fp.0 >> (i * 4)) & 0xf) as usize]);
    }
}

/// Parses the shared query parameters, then renders the answer on the
/// blocking pool: routing and writing 100k alerts is CPU work that must not
/// stall the async workers. The answer streams out as it is rendered
/// (see [`stream`]); it starts once `render` has picked what it will send.
async fn answer(
    s: ApiState,
    raw: Option<String>,
    render: impl FnOnce(&App, AlertQuery, Timestamp, stream::Ready) + Send + 'static,
) -> Response {
    let q = match parse_query(raw) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    let app = s.app.clone();
    let (ready, ranges) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        let now = app.settings.clock.now();
        render(&app, q, now, ready)
    });
    match ranges.await {
        Ok(ranges) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            stream::body(ranges),
        )
            .into_response(),
        // `render` ended (it panicked) before it had anything to send.
        Err(_) => {
            let why = match task.await {
                Err(e) => e.to_string(),
                Ok(()) => "no answer".to_string(),
            };
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("rendering the answer failed: {why}"),
            )
        }
    }
}

/// A gettable alert is about 700 bytes: ranges of 1024 keep an answer of a
/// few hundred alerts on one thread, as before.
const ALERT_CUT: stream::Cut = stream::Cut {
    range_items: 1024,
    piece_bytes: 256 * 1024,
};

/// Groups are rendered in chunks of at most `GROUP_CHUNK` alerts, so that
/// one group of thousands is shared by the workers (ranges of whole groups
/// made rendering serial: the worker whose range was read next could only
/// run a piece ahead). A range holds about as many alerts as an
/// [`ALERT_CUT`] range.
const GROUP_CUT: stream::Cut = stream::Cut {
    range_items: 1024,
    piece_bytes: 256 * 1024,
};

/// Alerts per chunk: small enough that a chunk (about 700 bytes an alert)
/// stays well below a piece.
const GROUP_CHUNK: usize = 64;

/// Part of a group's answer: its alerts `lo..hi` in notification order,
/// with the group's opening when `lo` is 0 and its closing when `hi` is
/// its last.
struct Chunk {
    group: usize,
    lo: usize,
    hi: usize,
}

/// The chunks of `groups`, in order.
fn chunks(groups: &[GroupView]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (group, g) in groups.iter().enumerate() {
        let n = g.alerts.len();
        let mut lo = 0;
        loop {
            let hi = (lo + GROUP_CHUNK).min(n);
            out.push(Chunk { group, lo, hi });
            if hi == n {
                break;
            }
            lo = hi;
        }
    }
    out
}

pub(crate) async fn get_alerts(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    answer(s, raw, |app, q, now, ready| {
        let rt = app.runtime();
        let silences = app.silences.query(now);
        let rcv_labels = receiver_labels(&rt.config.config.receivers);
        // Keyed while each alert is read anyway: sorting on the key alone
        // does not read the alerts again (the sort, before the first
        // byte, read two alerts scattered in memory per comparison).
        let mut alerts: Vec<(Fingerprint, Arc<Alert>)> = app
            .store
            .snapshot()
            .into_iter()
            .filter(|a| q.accepts(a, now))
            .map(|a| (a.fingerprint, a))
            .collect();
        alerts.sort_unstable_by_key(|(fp, _)| *fp);
        stream::render(&alerts, ALERT_CUT, ready, |out, (_, a)| {
            let routes = rt.route.matching(&a.labels);
            let receivers: Vec<&str> = routes.iter().map(|r| r.opts.receiver.as_str()).collect();
            if q.receiver.is_some() && !receivers.iter().any(|r| q.receiver_ok(r)) {
                return false;
            }
            // `receiversMatchLabels`: one receiver whose labels match all.
            if !q.receiver_matchers.is_empty()
                && !receivers
                    .iter()
                    .any(|r| q.receiver_labels_ok(rcv_labels.get(r)))
            {
                return false;
            }
            let muted_by = rt.dispatcher.muted_by(&routes, &a.labels);
            let status = Suppression {
                silenced_by: silences.silenced_by_alert(a),
                inhibited_by: rt.inhibitor.inhibited_by(&a.labels, now),
                muted_by: &muted_by,
            };
            if !q.wants(&status) {
                return false;
            }
            write_gettable(out, a, &receivers, &status);
            true
        })
    })
    .await
}

pub(crate) async fn get_groups(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    answer(s, raw, |app, q, now, ready| {
        let rt = app.runtime();
        // Without a state flag that drops alerts, the statuses are looked
        // up while rendering (on every worker, and without holding one
        // per alert of the answer); otherwise they decide first which
        // alerts and groups there are.
        let (groups, statuses) = if q.filters_by_state() {
            let (g, s) = query_groups(app, &q, now);
            (g, Some(s))
        } else {
            (query_group_views(app, &q, now), None)
        };
        let silences = app.silences.query(now);
        // An alert lists every receiver whose groups hold it. Without any
        // `continue` in the tree an alert is in exactly one group, so the
        // index is only built when it can hold more.
        let multi = rt.route.walk().iter().any(|r| r.continue_matching);
        let total: usize = if multi {
            groups.iter().map(|g| g.alerts.len()).sum()
        } else {
            0
        };
        let mut receivers: HashMap<Fingerprint, Vec<&str>, fnv::FnvBuildHasher> =
            HashMap::with_capacity_and_hasher(total, fnv::FnvBuildHasher::default());
        for g in groups.iter().filter(|_| multi) {
            for a in &g.alerts {
                receivers
                    .entry(a.fingerprint)
                    .or_default()
                    .push(&g.receiver);
            }
        }
        for v in receivers.values_mut() {
            v.sort_unstable();
        }
        // Each group's notification order, sorted by the first worker
        // that renders one of its chunks.
        let orders: Vec<OnceLock<Vec<usize>>> = groups.iter().map(|_| OnceLock::new()).collect();
        let chunks = chunks(&groups);
        let weight = |c: &Chunk| c.hi - c.lo;
        stream::render_parts(&chunks, weight, GROUP_CUT, ready, |out, c| {
            let g = &groups[c.group];
            let order = orders[c.group].get_or_init(|| notification_order_indices(&g.alerts));
            if c.lo == 0 {
                out.extend_from_slice(b",{\"alerts\":[");
            }
            let own = [g.receiver.as_str()];
            for (j, &i) in order.iter().enumerate().take(c.hi).skip(c.lo) {
                let a = &g.alerts[i];
                if j > 0 {
                    out.push(b',');
                }
                let r = if multi {
                    receivers
                        .get(&a.fingerprint)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                } else {
                    &own[..]
                };
                let (silenced_by, inhibited_by) = match &statuses {
                    Some(s) => (s[c.group][i].0.clone(), s[c.group][i].1),
                    None => (
                        silences.silenced_by_alert(a),
                        rt.inhibitor.inhibited_by(&a.labels, now),
                    ),
                };
                write_gettable(
                    out,
                    a,
                    r,
                    &Suppression {
                        silenced_by,
                        inhibited_by,
                        muted_by: &g.muted_by,
                    },
                );
            }
            if c.hi == g.alerts.len() {
                out.extend_from_slice(b"],\"labels\":");
                g.labels.write_json(out);
                out.extend_from_slice(b",\"receiver\":{\"name\":");
                gojson::write_str(out, &g.receiver);
                out.extend_from_slice(b"},\"routeLabels\":");
                g.route_labels.write_json(out);
                out.push(b'}');
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn conv(
        p: PostableAlert,
        now: Timestamp,
        rt: std::time::Duration,
        classic: bool,
    ) -> Result<Alert, String> {
        to_alert(
            p,
            now,
            rt,
            classic,
            &Interner::default(),
            &mut RecentStrings::default(),
        )
    }

    fn posted<'a>(
        labels: &[(&'a str, &'a str)],
        starts: Option<&str>,
        ends: Option<&str>,
    ) -> PostableAlert<'a> {
        PostableAlert {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                    .collect(),
            ),
            annotations: None,
            starts_at: starts.map(|s| s.parse().unwrap()),
            ends_at: ends.map(|s| s.parse().unwrap()),
            generator_url: None,
        }
    }

    /// The plain reading: every pair interned, Go's map (last value
    /// wins), then the filter.
    fn plain_labels(pairs: &Pairs<'_>, i: &Interner, keep: impl Fn(&str) -> bool) -> LabelSet {
        let set = LabelSet::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (i.intern(k), i.intern(v)))
                .collect(),
        );
        LabelSet::from_pairs(
            set.iter()
                .filter(|(_, v)| keep(v))
                .map(|(k, v)| (i.intern(k), i.intern(v)))
                .collect(),
        )
    }

    #[test]
    fn labels_are_read_as_the_plain_reading_reads_them() {
        let interner = Interner::default();
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let names = ["a", "b", "job", "a0", "", "\u{e9}", "B"];
        let values = ["", "1", "x", "", "y\"z"];
        // Shared across the sets, as across a request's alerts: what is
        // taken from the previous set must be what interning gives.
        let mut recent = [Recent::default(), Recent::default()];
        for _ in 0..5000 {
            let pairs: Pairs<'_> = (0..next() % 9)
                .map(|_| {
                    (
                        Cow::Borrowed(names[(next() % names.len() as u64) as usize]),
                        Cow::Borrowed(values[(next() % values.len() as u64) as usize]),
                    )
                })
                .collect();
            // Sorted without repeats too, as Prometheus sends them.
            let mut sorted = pairs.clone();
            sorted.sort();
            sorted.dedup_by(|a, b| a.0 == b.0);
            for (keep_empty, recent) in [false, true].into_iter().zip(&mut recent) {
                let keep = |v: &str| keep_empty || !v.is_empty();
                let plain = plain_labels(&sorted, &interner, keep);
                let fast = into_labels(sorted.clone(), &interner, recent, keep);
                assert_eq!(fast, plain, "{sorted:?}");
            }
            for (keep_empty, recent) in [false, true].into_iter().zip(&mut recent) {
                let keep = |v: &str| keep_empty || !v.is_empty();
                let plain = plain_labels(&pairs, &interner, keep);
                let fast = into_labels(pairs.clone(), &interner, recent, keep);
                assert_eq!(fast, plain, "{pairs:?}");
                assert_eq!(fast.fingerprint(), plain.fingerprint());
                for (n, v) in fast.iter() {
                    assert!(std::ptr::eq(n, &*interner.intern(n)), "{n:?} not shared");
                    assert!(std::ptr::eq(v, &*interner.intern(v)), "{v:?} not shared");
                }
            }
        }
    }

    #[test]
    fn defaults_like_alertmanager() {
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let rt = std::time::Duration::from_secs(300);
        let a = conv(
            posted(&[("a", "1"), ("empty", "")], None, None),
            now,
            rt,
            false,
        )
        .unwrap();
        assert_eq!(a.starts_at, now);
        assert_eq!(a.ends_at, "2024-01-01T00:05:00Z".parse().unwrap());
        assert!(a.timeout);
        assert_eq!(a.labels.len(), 1, "empty labels dropped");
        let b = conv(
            posted(&[("a", "1")], None, Some("2023-12-31T00:00:00Z")),
            now,
            rt,
            false,
        )
        .unwrap();
        assert_eq!(b.starts_at, b.ends_at, "start defaults to end");
        assert!(!b.timeout);
    }

    #[test]
    fn validation_like_alertmanager() {
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let rt = std::time::Duration::from_secs(300);
        let e = conv(
            posted(
                &[("a", "1")],
                Some("2024-01-02T00:00:00Z"),
                Some("2024-01-01T00:00:00Z"),
            ),
            now,
            rt,
            false,
        );
        assert_eq!(e.unwrap_err(), "start time must be before end time");
        assert_eq!(
            conv(posted(&[("a", "")], None, None), now, rt, false).unwrap_err(),
            "at least one label pair required"
        );
        assert!(
            conv(posted(&[("foo-bar", "x")], None, None), now, rt, false).is_ok(),
            "UTF-8 names by default"
        );
        assert!(conv(posted(&[("foo-bar", "x")], None, None), now, rt, true)
            .unwrap_err()
            .contains("invalid name"));
    }

    #[test]
    fn times_written_from_the_last_text_equal_formatted_ones() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        // A few times, so that most are the last one written; the epoch
        // (the cache's empty value) and Go's zero time among them.
        let times: Vec<Timestamp> = [0, 0, 1, 1_700_000_000_123, 4_102_444_800_999, -1]
            .iter()
            .map(|ms| Timestamp::from_millisecond(*ms).unwrap())
            .chain([GO_ZERO_TIME])
            .collect();
        let fields = [TimeField::Starts, TimeField::Ends, TimeField::Updated];
        for _ in 0..5000 {
            let t = times[(next() % times.len() as u64) as usize];
            let f = fields[(next() % 3) as usize];
            let (mut got, mut want) = (b"x".to_vec(), b"x".to_vec());
            write_time(&mut got, t, f);
            write_rfc3339_millis(&mut want, t);
            assert_eq!(got, want, "{t}");
        }
    }

    #[test]
    fn query_parsing() {
        let q = parse_query(Some(
            "filter=alertname%3D%22A%22&filter=sev%3D~%22crit.*%22&receiver=team-.*&silenced=false"
                .into(),
        ))
        .unwrap();
        assert_eq!(q.filter.0.len(), 2);
        assert!(!q.silenced);
        assert!(q.receiver_ok("team-x"));
        assert!(!q.receiver_ok("xteam-x"));
        assert!(parse_query(Some("filter=%3Dbad".into())).is_err());
        assert!(parse_query(Some("receiver=(".into())).is_err());
    }
}
