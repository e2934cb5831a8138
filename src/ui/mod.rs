//! The web UI: server-rendered pages (handlebars, `templates/ui/`, built
//! into the binary) to see alerts and to create, edit and expire silences.
//! It works without JavaScript; the only script sends Alertmanager's
//! `#/...` links from notifications on to the matching page.
//!
//! Every page is built from the same core functions as the API (the alert
//! query and groups of `api::alerts`, `Silences`, the routing tree), so the
//! UI cannot disagree with `amtool`. Form posts carry a CSRF token bound to
//! a per-browser cookie; values are escaped by handlebars.

mod csrf;
mod notifications;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use handlebars::Handlebars;
use serde_json::{json, Value};

use crate::app::App;
use crate::matcher::{parse_matchers, MatchType, Matcher, Matchers};
use crate::query::{parse_query, query_groups};
use crate::silence::{api_matcher, matches_filter, Silence, SilenceState};

pub use csrf::Csrf;

/// Groups listed at most, and how many of them show their alerts (the
/// others are one line each, with a link to their alerts); alerts shown per
/// open group. Enough for any incident, small enough that 10,000 alerts
/// stay a page of a few hundred KiB (the benchmark measures it); the
/// summary says how many there are, and the filter narrows them.
const MAX_GROUPS: usize = 500;
const OPEN_GROUPS: usize = 10;
const MAX_ALERTS_PER_GROUP: usize = 25;
/// Silences per page of the silences list: 20k silences made one 17.8 MB
/// page that took seconds to build and more to show.
const SILENCES_PER_PAGE: usize = 500;

/// The compiled page templates and the CSRF secret.
pub struct Ui {
    hb: Handlebars<'static>,
    csrf: Csrf,
}

const TEMPLATES: [(&str, &str); 9] = [
    (
        "layout_head",
        include_str!("../../templates/ui/layout_head.hbs"),
    ),
    (
        "layout_foot",
        include_str!("../../templates/ui/layout_foot.hbs"),
    ),
    ("alerts", include_str!("../../templates/ui/alerts.hbs")),
    ("silences", include_str!("../../templates/ui/silences.hbs")),
    ("silence", include_str!("../../templates/ui/silence.hbs")),
    (
        "silence_form",
        include_str!("../../templates/ui/silence_form.hbs"),
    ),
    ("status", include_str!("../../templates/ui/status.hbs")),
    ("index", include_str!("../../templates/ui/index.hbs")),
    (
        "notifications",
        include_str!("../../templates/ui/notifications.hbs"),
    ),
];

/// The files under `/static/`: name, content type, content. The pages work
/// without the script; it only adds local times and in-place matcher rows.
const STATIC: [(&str, &str, &str); 2] = [
    (
        "herald.css",
        "text/css",
        include_str!("../../templates/ui/herald.css"),
    ),
    (
        "herald.js",
        "text/javascript",
        include_str!("../../templates/ui/herald.js"),
    ),
];

impl Ui {
    pub fn new() -> Result<Ui, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(false);
        for (name, src) in TEMPLATES.iter() {
            hb.register_template_string(name, src)
                .map_err(|e| format!("UI template {name}: {e}"))?;
            if name.starts_with("layout_") {
                hb.register_partial(name, src)
                    .map_err(|e| format!("UI template {name}: {e}"))?;
            }
        }
        Ok(Ui {
            hb,
            csrf: Csrf::new(),
        })
    }

    fn render(&self, name: &str, data: &Value) -> Response {
        match self.hb.render(name, data) {
            Ok(html) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                html,
            )
                .into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering {name}: {e}"),
            )
                .into_response(),
        }
    }
}

/// What the UI's handlers share.
#[derive(Clone)]
struct UiState {
    app: Arc<App>,
    ui: Arc<Ui>,
    /// `--web.route-prefix` without its trailing slash ("" at the root),
    /// for the pages' links.
    prefix: String,
}

/// The UI's routes, to be nested under the route prefix beside the API's.
pub(crate) fn router(app: Arc<App>, prefix: &str) -> Router {
    let ui = Ui::new().unwrap_or_else(|e| {
        // The templates are compiled in: a failure is a build defect.
        panic!("web UI templates: {e}")
    });
    routes().with_state(UiState {
        app,
        ui: Arc::new(ui),
        prefix: prefix.to_string(),
    })
}

