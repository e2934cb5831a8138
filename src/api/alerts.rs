//! `/api/v2/alerts` and `/api/v2/alerts/groups`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use regex::Regex;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::{error_response, json_response, ApiState};
use crate::matcher::{parse_matchers, Matchers};
use crate::model::{format_rfc3339_millis, Alert, Fingerprint, LabelSet, GO_ZERO_TIME};

/// `postableAlert`. Times stay strings until validated so that a bad one is
/// reported for that alert, not as a failure of the whole request.
#[derive(Deserialize)]
struct PostableAlert {
    labels: Option<LabelSet>,
    #[serde(default)]
    annotations: Option<LabelSet>,
    #[serde(rename = "startsAt", default)]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
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
        crate::matcher::is_valid_label_name(n)
    } else {
        !n.is_empty()
    }
}

pub async fn post_alerts(State(s): State<ApiState>, body: Bytes) -> Response {
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
        #[derive(Serialize)]
        struct SchemaError {
            code: u32,
            message: String,
        }
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SchemaError {
                code: 602,
                message: format!("{i}.labels in body is required"),
            },
        );
    }
    let app = &s.app;
    let now = Timestamp::now();
    let resolve_timeout = app.runtime().config.global().resolve_timeout.0;
    let classic = app.settings.classic_mode;
    let mut errors: Vec<String> = Vec::new();
    for p in posted {
        match to_alert(p, now, resolve_timeout, classic) {
            Ok(alert) => {
                app.metrics.alert_received(alert.ends_at > now);
                app.put_alert(alert, now);
            }
            Err(e) => {
                // Counted as received as well: Alertmanager counts before validating.
                app.metrics.alert_received(true);
                app.metrics.alert_invalid();
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Response::new(axum::body::Body::empty())
    } else {
        error_response(StatusCode::BAD_REQUEST, &errors.join("; "))
    }
}

/// Applies Alertmanager's defaults and `Alert.Validate`.
fn to_alert(
    p: PostableAlert,
    now: Timestamp,
    resolve_timeout: std::time::Duration,
    classic: bool,
) -> Result<Alert, String> {
    let starts = parse_time(&p.starts_at, "startsAt")?;
    let ends = parse_time(&p.ends_at, "endsAt")?;
    let labels = p
        .labels
        .unwrap_or_default()
        .filter_values(|v| !v.is_empty());
    let annotations = p.annotations.unwrap_or_default();
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

/// The query parameters the alert endpoints share.
struct AlertQuery {
    filter: Matchers,
    receiver: Option<Regex>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    unprocessed: bool,
    muted: bool,
}

fn parse_query(raw: Option<String>) -> Result<AlertQuery, String> {
    let mut q = AlertQuery {
        filter: Matchers::default(),
        receiver: None,
        active: true,
        silenced: true,
        inhibited: true,
        unprocessed: true,
        muted: true,
    };
    let raw = raw.unwrap_or_default();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let flag = || match v.as_ref() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("{k} in query must be of type boolean: {other:?}")),
        };
        match k.as_ref() {
            "filter" => q
                .filter
                .0
                .extend(parse_matchers(&v).map_err(|e| e.to_string())?),
            "receiver" => {
                q.receiver = Some(
                    Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| format!("failed to parse receiver param: {e}"))?,
                );
            }
            "active" => q.active = flag()?,
            "silenced" => q.silenced = flag()?,
            "inhibited" => q.inhibited = flag()?,
            "unprocessed" => q.unprocessed = flag()?,
            "muted" => q.muted = flag()?,
            _ => {}
        }
    }
    Ok(q)
}

impl AlertQuery {
    /// `api.alertFilter`: not yet ended, matches the filter, and its state
    /// is one the flags ask for. Every alert is "active" until silences and
    /// inhibition arrive.
    fn accepts(&self, a: &Alert, now: Timestamp) -> bool {
        if a.ends_at != GO_ZERO_TIME && a.ends_at < now {
            return false;
        }
        self.active && self.filter.matches(&a.labels)
    }

    fn receiver_ok(&self, name: &str) -> bool {
        self.receiver.as_ref().is_none_or(|r| r.is_match(name))
    }
}

/// `gettableAlert`, keys in go-swagger's order.
struct GettableAlert<'a> {
    alert: &'a Alert,
    receivers: Vec<&'a str>,
}

#[derive(Serialize)]
struct ReceiverName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct AlertStatusBody {
    #[serde(rename = "inhibitedBy")]
    inhibited_by: [String; 0],
    #[serde(rename = "mutedBy")]
    muted_by: [String; 0],
    #[serde(rename = "silencedBy")]
    silenced_by: [String; 0],
    state: &'static str,
}

