//! The "Notifications" page: the notification history (`history`), read
//! through the same query as `GET /api/herald/v1/notifications`, so the
//! page's filters mean what the API's do.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{enc, param, query_pairs, receiver_names, view, Page, UiState};
use crate::history::{Outcome, Record};
use crate::matcher::parse_matchers;

/// Records a page lists; older ones are a link away.
const PER_PAGE: usize = 100;

/// The outcome choices of the filter: the API's values, and `muted` for
/// the three kinds of muting together.
const OUTCOMES: [(&str, &str); 8] = [
    ("", "Any outcome"),
    ("success", "Sent"),
    ("failure", "Failed"),
    ("deduplicated", "Nothing new (deduplicated)"),
    ("muted", "Muted (any)"),
    ("silenced", "Silenced"),
    ("inhibited", "Inhibited"),
    ("time_muted", "Time-muted"),
];

pub(super) async fn notifications_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = Page::new(&s, &headers);
    let pairs = query_pairs(&raw);
    let get = |k: &str| param(&pairs, k).unwrap_or("").trim().to_string();
    let (receiver, outcome, filter, group, before) = (
        get("receiver"),
        get("outcome"),
        get("filter"),
        get("group"),
        get("before"),
    );
    // The form's fields become the API's parameters; a bad one is shown
    // beside the form, and the page lists nothing rather than ignoring it.
    let mut api: Vec<(String, String)> = vec![("limit".into(), PER_PAGE.to_string())];
    let mut error = None;
    if !receiver.is_empty() {
        api.push(("receiver".into(), regex::escape(&receiver)));
    }
    if !outcome.is_empty() {
        api.push(("outcome".into(), outcome.clone()));
    }
    for (key, text, what) in [("filter", &filter, "alert"), ("group", &group, "group")] {
        if text.is_empty() {
            continue;
        }
        match parse_matchers(text) {
            Ok(ms) => api.extend(ms.iter().map(|m| (key.to_string(), m.to_string()))),
            Err(e) => {
                error.get_or_insert(format!("Bad {what} filter: {e}"));
            }
        }
    }
    if !before.is_empty() {
        api.push(("before".into(), before.clone()));
    }
    let raw_api = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&api)
        .finish();
    let mut records = Vec::new();
    let mut next = None;
    if error.is_none() {
        match crate::history::parse_query(Some(&raw_api)) {
            Ok(q) => match crate::history::query(s.app.history.clone(), q).await {
                Ok(p) => {
                    records = p.records;
                    next = p.next;
                }
                Err(e) => {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("reading the notification history: {e}"),
                    )
                        .into_response()
                }
            },
            Err(e) => error = Some(e),
        }
    }
    let link = |before: Option<&str>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("receiver", &receiver),
            ("outcome", &outcome),
            ("filter", &filter),
            ("group", &group),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", b);
        }
        format!("{}/notifications?{}", page.prefix(), q.finish())
    };
    let receivers = receiver_names(&s.app);
    let data = json!({
        "receiver": receiver,
        "filter": filter,
        "group": group,
        "error": error,
        "receivers": receivers.iter().map(|r| json!({"name": r, "selected": *r == receiver})).collect::<Vec<_>>(),
        "outcomes": OUTCOMES.iter().map(|(v, label)| json!({"value": v, "label": label, "selected": *v == outcome})).collect::<Vec<_>>(),
        "records": records.iter().map(|r| record(r, page.prefix())).collect::<Vec<_>>(),
        "older": next.as_deref().map(|n| link(Some(n))),
        "newest": (!before.is_empty()).then(|| link(None)),
    });
    page.respond("notifications", "Notifications", "notifications", data)
}

/// What the page says of an outcome, and the badge's class.
fn outcome_text(o: Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Success => ("sent", "ok"),
        Outcome::Failure => ("failed", "bad"),
        Outcome::Deduplicated => ("nothing new", "quiet"),
        Outcome::Silenced => ("silenced", "quiet"),
        Outcome::Inhibited => ("inhibited", "quiet"),
        Outcome::TimeMuted => ("time-muted", "quiet"),
    }
}

fn record(r: &Record, prefix: &str) -> Value {
    let b = &r.body;
    let (outcome, class) = outcome_text(r.outcome);
    let firing = b.alerts.iter().filter(|a| !a.resolved).count();
    let group_filter = b
        .group_labels
        .iter()
        .map(|(k, v)| view::matcher_text(k, v))
        .collect::<Vec<_>>()
        .join(", ");
    let integration = match (r.integration.as_str(), r.index) {
        ("", _) => String::new(),
        (kind, Some(i)) => format!("{kind}[{i}]"),
        (kind, None) => kind.to_string(),
    };
    json!({
        "time": view::time(r.last_at),
        "time_iso": r.last_at.to_string(),
        "first": (r.count > 1).then(|| json!({"time": view::time(r.first_at), "iso": r.first_at.to_string()})),
        "count": r.count,
        "receiver": r.receiver,
        "integration": integration,
        "outcome": outcome,
        "class": class,
        "reason": b.reason,
        "error": b.error,
        "failure_reason": b.failure_reason,
        "attempts": (b.attempts > 1).then_some(b.attempts),
        "node": (!b.node.is_empty()).then_some(&b.node),
        "muted_by": b.muted_by.join(", "),
        "group_labels": view::label_list(&b.group_labels),
        "group_link": format!("{prefix}/notifications?group={}&receiver={}", enc(&group_filter), enc(&r.receiver)),
        "firing": firing,
        "resolved": b.alerts.len() - firing,
        "alerts": b.alerts.iter().map(|a| json!({
            "labels": view::label_list(&a.labels),
            "status": if a.resolved { "resolved" } else { "firing" },
        })).collect::<Vec<_>>(),
    })
}