fn routes() -> Router<UiState> {
    Router::new()
        .route("/", get(index))
        .route("/static/{file}", get(static_file))
        .route("/alerts", get(alerts_page))
        .route("/silences", get(silences_page))
        .route(
            "/silences/new",
            get(silence_form_page).post(silence_form_post),
        )
        .route("/silences/{id}", get(silence_page))
        .route("/silences/{id}/expire", post(expire_post))
        .route("/status", get(status_page))
        .route("/notifications", get(notifications::notifications_page))
}

/// One line on the status page: this node's place in its cluster.
fn cluster_summary(app: &App) -> String {
    match app.settings.cluster.as_ref().map(|c| c.peer()) {
        None => "disabled (no --cluster.peer or --cluster.listen-address given)".into(),
        Some(None) => "starting".into(),
        Some(Some(p)) => {
            let members = p.peers().len();
            format!(
                "{} as {} ({members} member{}, position {})",
                if p.ready() { "ready" } else { "settling" },
                p.name(),
                if members == 1 { "" } else { "s" },
                p.position()
            )
        }
    }
}

/// What every page template gets: prefix, version, navigation, CSRF token.
struct Page<'a> {
    s: &'a UiState,
    session: csrf::Session,
}

impl<'a> Page<'a> {
    fn new(s: &'a UiState, headers: &HeaderMap) -> Page<'a> {
        Page {
            s,
            session: s.ui.csrf.session(headers),
        }
    }

    fn prefix(&self) -> &str {
        &self.s.prefix
    }

    fn respond(self, template: &str, title: &str, nav: &str, mut data: Value) -> Response {
        let obj = data.as_object_mut().expect("page data is an object");
        obj.insert("prefix".into(), json!(self.s.prefix));
        obj.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        obj.insert("title".into(), json!(title));
        obj.insert(format!("nav_{nav}"), json!(true));
        obj.insert("csrf".into(), json!(self.session.token()));
        let mut resp = self.s.ui.render(template, &data);
        self.session.set_cookie(&mut resp, &self.s.prefix);
        resp
    }
}

async fn index(State(s): State<UiState>) -> Response {
    // The prefix as a JS string literal that cannot close the script.
    let prefix_json = serde_json::to_string(&s.prefix)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    s.ui.render(
        "index",
        &json!({"prefix": s.prefix, "prefix_json": prefix_json}),
    )
}

async fn static_file(Path(file): Path<String>) -> Response {
    let Some((_, kind, body)) = STATIC.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        *body,
    )
        .into_response()
}

fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn alerts_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = Page::new(&s, &headers);
    let pairs = query_pairs(&raw);
    let filter = param(&pairs, "filter").unwrap_or("").trim().to_string();
    let receiver = param(&pairs, "receiver").unwrap_or("").to_string();
    let flag = |k: &str| param(&pairs, k).is_some_and(|v| v == "true" || v == "1");
    let (silenced, inhibited, muted) = (flag("silenced"), flag("inhibited"), flag("muted"));
    let refresh = param(&pairs, "refresh").and_then(|v| v.parse::<u32>().ok());
    // The API's query, built from the form: the same parser, the same
    // errors as `GET /api/v2/alerts`.
    let mut api_query: Vec<(String, String)> = vec![
        ("silenced".into(), silenced.to_string()),
        ("inhibited".into(), inhibited.to_string()),
        ("muted".into(), muted.to_string()),
    ];
    let mut error = None;
    match parse_matchers(&filter) {
        Ok(ms) => api_query.extend(ms.iter().map(|m| ("filter".to_string(), m.to_string()))),
        Err(e) if !filter.is_empty() => error = Some(format!("Bad filter: {e}")),
        Err(_) => {}
    }
    if !receiver.is_empty() {
        api_query.push(("receiver".into(), regex::escape(&receiver)));
    }
    let raw_api = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&api_query)
        .finish();
    let q = match parse_query(Some(raw_api)) {
        Ok(q) => q,
        Err(e) => {
            error.get_or_insert(e);
            parse_query(None).unwrap_or_else(|_| unreachable!("the empty query parses"))
        }
    };
    let app = s.app.clone();
    let now = s.app.settings.clock.now();
    // CPU-heavy with many alerts: on the blocking pool, as the API does.
    let (groups, statuses) =
        match tokio::task::spawn_blocking(move || query_groups(&app, &q, now)).await {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("querying alerts: {e}"),
                )
                    .into_response()
            }
        };
    let alert_count: usize = groups.iter().map(|g| g.alerts.len()).sum();
    let here = view::AlertsLink {
        prefix: page.prefix(),
        filter: &filter,
        receiver: &receiver,
        silenced,
        inhibited,
        muted,
        refresh,
    };
    let shown: Vec<Value> = groups
        .iter()
        .zip(&statuses)
        .take(MAX_GROUPS)
        .enumerate()
        .map(|(i, (g, st))| {
            let shown = if i < OPEN_GROUPS {
                MAX_ALERTS_PER_GROUP
            } else {
                0
            };
            let mut v = view::group(g, st, shown, &here, now);
            if shown > 0 {
                let notified = match last_notified(&s.app, g) {
                    Some(t) => json!({"age": view::age(t, now), "time": view::time(t), "iso": t.to_string()}),
                    None => Value::Null,
                };
                // "Why didn't I get paged?": a group still in its
                // `group_wait` says when it flushes.
                let next = g.next_flush.map(|t| {
                    json!({"in": view::age(now, t), "time": view::time(t), "iso": t.to_string(), "first": !g.has_flushed})
                });
                v.as_object_mut()
                    .expect("object")
                    .insert("next_flush".into(), json!(next));
                v.as_object_mut()
                    .expect("object")
                    .insert("notified".into(), notified);
                v.as_object_mut()
                    .expect("object")
                    .insert("notified_known".into(), json!(true));
            }
            v
        })
        .collect();
    let receivers = receiver_names(&s.app);
    let data = json!({
        "filter": filter,
        "error": error,
        "silenced": silenced, "inhibited": inhibited, "muted": muted,
        "refresh": refresh,
        "receivers": receivers.iter().map(|r| json!({"name": r, "selected": *r == receiver})).collect::<Vec<_>>(),
        "alert_count": alert_count,
        "group_count": groups.len(),
        "shown_groups": shown.len(),
        "truncated": groups.len() > shown.len(),
        "groups": shown,
    });
    page.respond("alerts", "Alerts", "alerts", data)
}

/// When the group was last notified by any integration of its receiver:
/// the notification log's newest entry (a successful notification; the
/// history page has the rest).
fn last_notified(app: &App, g: &crate::dispatch::GroupView) -> Option<jiff::Timestamp> {
    let key = crate::dispatch::group_key(&g.route, &g.labels);
    let runtime = app.runtime();
    let receiver = runtime
        .config
        .config
        .receivers
        .iter()
        .find(|r| r.name == g.receiver)?;
    receiver
        .log_keys()
        .iter()
        .filter_map(|k| app.nflog.peek(&key, k))
        .map(|e| e.timestamp)
        .max()
}

/// The config's receivers, sorted, for the pages' receiver choice.
fn receiver_names(app: &App) -> Vec<String> {
    let mut names: Vec<String> = app
        .runtime()
        .config
        .config
        .receivers
        .iter()
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names
}

fn state_name(st: SilenceState) -> &'static str {
    st.as_str()
}

