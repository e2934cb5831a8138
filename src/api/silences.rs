//! `/api/v2/silences` and `/api/v2/silence/{id}`.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::decode::{self, merge, BoolSeed, GoStr, PairsSeed, StrSeed};
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

/// `models.Matcher`: every field a pointer, so `null` is as good as absent.
#[derive(Default)]
struct PostableMatcher {
    name: Option<String>,
    value: Option<String>,
    is_regex: Option<bool>,
    is_equal: Option<bool>,
}

/// `postableSilence`, read with Go's rules (see `decode`): times are parsed
/// while reading, so a bad one is a 400 parse error as in Alertmanager.
#[derive(Default)]
struct PostableSilence {
    id: Option<String>,
    matchers: Option<Vec<PostableMatcher>>,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    created_by: Option<String>,
    comment: Option<String>,
    annotations: Option<Annotations>,
}

const INTO_STRING: &str = "Go value of type string";

/// A `*string` field: `null` clears it.
fn ptr_string(v: GoStr<'_>) -> Option<String> {
    match v {
        GoStr::Str(s) => Some(s.into_owned()),
        GoStr::Null => None,
    }
}

fn ptr_time<E: de::Error>(v: GoStr<'_>) -> Result<Option<Timestamp>, E> {
    match v {
        GoStr::Null => Ok(None),
        // `strfmt.ParseDateTime("")` is the Unix epoch: a start long past.
        GoStr::Str(s) if s.is_empty() => Ok(Some(Timestamp::UNIX_EPOCH)),
        GoStr::Str(s) => decode::parse_datetime(&s)
            .map(Some)
            .ok_or_else(|| E::custom(decode::datetime_error(&s))),
    }
}

impl<'de> Deserialize<'de> for PostableMatcher {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PostableMatcher;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a matcher")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut p = PostableMatcher::default();
                while let Some(k) = m.next_key_seed(StrSeed(INTO_STRING))? {
                    let GoStr::Str(k) = k else { continue };
                    match decode::field(&k, &["name", "value", "isRegex", "isEqual"]) {
                        Some(0) => p.name = ptr_string(m.next_value_seed(StrSeed(INTO_STRING))?),
                        Some(1) => p.value = ptr_string(m.next_value_seed(StrSeed(INTO_STRING))?),
                        Some(2) => {
                            p.is_regex = m.next_value_seed(BoolSeed(
                                "Go struct field Matcher.isRegex of type bool",
                            ))?
                        }
                        Some(_) => {
                            p.is_equal = m.next_value_seed(BoolSeed(
                                "Go struct field Matcher.isEqual of type bool",
                            ))?
                        }
                        None => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// `models.Matchers`: `null` is none; a `null` element makes Alertmanager
/// 0.33.1 panic (no answer at all), Herald refuses the request.
fn matchers<'de, A: MapAccess<'de>>(m: &mut A) -> Result<Option<Vec<PostableMatcher>>, A::Error> {
    let got: Option<Vec<Option<PostableMatcher>>> = m.next_value()?;
    got.map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, m)| m.ok_or_else(|| de::Error::custom(format!("matcher {i} is null"))))
            .collect()
    })
    .transpose()
}

impl<'de> Deserialize<'de> for PostableSilence {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PostableSilence;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a silence")
            }
            /// `null` is an empty silence, which fails validation.
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(PostableSilence::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut p = PostableSilence::default();
                let mut annotations = None;
                const FIELDS: [&str; 7] = [
                    "id",
                    "matchers",
                    "startsAt",
                    "endsAt",
                    "createdBy",
                    "comment",
                    "annotations",
                ];
                while let Some(k) = m.next_key_seed(StrSeed(INTO_STRING))? {
                    let GoStr::Str(k) = k else { continue };
                    match decode::field(&k, &FIELDS) {
                        // A plain string: `null` leaves it as it was.
                        Some(0) => {
                            if let GoStr::Str(v) =
                                m.next_value_seed(StrSeed("Go struct field .id of type string"))?
                            {
                                p.id = Some(v.into_owned());
                            }
                        }
                        Some(1) => p.matchers = matchers(&mut m)?,
                        Some(2) => {
                            p.starts_at = ptr_time(m.next_value_seed(StrSeed(INTO_STRING))?)?
                        }
                        Some(3) => p.ends_at = ptr_time(m.next_value_seed(StrSeed(INTO_STRING))?)?,
                        Some(4) => {
                            p.created_by = ptr_string(m.next_value_seed(StrSeed(
                                "Go struct field Silence.createdBy of type string",
                            ))?)
                        }
                        Some(5) => {
                            p.comment = ptr_string(m.next_value_seed(StrSeed(
                                "Go struct field Silence.comment of type string",
                            ))?)
                        }
                        Some(_) => merge(
                            &mut annotations,
                            m.next_value_seed(PairsSeed("Silence.annotations"))?,
                        ),
                        None => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                p.annotations = annotations.map(|pairs| {
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                });
                Ok(p)
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, _: S) -> Result<Self::Value, S::Error> {
                Err(decode::type_error(
                    de::Unexpected::Seq,
                    "Go value of type models.PostableSilence",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) async fn post_silences(State(s): State<ApiState>, req: Request) -> Response {
    let max_bytes = s.app.settings.input_limits.max_request_body_bytes;
    let body = match decode::read_body(req, max_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let value = match decode::first_value(&body, "silence") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p: PostableSilence = match decode::parse(&value, "silence") {
        Ok(p) => p,
        Err(r) => return r,
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
    let (Some(starts_at), Some(ends_at)) = (p.starts_at, p.ends_at) else {
        return schema_error(602, "startsAt in body is required".into());
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
