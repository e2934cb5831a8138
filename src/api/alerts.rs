//! `/api/v2/alerts` and `/api/v2/alerts/groups`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::{error_response, schema_error, ApiState};
use crate::app::App;
use crate::dispatch::GroupView;
use crate::gojson;
use crate::model::{
    notification_order_indices, write_rfc3339_millis, Alert, Fingerprint, Interner, LabelSet,
    GO_ZERO_TIME,
};
use crate::query::{
    parse_query, query_groups, receiver_labels, AlertQuery, GroupStatuses, Suppression,
};

/// `postableAlert`. Strings are borrowed from the request body where JSON
/// escaping allows, and interned once, straight into the stored label sets.
/// Times stay strings until validated so that a bad one is reported for that
/// alert, not as a failure of the whole request.
#[derive(Deserialize)]
struct PostableAlert<'a> {
    #[serde(borrow)]
    labels: Option<RawPairs<'a>>,
    #[serde(borrow, default)]
    annotations: Option<RawPairs<'a>>,
    #[serde(rename = "startsAt", default)]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
}

/// A JSON object of strings, as received.
#[derive(Default)]
struct RawPairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawPairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawPairs::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(12));
                while let Some((k, val)) = m.next_entry::<CowStr<'de>, CowStr<'de>>()? {
                    v.push((k.0, val.0));
                }
                Ok(RawPairs(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// serde's `Cow<str>` always copies; this borrows when it can.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl RawPairs<'_> {
    fn into_labels(self, interner: &Interner, keep: impl Fn(&str) -> bool) -> LabelSet {
        LabelSet::from_pairs(
            self.0
                .iter()
                .filter(|(_, v)| keep(v))
                .map(|(k, v)| (interner.intern(k), interner.intern(v)))
                .collect(),
        )
    }
}

fn parse_time(s: &Option<String>, field: &str) -> Result<Option<Timestamp>, String> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<Timestamp>()
            .map(|t| if t == GO_ZERO_TIME { None } else { Some(t) })
            .map_err(|_| format!("{field} in body must be of type date-time: {v:?}")),
    }
}

fn valid_label_name(n: &str, classic: bool) -> bool {
    if classic {
        crate::matcher::is_valid_classic_label_name(n)
    } else {
        !n.is_empty()
    }
}

pub(crate) async fn post_alerts(State(s): State<ApiState>, body: Bytes) -> Response {
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("parsing alerts body: {e}"),
            )
        }
    };
    // Schema validation happens before the handler in Alertmanager: a
    // missing `labels` rejects the whole request with 422.
    if let Some(i) = posted.iter().position(|a| a.labels.is_none()) {
        return schema_error(602, format!("{i}.labels in body is required"));
    }
    let app = &s.app;
    let now = app.settings.clock.now();
    let resolve_timeout = app.runtime().config.global().resolve_timeout.0;
    let classic = app.settings.classic_mode;
    let mut errors: Vec<String> = Vec::new();
    let mut stored = Vec::with_capacity(posted.len());
    for p in posted {
        match to_alert(p, now, resolve_timeout, classic, &app.interner) {
            Ok(alert) => {
                app.metrics.alert_received(alert.ends_at > now);
                stored.extend(app.put_alert(alert, now));
            }
            Err(e) => {
                // Counted as received as well: Alertmanager counts before validating.
                app.metrics.alert_received(true);
                app.metrics.alert_invalid();
                errors.push(e);
            }
        }
    }
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

/// Applies Alertmanager's defaults and `Alert.Validate`.
fn to_alert(
    p: PostableAlert,
    now: Timestamp,
    resolve_timeout: std::time::Duration,
    classic: bool,
    interner: &Interner,
) -> Result<Alert, String> {
    let starts = parse_time(&p.starts_at, "startsAt")?;
    let ends = parse_time(&p.ends_at, "endsAt")?;
    let labels = p
        .labels
        .unwrap_or_default()
        .into_labels(interner, |v| !v.is_empty());
    let annotations = p
        .annotations
        .unwrap_or_default()
        .into_labels(interner, |_| true);
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
    let generator_url = p.generator_url.unwrap_or_default();
    if !generator_url.is_empty()
        && url::Url::parse(&generator_url).is_err()
        && !generator_url.starts_with('/')
    {
        return Err(format!(
            "generatorURL in body must be of type uri: {generator_url:?}"
        ));
    }
    Ok(Alert {
        fingerprint: labels.fingerprint(),
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url: Arc::from(generator_url),
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
    write_rfc3339_millis(out, a.ends_at);
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
    write_rfc3339_millis(out, a.starts_at);
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
    write_rfc3339_millis(out, a.updated_at);
    if !a.generator_url.is_empty() {
        out.extend_from_slice(b",\"generatorURL\":");
        gojson::write_str(out, &a.generator_url);
    }
    out.extend_from_slice(b",\"labels\":");
    a.labels.write_json(out);
    out.push(b'}');
}

fn write_fingerprint(out: &mut Vec<u8>, fp: Fingerprint) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((fp.0 >> (i * 4)) & 0xf) as usize]);
    }
}