async fn silences_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = Page::new(&s, &headers);
    let pairs = query_pairs(&raw);
    let state = match param(&pairs, "state") {
        Some("pending") => SilenceState::Pending,
        Some("expired") => SilenceState::Expired,
        _ => SilenceState::Active,
    };
    let filter = param(&pairs, "filter").unwrap_or("").trim().to_string();
    let (matchers, error) = match parse_matchers(&filter) {
        Ok(ms) => (Matchers(ms), None),
        Err(_) if filter.is_empty() => (Matchers::default(), None),
        Err(e) => (Matchers::default(), Some(format!("Bad filter: {e}"))),
    };
    let now = s.app.settings.clock.now();
    let mut all: Vec<Arc<Silence>> = s
        .app
        .silences
        .list()
        .into_iter()
        .filter(|x| matches_filter(x, &matchers))
        .collect();
    let count = |st: SilenceState| all.iter().filter(|x| x.state(now) == st).count();
    let tabs: Vec<Value> = [
        SilenceState::Active,
        SilenceState::Pending,
        SilenceState::Expired,
    ]
    .into_iter()
    .map(|st| {
        json!({
            "name": state_name(st),
            "count": count(st),
            "current": st == state,
            "link": format!("{}/silences?state={}&filter={}", page.prefix(), state_name(st), enc(&filter)),
        })
    })
    .collect();
    all.retain(|x| x.state(now) == state);
    // Soonest to end first; expired ones most recent first.
    all.sort_by(|a, b| match state {
        SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        _ => a.ends_at.cmp(&b.ends_at),
    });
    let pages = all.len().div_ceil(SILENCES_PER_PAGE).max(1);
    let number = param(&pairs, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let from = (number - 1) * SILENCES_PER_PAGE;
    let shown: Vec<Arc<Silence>> = all
        .iter()
        .skip(from)
        .take(SILENCES_PER_PAGE)
        .cloned()
        .collect();
    // Only an active silence mutes anything now.
    let muting = if state == SilenceState::Active {
        match muted_counts(&s.app, &shown, now).await {
            Ok(m) => m,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        }
    } else {
        HashMap::new()
    };
    let silences: Vec<Value> = shown
        .iter()
        .map(|x| {
            let mut v = view::silence(x, page.prefix(), now);
            if state == SilenceState::Active {
                let obj = v.as_object_mut().expect("object");
                let n = muting.get(x.id.as_str()).copied().unwrap_or(0);
                let text = match n {
                    0 => "Mutes no alert now".to_string(),
                    1 => "Mutes 1 alert now".to_string(),
                    n => format!("Mutes {n} alerts now"),
                };
                obj.insert("muting".into(), json!(text));
                obj.insert("muting_link".into(), json!(muting_link(page.prefix(), x)));
            }
            v
        })
        .collect();
    let link = |n: usize| {
        format!(
            "{}/silences?state={}&filter={}&page={n}",
            page.prefix(),
            state_name(state),
            enc(&filter)
        )
    };
    let pager = (pages > 1).then(|| {
        json!({
            "first": from + 1,
            "last": from + silences.len(),
            "total": all.len(),
            "prev": (number > 1).then(|| link(number - 1)),
            "next": (number < pages).then(|| link(number + 1)),
        })
    });
    let data = json!({
        "state": state_name(state),
        "filter": filter,
        "error": error,
        "tabs": tabs,
        "silences": silences,
        "pager": pager,
    });
    page.respond("silences", "Silences", "silences", data)
}

/// How many of the stored alerts each of `shown` mutes now: one pass over
/// the alerts, each asking the silences' per-alert cache (100k alerts are
/// tens of milliseconds, not a regex per silence and alert), on the
/// blocking pool.
async fn muted_counts(
    app: &Arc<App>,
    shown: &[Arc<Silence>],
    now: jiff::Timestamp,
) -> Result<HashMap<String, usize>, String> {
    if shown.is_empty() {
        return Ok(HashMap::new());
    }
    let app = app.clone();
    let mut counts: HashMap<String, usize> = shown.iter().map(|x| (x.id.clone(), 0)).collect();
    tokio::task::spawn_blocking(move || {
        let silences = app.silences.query(now);
        for alert in app.store.snapshot() {
            if alert.resolved_at(now) {
                continue;
            }
            for id in silences.silenced_by_alert(&alert) {
                if let Some(n) = counts.get_mut(&id) {
                    *n += 1;
                }
            }
        }
        counts
    })
    .await
    .map_err(|e| format!("counting silenced alerts: {e}"))
}

/// The alerts page showing what a silence mutes: its matchers as the
/// filter, silenced alerts shown.
fn muting_link(prefix: &str, x: &Silence) -> String {
    let filter: Vec<String> = x.matchers.0.iter().map(|m| m.to_string()).collect();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &filter.join(", "))
        .append_pair("silenced", "true")
        .finish();
    format!("{prefix}/alerts?{q}")
}

async fn silence_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let page = Page::new(&s, &headers);
    let Some(sil) = s.app.silences.get(&id) else {
        return not_found(page, &format!("No silence with id {id}."));
    };
    let now = s.app.settings.clock.now();
    let mut data = view::silence(&sil, page.prefix(), now);
    let matching: Vec<Arc<crate::model::Alert>> = s
        .app
        .store
        .snapshot()
        .into_iter()
        .filter(|a| !a.resolved_at(now) && sil.matches(&a.labels))
        .collect();
    let affected: Vec<Value> = matching
        .iter()
        .take(200)
        .map(|a| view::label_list(&a.labels))
        .collect();
    let obj = data.as_object_mut().expect("object");
    obj.insert("affected_count".into(), json!(matching.len()));
    obj.insert(
        "affected_more".into(),
        json!(matching.len().saturating_sub(affected.len())),
    );
    obj.insert(
        "affected_link".into(),
        json!(muting_link(page.prefix(), &sil)),
    );
    obj.insert("affected".into(), json!(affected));
    obj.insert("updated_at".into(), json!(view::time(sil.updated_at)));
    obj.insert("updated_at_iso".into(), json!(sil.updated_at.to_string()));
    page.respond("silence", "Silence", "silences", data)
}

