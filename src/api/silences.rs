//! `/api/v2/silences` and `/api/v2/silence/{id}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{error_response, json_response, schema_error, ApiState};
use crate::matcher::Matchers;
use crate::model::format_rfc3339_millis;
use crate::query::{go_swagger_bool, parse_filter};
use crate::silence::{
    api_matcher, matches_filter, Annotations, Silence, SilenceError, SilenceState,
};

#[derive(Serialize)]
struct MatcherBody<'a> {
    #[serde(rename = "isEqual")]
    is_equal: bool,
    #[serde(rename = "isRegex")]
    is_regex: bool,
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct StatusBody {
    state: &'static str,
}

/// `gettableSilence`, keys in go-swagger's order.
#[derive(Serialize)]
struct GettableSilence<'a> {
    id: &'a str,
    status: StatusBody,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    /// `json:"annotations,omitempty"`: absent when there are none.
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    annotations: &'a Annotations,
    comment: &'a str,
    #[serde(rename = "createdBy")]
    created_by: &'a str,
    #[serde(rename = "endsAt")]
    ends_at: String,
    matchers: Vec<MatcherBody<'a>>,
    #[serde(rename = "startsAt")]
    starts_at: String,
}

fn gettable(s: &Silence, now: Timestamp) -> GettableSilence<'_> {
    use crate::matcher::MatchType::*;
    GettableSilence {
        id: &s.id,
        status: StatusBody {
            state: s.state(now).as_str(),
        },
        updated_at: format_rfc3339_millis(s.updated_at),
        annotations: &s.annotations,
        comment: &s.comment,
        created_by: &s.created_by,
        ends_at: format_rfc3339_millis(s.ends_at),
        matchers: s
            .matchers
            .0
            .iter()
            .map(|m| MatcherBody {
                is_equal: matches!(m.kind, Equal | Regexp),
                is_regex: matches!(m.kind, Regexp | NotRegexp),
                name: &m.name,
                value: &m.value,
            })
            .collect(),
        starts_at: format_rfc3339_millis(s.starts_at),
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

pub(crate) async fn get_silences(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let mut filter = Matchers::default();
    let (mut active, mut pending, mut expired) = (true, true, true);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "filter" => match parse_filter(&v) {
                Ok(ms) => filter.0.extend(ms),
                Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
            },
            // 0.34's state flags, bound like every go-swagger boolean.
            "active" => active = go_swagger_bool(&v).unwrap_or(true),
            "pending" => pending = go_swagger_bool(&v).unwrap_or(true),
            "expired" => expired = go_swagger_bool(&v).unwrap_or(true),
            _ => {}
        }
    }
    let now = s.app.settings.clock.now();
    let mut list: Vec<_> = s
        .app
        .silences
        .list()
        .into_iter()
        .filter(|sil| matches_filter(sil, &filter))
        .filter(|sil| match sil.state(now) {
            SilenceState::Active => active,
            SilenceState::Pending => pending,
            SilenceState::Expired => expired,
        })
        .collect();
    // `SortSilences`: active by soonest end, pending by soonest start,
    // expired by most recent end; ties by id so the order is stable.
    list.sort_by(|a, b| {
        let (sa, sb) = (a.state(now), b.state(now));
        sa.cmp(&sb)
            .then_with(|| match sa {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    let body: Vec<GettableSilence> = list.iter().map(|sil| gettable(sil, now)).collect();
    json_response(StatusCode::OK, &body)
}

pub(crate) async fn get_silence(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    if !is_uuid(&id) {
        return schema_error(
            605,
            format!("silenceID in path must be of type uuid: {id:?}"),
        );
    }
    match s.app.silences.get(&id) {
        Some(sil) => json_response(StatusCode::OK, &gettable(&sil, s.app.settings.clock.now())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) async fn delete_silence(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    if !is_uuid(&id) {
        return schema_error(
            605,
            format!("silenceID in path must be of type uuid: {id:?}"),
        );
    }
    // Both answer once the change is on disk.
    match s.app.silences.expire(&id, s.app.settings.clock.now()).await {
        Ok(()) => StatusCode::OK.into_response(),
        // Alertmanager 0.25 answers 500 here; later releases 404, empty.
        Err(SilenceError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(SilenceError::Storage(e)) => e.into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct PostableMatcher {
    name: Option<String>,
    value: Option<String>,
    #[serde(rename = "isRegex")]
    is_regex: Option<bool>,
    #[serde(rename = "isEqual")]
    is_equal: Option<bool>,
}

#[derive(Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Option<Vec<PostableMatcher>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    comment: Option<String>,
    /// `null` is as good as absent, as in go-swagger.
    #[serde(default)]
    annotations: Option<Annotations>,
}

pub(crate) async fn post_silences(State(s): State<ApiState>, body: Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("parsing silence body: {e}"),
            )
        }
    };
    let required = |present: bool, field: &str| {
        (!present).then(|| schema_error(602, format!("{field} in body is required")))
    };
    for (present, field) in [
        (p.comment.is_some(), "comment"),
        (p.created_by.is_some(), "createdBy"),
        (p.ends_at.is_some(), "endsAt"),
        (p.matchers.is_some(), "matchers"),
        (p.starts_at.is_some(), "startsAt"),
    ] {
        if let Some(r) = required(present, field) {
            return r;
        }
    }
    let raw_matchers = p.matchers.unwrap_or_default();
    if raw_matchers.is_empty() {
        return schema_error(604, "matchers in body should have at least 1 items".into());
    }
    let mut matchers = Vec::with_capacity(raw_matchers.len());
    for (i, m) in raw_matchers.iter().enumerate() {
        let (Some(name), Some(value), Some(is_regex)) = (&m.name, &m.value, m.is_regex) else {
            let missing = if m.name.is_none() {
                "name"
            } else if m.value.is_none() {
                "value"
            } else {
                "isRegex"
            };
            return schema_error(602, format!("matchers.{i}.{missing} in body is required"));
        };
        // `validateMatcher`: classic names only in classic mode. Checked here
        // rather than in `api_matcher`, which also loads stored silences.
        let checked = if crate::matcher::is_valid_label_name(name) {
            api_matcher(name, value, is_regex, m.is_equal.unwrap_or(true))
        } else {
            Err(format!(
                "invalid label name {}",
                crate::model::gostr::go_quote(name)
            ))
        };
        match checked {
            Ok(m) => matchers.push(m),
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid silence: invalid label matcher {i} in set 0: {e}"),
                )
            }
        }
    }
    // The error is the answer itself, built at most once per request.
    #[allow(clippy::result_large_err)]
    let parse = |v: &Option<String>, field: &str| -> Result<Timestamp, Response> {
        let v = v.as_deref().unwrap_or_default();
        v.parse::<Timestamp>().map_err(|_| {
            schema_error(
                602,
                format!("{field} in body must be of type date-time: {v:?}"),
            )
        })
    };
    let starts_at = match parse(&p.starts_at, "startsAt") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ends_at = match parse(&p.ends_at, "endsAt") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let now = s.app.settings.clock.now();
    if let Err(e) = crate::silence::check_times(starts_at, ends_at, now) {
        return error_response(StatusCode::BAD_REQUEST, e);
    }
    let posted_id = p.id.clone().unwrap_or_default();
    let silence = Silence {
        id: p.id.unwrap_or_default(),
        matchers: Matchers(matchers),
        starts_at,
        ends_at,
        updated_at: now,
        created_by: p.created_by.unwrap_or_default(),
        comment: p.comment.unwrap_or_default(),
        annotations: p.annotations.unwrap_or_default(),
    };
    match s.app.silences.set(silence, now).await {
        Ok(id) => {
            // Alertmanager's `Silences.Set`: a new ID is a created silence,
            // the same one an update in place.
            if let Some(stored) = crate::eventrecorder::active()
                .then(|| s.app.silences.get(&id))
                .flatten()
            {
                crate::eventrecorder::record(|| {
                    if id == posted_id {
                        crate::eventrecorder::events::silence_updated(&stored)
                    } else {
                        crate::eventrecorder::events::silence_created(&stored)
                    }
                });
            }
            #[derive(Serialize)]
            struct Created {
                #[serde(rename = "silenceID")]
                silence_id: String,
            }
            json_response(StatusCode::OK, &Created { silence_id: id })
        }
        Err(e @ SilenceError::NotFound) => error_response(StatusCode::NOT_FOUND, &e.to_string()),
        Err(SilenceError::Storage(e)) => e.into_response(),
        Err(e) => error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}
