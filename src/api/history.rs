//! `GET /api/herald/v1/notifications`: the notification history
//! (`history`), Herald's own API beside v2, so v2 stays what
//! Alertmanager's clients expect. Errors are a JSON object
//! (`{"error": "..."}`) rather than v2's bare string: this API has no
//! go-swagger to match.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{json_response, ApiState};
use crate::history::{parse_query, Record};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    notifications: Vec<Notification<'a>>,
    next: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    id: i64,
    time: String,
    receiver: &'a str,
    integration: &'a str,
    index: Option<u32>,
    group_key: &'a str,
    group_labels: &'a crate::model::LabelSet,
    alerts: Vec<AlertOut<'a>>,
    reason: Option<&'a str>,
    outcome: &'static str,
    error: Option<&'a str>,
    failure_reason: Option<&'a str>,
    attempts: u32,
    count: u64,
    first_at: String,
    last_at: String,
    node: &'a str,
    muted_by: &'a [String],
}

#[derive(Serialize)]
struct AlertOut<'a> {
    fingerprint: String,
    labels: &'a crate::model::LabelSet,
    status: &'static str,
}

#[derive(Serialize)]
struct Error<'a> {
    error: &'a str,
}

fn error(code: StatusCode, msg: &str) -> Response {
    json_response(code, &Error { error: msg })
}

/// RFC 3339 in UTC, as the rest of the API writes times.
fn time(t: jiff::Timestamp) -> String {
    crate::model::format_rfc3339_nano(t)
}

fn notification(r: &Record) -> Notification<'_> {
    let b = &r.body;
    Notification {
        id: r.id,
        time: time(r.last_at),
        receiver: &r.receiver,
        integration: &r.integration,
        index: r.index,
        group_key: &r.group_key,
        group_labels: &b.group_labels,
        alerts: b
            .alerts
            .iter()
            .map(|a| AlertOut {
                fingerprint: a.fingerprint.to_string(),
                labels: &a.labels,
                status: if a.resolved { "resolved" } else { "firing" },
            })
            .collect(),
        reason: b.reason.as_deref(),
        outcome: r.outcome.as_str(),
        error: b.error.as_deref(),
        failure_reason: b.failure_reason.as_deref(),
        attempts: b.attempts,
        count: r.count,
        first_at: time(r.first_at),
        last_at: time(r.last_at),
        node: &b.node,
        muted_by: &b.muted_by,
    }
}

pub(super) async fn get_notifications(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match crate::history::query(s.app.history.clone(), q).await {
        Ok(page) => json_response(
            StatusCode::OK,
            &Answer {
                notifications: page.records.iter().map(notification).collect(),
                next: page.next.as_deref(),
            },
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