fn not_found(page: Page<'_>, message: &str) -> Response {
    let mut r = error_page(page, "Not found", message);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

fn error_page(page: Page<'_>, title: &str, message: &str) -> Response {
    page.respond(
        "silences",
        title,
        "silences",
        json!({"state": "active", "error": message, "tabs": [], "silences": []}),
    )
}

/// The silence form's fields, as typed: re-shown on errors and previews.
#[derive(Default)]
struct SilenceForm {
    id: String,
    rows: Vec<(String, MatchType, String)>,
    starts_at: String,
    ends_at: String,
    duration: String,
    created_by: String,
    comment: String,
}

/// Empty rows offered below the matchers, for adding without JavaScript.
const SPARE_ROWS: usize = 3;

fn render_form(
    page: Page<'_>,
    form: &SilenceForm,
    errors: &BTreeMap<String, String>,
    row_errors: &BTreeMap<usize, String>,
    preview: Option<Vec<Value>>,
) -> Response {
    let mut rows: Vec<Value> = form
        .rows
        .iter()
        .enumerate()
        .map(|(i, (n, k, v))| {
            json!({
                "name": n, "value": v,
                "eq": *k == MatchType::Equal, "ne": *k == MatchType::NotEqual,
                "re": *k == MatchType::Regexp, "nre": *k == MatchType::NotRegexp,
                "error": row_errors.get(&i),
            })
        })
        .collect();
    rows.extend((0..SPARE_ROWS).map(|_| json!({"eq": true})));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let data = json!({
        "editing": (!form.id.is_empty()).then_some(&form.id),
        "rows": rows,
        "starts_at": form.starts_at,
        "ends_at": form.ends_at,
        "duration": form.duration,
        "created_by": form.created_by,
        "comment": form.comment,
        "errors": errors,
        "previewed": preview.is_some(),
        "preview_count": preview.as_ref().map_or(0, Vec::len),
        "preview": preview.unwrap_or_default(),
    });
    let mut r = page.respond("silence_form", "Silence", "silences", data);
    *r.status_mut() = status;
    r
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn silence_form_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = Page::new(&s, &headers);
    let pairs = query_pairs(&raw);
    let now = s.app.settings.clock.now();
    let mut form = SilenceForm {
        starts_at: view::form_time(now),
        duration: "2h".into(),
        created_by: cookie(&headers, "herald_creator")
            .map(|c| {
                url::form_urlencoded::parse(format!("c={c}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut errors = BTreeMap::new();
    // `?id=` edits a silence, `?recreate=` copies an expired one, `?filter=`
    // (Alertmanager's link format) pre-fills the matchers.
    let edit = param(&pairs, "id").map(|id| (id, true));
    let copy = param(&pairs, "recreate").map(|id| (id, false));
    if let Some((id, editing)) = edit.or(copy) {
        match s.app.silences.get(id) {
            Some(sil) => {
                form.rows = sil
                    .matchers
                    .0
                    .iter()
                    .map(|m| (m.name.to_string(), m.kind, m.value.to_string()))
                    .collect();
                form.comment = sil.comment.clone();
                if form.created_by.is_empty() {
                    form.created_by = sil.created_by.clone();
                }
                if editing {
                    form.id = sil.id.clone();
                    form.starts_at = view::form_time(sil.starts_at);
                    form.ends_at = view::form_time(sil.ends_at);
                    form.duration.clear();
                }
            }
            None => {
                errors.insert("form".into(), format!("No silence with id {id}."));
            }
        }
    } else if let Some(f) = param(&pairs, "filter") {
        match parse_matchers(f) {
            Ok(ms) => {
                form.rows = ms
                    .iter()
                    .map(|m| (m.name.to_string(), m.kind, m.value.to_string()))
                    .collect()
            }
            Err(e) => {
                errors.insert("matchers".into(), format!("Bad filter in the link: {e}"));
            }
        }
    }
    render_form(page, &form, &errors, &BTreeMap::new(), None)
}

/// A name typed as the UTF-8 matcher syntax writes it (`"service name"`)
/// is that name; anything else is taken as typed.
fn unquote_name(name: &str) -> String {
    if name.len() >= 2 && name.starts_with('"') && name.ends_with('"') {
        if let Some(n) =
            crate::matcher::gostr::unquote(name).and_then(|b| String::from_utf8(b).ok())
        {
            return n;
        }
    }
    name.to_string()
}

fn parse_op(op: &str) -> MatchType {
    match op {
        "!=" => MatchType::NotEqual,
        "=~" => MatchType::Regexp,
        "!~" => MatchType::NotRegexp,
        _ => MatchType::Equal,
    }
}

async fn silence_form_post(State(s): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    let page = Page::new(&s, &headers);
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| param(&fields, k).unwrap_or("").to_string();
    if !page.session.verify(&get("csrf")) {
        return csrf_failure();
    }
    let mut form = SilenceForm {
        id: get("id"),
        starts_at: get("starts_at"),
        ends_at: get("ends_at"),
        duration: get("duration").trim().to_string(),
        created_by: get("created_by").trim().to_string(),
        comment: get("comment").trim().to_string(),
        ..Default::default()
    };
    // Rows are numbered m0, m1, ...; the script removes rows in place, so
    // the numbers may have gaps, and rows keep their numbered order.
    let mut numbers: Vec<usize> = fields
        .iter()
        .filter_map(|(k, _)| k.strip_prefix('m')?.strip_suffix("_name")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    for i in numbers {
        let name = get(&format!("m{i}_name"));
        let value = get(&format!("m{i}_value"));
        if name.trim().is_empty() && value.is_empty() {
            continue;
        }
        form.rows.push((
            unquote_name(name.trim()),
            parse_op(&get(&format!("m{i}_op"))),
            value,
        ));
    }
    let now = s.app.settings.clock.now();
    let mut errors = BTreeMap::new();
    let mut row_errors = BTreeMap::new();
    let mut matchers: Vec<Matcher> = Vec::new();
    for (i, (name, kind, value)) in form.rows.iter().enumerate() {
        let (eq, re) = match kind {
            MatchType::Equal => (true, false),
            MatchType::NotEqual => (false, false),
            MatchType::Regexp => (true, true),
            MatchType::NotRegexp => (false, true),
        };
        match api_matcher(name, value, re, eq) {
            Ok(m) => matchers.push(m),
            Err(e) => {
                row_errors.insert(i, e);
            }
        }
    }
    if form.rows.is_empty() {
        errors.insert("matchers".into(), "Add at least one matcher.".into());
    }
    let starts_at = match view::parse_form_time(&form.starts_at) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.insert("starts_at".into(), e);
            None
        }
    };
    let ends_at = if !form.duration.is_empty() {
        match crate::duration::PromDuration::parse(&form.duration) {
            Ok(d) => starts_at.and_then(|t| t.checked_add(d.0).ok()),
            Err(e) => {
                errors.insert("ends_at".into(), format!("Bad duration: {e}"));
                None
            }
        }
    } else {
        match view::parse_form_time(&form.ends_at) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.insert("ends_at".into(), e);
                None
            }
        }
    };
    if let (Some(a), Some(b)) = (starts_at, ends_at) {
        if let Err(e) = crate::silence::check_times(a, b, now) {
            errors.insert("ends_at".into(), e.to_string());
        }
    }
    if form.created_by.is_empty() {
        errors.insert("created_by".into(), "Say who creates the silence.".into());
    }
    if form.comment.is_empty() {
        errors.insert("comment".into(), "Say why (a ticket, the incident).".into());
    }
    if !row_errors.is_empty() {
        errors.insert(
            "matchers".into(),
            "Some matchers are not valid (see above).".into(),
        );
    }
    let preview = get("action") == "preview";
    if preview || !errors.is_empty() {
        let alerts = (row_errors.is_empty() && !matchers.is_empty()).then(|| {
            let ms = Matchers(matchers.clone());
            s.app
                .store
                .snapshot()
                .iter()
                .filter(|a| a.ends_at == crate::model::GO_ZERO_TIME || a.ends_at > now)
                .filter(|a| ms.matches(&a.labels))
                .take(200)
                .map(|a| view::label_list(&a.labels))
                .collect::<Vec<_>>()
        });
        if preview {
            // A preview is not a failed save: no error status for it.
            let mut r = render_form(page, &form, &errors, &row_errors, alerts);
            *r.status_mut() = StatusCode::OK;
            return r;
        }
        return render_form(page, &form, &errors, &row_errors, alerts);
    }
    let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
        return render_form(page, &form, &errors, &row_errors, None);
    };
    let silence = Silence {
        id: form.id.clone(),
        matchers: Matchers(matchers),
        starts_at,
        ends_at,
        updated_at: now,
        created_by: form.created_by.clone(),
        comment: form.comment.clone(),
        // The form has no annotations: an edit keeps the silence's own.
        annotations: s
            .app
            .silences
            .get(&form.id)
            .map(|old| old.annotations.clone())
            .unwrap_or_default(),
    };
    match s.app.silences.set(silence, now).await {
        Ok(id) => {
            let mut r = Redirect::to(&format!("{}/silences/{id}", s.prefix)).into_response();
            *r.status_mut() = StatusCode::SEE_OTHER;
            // Remembered for the next silence this browser creates.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "herald_creator={}; Path={}/; Max-Age=31536000; SameSite=Strict",
                enc(&form.created_by),
                s.prefix
            )) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        // The form was fine: the answer is the server's failure, the
        // input kept for sending again.
        Err(crate::silence::SilenceError::Storage(e)) => {
            let (_, _, msg) = crate::api::storage_failure(&e);
            errors.insert("form".into(), format!("Not saved: {msg}"));
            let r = render_form(page, &form, &errors, &row_errors, None);
            crate::api::with_storage_status(r, &e)
        }
        Err(e) => {
            errors.insert("form".into(), format!("Not saved: {e}"));
            render_form(page, &form, &errors, &row_errors, None)
        }
    }
}

fn csrf_failure() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "The form's security token is missing or stale (Herald restarted, or the post came from another site). Go back, reload the page and try again.\n",
    )
        .into_response()
}