/// Renders `items` as a JSON array on every core, in order, as chunks of
/// the body. `render` returns false for an item it skipped. A thread takes
/// at least `min_chunk` items, so small answers are not split for nothing
/// (alerts are light items; a group of a thousand alerts is a heavy one).
fn render_parallel<T: Sync>(
    items: &[T],
    min_chunk: usize,
    render: impl Fn(&mut Vec<u8>, &T) -> bool + Sync,
) -> Vec<Bytes> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let chunk = items.len().div_ceil(threads).max(min_chunk).max(1);
    let parts: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let render = &render;
                s.spawn(move || {
                    let mut out = Vec::with_capacity(part.len() * 700);
                    for item in part {
                        let mark = out.len();
                        if mark > 0 {
                            out.push(b',');
                        }
                        if !render(&mut out, item) {
                            out.truncate(mark);
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // The parts go out as they are, framed by small chunks: joining them
    // would copy the whole answer once more (and fault in its pages).
    let mut chunks = Vec::with_capacity(parts.len() * 2 + 1);
    let mut first = true;
    for p in parts.into_iter().filter(|p| !p.is_empty()) {
        chunks.push(Bytes::from_static(if first { b"[" } else { b"," }));
        chunks.push(Bytes::from(p));
        first = false;
    }
    chunks.push(Bytes::from_static(if first { b"[]\n" } else { b"]\n" }));
    chunks
}

/// Parses the shared query parameters, then renders the answer on the
/// blocking pool: routing and writing 100k alerts is CPU work that must not
/// stall the async workers.
async fn answer(
    s: ApiState,
    raw: Option<String>,
    render: impl FnOnce(&App, AlertQuery, Timestamp) -> Vec<Bytes> + Send + 'static,
) -> Response {
    let q = match parse_query(raw) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    let app = s.app.clone();
    match tokio::task::spawn_blocking(move || {
        let now = app.settings.clock.now();
        render(&app, q, now)
    })
    .await
    {
        Ok(chunks) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            axum::body::Body::from_stream(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
            )),
        )
            .into_response(),
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("rendering the answer failed: {e}"),
        ),
    }
}

pub(crate) async fn get_alerts(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    answer(s, raw, |app, q, now| {
        let rt = app.runtime();
        let silences = app.silences.query(now);
        let rcv_labels = receiver_labels(&rt.config.config.receivers);
        let mut alerts: Vec<Arc<Alert>> = app
            .store
            .snapshot()
            .into_iter()
            .filter(|a| q.accepts(a, now))
            .collect();
        alerts.sort_unstable_by_key(|a| a.fingerprint);
        render_parallel(&alerts, 256, |out, a| {
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
                silenced_by: silences.silenced_by(&a.labels),
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
    answer(s, raw, |app, q, now| {
        let rt = app.runtime();
        let (groups, statuses) = query_groups(app, &q, now);
        let rendered: Vec<(&GroupView, &GroupStatuses)> = groups.iter().zip(&statuses).collect();
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
        render_parallel(&rendered, 1, |out, (g, statuses)| {
            out.extend_from_slice(b"{\"alerts\":[");
            for (j, i) in notification_order_indices(&g.alerts)
                .into_iter()
                .enumerate()
            {
                let a = &g.alerts[i];
                if j > 0 {
                    out.push(b',');
                }
                let own = [g.receiver.as_str()];
                let r = if multi {
                    receivers
                        .get(&a.fingerprint)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                } else {
                    &own[..]
                };
                write_gettable(
                    out,
                    a,
                    r,
                    &Suppression {
                        silenced_by: statuses[i].0.clone(),
                        inhibited_by: statuses[i].1,
                        muted_by: &g.muted_by,
                    },
                );
            }
            out.extend_from_slice(b"],\"labels\":");
            g.labels.write_json(out);
            out.extend_from_slice(b",\"receiver\":{\"name\":");
            gojson::write_str(out, &g.receiver);
            out.extend_from_slice(b"},\"routeLabels\":");
            g.route_labels.write_json(out);
            out.push(b'}');
            true
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(
        p: PostableAlert,
        now: Timestamp,
        rt: std::time::Duration,
        classic: bool,
    ) -> Result<Alert, String> {
        to_alert(p, now, rt, classic, &Interner::default())
    }

    fn posted<'a>(
        labels: &[(&'a str, &'a str)],
        starts: Option<&str>,
        ends: Option<&str>,
    ) -> PostableAlert<'a> {
        PostableAlert {
            labels: Some(RawPairs(
                labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                    .collect(),
            )),
            annotations: None,
            starts_at: starts.map(String::from),
            ends_at: ends.map(String::from),
            generator_url: None,
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
        assert!(conv(
            posted(&[("a", "1")], Some("yesterday"), None),
            now,
            rt,
            false
        )
        .unwrap_err()
        .contains("date-time"));
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