impl Serialize for GettableAlert<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.alert;
        let mut st = s.serialize_struct("GettableAlert", 9)?;
        st.serialize_field("annotations", &a.annotations)?;
        st.serialize_field("endsAt", &format_rfc3339_millis(a.ends_at))?;
        st.serialize_field("fingerprint", &a.fingerprint.to_string())?;
        let receivers: Vec<ReceiverName> = self
            .receivers
            .iter()
            .map(|n| ReceiverName { name: n })
            .collect();
        st.serialize_field("receivers", &receivers)?;
        st.serialize_field("startsAt", &format_rfc3339_millis(a.starts_at))?;
        st.serialize_field(
            "status",
            &AlertStatusBody {
                inhibited_by: [],
                muted_by: [],
                silenced_by: [],
                state: "active",
            },
        )?;
        st.serialize_field("updatedAt", &format_rfc3339_millis(a.updated_at))?;
        if !a.generator_url.is_empty() {
            st.serialize_field("generatorURL", &*a.generator_url)?;
        }
        st.serialize_field("labels", &a.labels)?;
        st.end()
    }
}

pub async fn get_alerts(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = match parse_query(raw) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    let app = s.app.clone();
    // Routing 100k alerts is CPU work: keep it off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let rt = app.runtime();
        let mut alerts: Vec<Arc<Alert>> = app
            .store
            .snapshot()
            .into_iter()
            .filter(|a| q.accepts(a, now))
            .collect();
        alerts.sort_unstable_by_key(|a| a.fingerprint);
        let mut out = Vec::with_capacity(alerts.len() * 512 + 2);
        out.push(b'[');
        let mut first = true;
        for a in &alerts {
            let routes = rt.route.matching(&a.labels);
            let receivers: Vec<&str> = routes.iter().map(|r| r.opts.receiver.as_str()).collect();
            if q.receiver.is_some() && !receivers.iter().any(|r| q.receiver_ok(r)) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            crate::gojson::write(
                &mut out,
                &GettableAlert {
                    alert: a,
                    receivers,
                },
            );
        }
        out.extend_from_slice(b"]\n");
        out
    })
    .await
    .unwrap_or_else(|_| b"[]".to_vec());
    json_bytes(body)
}

fn json_bytes(body: Vec<u8>) -> Response {
    axum::response::IntoResponse::into_response((
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    ))
}

pub async fn get_groups(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = match parse_query(raw) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    let app = s.app.clone();
    let body = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let rt = app.runtime();
        let groups = rt
            .dispatcher
            .groups(|r| q.receiver_ok(&r.opts.receiver), |a| q.accepts(a, now));
        // An alert lists every receiver whose groups hold it.
        let mut receivers: HashMap<Fingerprint, Vec<&str>> = HashMap::new();
        for g in &groups {
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
        let mut out = Vec::with_capacity(4096);
        out.push(b'[');
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"alerts\":[");
            for (j, a) in g.alerts.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                let r = receivers.get(&a.fingerprint).cloned().unwrap_or_default();
                crate::gojson::write(
                    &mut out,
                    &GettableAlert {
                        alert: a,
                        receivers: r,
                    },
                );
            }
            out.extend_from_slice(b"],\"labels\":");
            crate::gojson::write(&mut out, &g.labels);
            out.extend_from_slice(b",\"receiver\":");
            crate::gojson::write(&mut out, &ReceiverName { name: &g.receiver });
            out.push(b'}');
        }
        out.extend_from_slice(b"]\n");
        out
    })
    .await
    .unwrap_or_else(|_| b"[]".to_vec());
    json_bytes(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(labels: &[(&str, &str)], starts: Option<&str>, ends: Option<&str>) -> PostableAlert {
        PostableAlert {
            labels: Some(LabelSet::from_strs(labels.iter().copied())),
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
        let a = to_alert(
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
        let b = to_alert(
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
        let e = to_alert(
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
            to_alert(posted(&[("a", "")], None, None), now, rt, false).unwrap_err(),
            "at least one label pair required"
        );
        assert!(
            to_alert(posted(&[("foo-bar", "x")], None, None), now, rt, false).is_ok(),
            "UTF-8 names by default"
        );
        assert!(
            to_alert(posted(&[("foo-bar", "x")], None, None), now, rt, true)
                .unwrap_err()
                .contains("invalid name")
        );
        assert!(to_alert(
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