async fn expire_post(
    State(s): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let page = Page::new(&s, &headers);
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !page.session.verify(&token) {
        return csrf_failure();
    }
    match s.app.silences.expire(&id, s.app.settings.clock.now()).await {
        Ok(()) => {
            let mut r = Redirect::to(&format!("{}/silences/{id}", s.prefix)).into_response();
            *r.status_mut() = StatusCode::SEE_OTHER;
            r
        }
        Err(crate::silence::SilenceError::Storage(e)) => {
            let (_, _, msg) = crate::api::storage_failure(&e);
            let r = error_page(page, "Not saved", &format!("Could not expire {id}: {msg}"));
            crate::api::with_storage_status(r, &e)
        }
        Err(e) => not_found(page, &format!("Could not expire {id}: {e}")),
    }
}

async fn status_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = Page::new(&s, &headers);
    let pairs = query_pairs(&raw);
    let rt = s.app.runtime();
    let labels = param(&pairs, "labels").unwrap_or("").trim().to_string();
    let (mut matched, mut labels_error) = (Vec::new(), None);
    if !labels.is_empty() {
        match parse_matchers(&labels) {
            Ok(ms) if ms.iter().all(|m| m.kind == MatchType::Equal) => {
                let ls = crate::model::LabelSet::from_strs(
                    ms.iter().map(|m| (m.name.as_ref(), m.value.as_ref())),
                );
                matched = rt
                    .route
                    .matching(&ls)
                    .iter()
                    .map(|r| r.opts.receiver.clone())
                    .collect();
            }
            Ok(_) => labels_error = Some("Give labels as name=\"value\" (no operators).".into()),
            Err(e) => labels_error = Some(format!("Bad labels: {e}")),
        }
    }
    let now = s.app.settings.clock.now();
    let data = json!({
        "started": view::time(s.app.started),
        "uptime": view::age(s.app.started, now),
        "cluster": cluster_summary(&s.app),
        "external_url": s.app.settings.external_url,
        "labels": labels,
        "labels_error": labels_error,
        "tested": !labels.is_empty() && labels_error.is_none(),
        "matched": matched,
        "tree": view::route_tree(&rt.route),
        "config": rt.config.to_yaml(),
    });
    page.respond("status", "Status", "status", data)
}
