//! HTTP API v2 (`api/v2`) and the operational endpoints, under
//! `--web.route-prefix`. Answers are shaped and ordered like go-swagger's,
//! and JSON is written with Go's escaping, so clients and differential tests
//! see what Alertmanager would send.

pub mod alerts;
mod silences;
mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::app::App;

/// Largest request body accepted (64 MiB, about 100k alerts).
const MAX_BODY_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct ApiState {
    pub app: Arc<App>,
    pub get_limit: Arc<Semaphore>,
    pub get_concurrency: usize,
    /// The web UI's templates and CSRF key.
    pub ui: Arc<crate::ui::Ui>,
    /// `--web.route-prefix` without its trailing slash ("" at the root),
    /// for the UI's links.
    pub prefix: String,
}

/// A JSON answer written with Go's escaping.
pub(crate) fn json_response<T: serde::Serialize + ?Sized>(code: StatusCode, v: &T) -> Response {
    let mut body = crate::gojson::to_vec(v);
    // go-swagger writes with json.Encoder, which ends with a newline.
    body.push(b'\n');
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// go-swagger's answer when a request breaks the schema (422, checked before
/// Alertmanager's handler runs); unlike handler answers it has no trailing
/// newline.
pub(crate) fn schema_error(code: u32, message: String) -> Response {
    #[derive(serde::Serialize)]
    struct Body {
        code: u32,
        message: String,
    }
    let body = crate::gojson::to_vec(&Body { code, message });
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// API v2 error bodies are a bare JSON string.
pub(crate) fn error_response(code: StatusCode, msg: &str) -> Response {
    json_response(code, msg)
}

pub fn router(
    app: Arc<App>,
    route_prefix: &str,
    get_concurrency: usize,
    timeout: Option<Duration>,
) -> Router {
    let prefix = route_prefix.trim_end_matches('/').to_string();
    let state = ApiState {
        app,
        get_limit: Arc::new(Semaphore::new(get_concurrency.max(1))),
        get_concurrency: get_concurrency.max(1),
        ui: Arc::new(crate::ui::Ui::new().unwrap_or_else(|e| {
            // The templates are compiled in: a failure is a build defect.
            panic!("web UI templates: {e}")
        })),
        prefix: prefix.clone(),
    };
    let v2 = Router::new()
        .route("/alerts", get(alerts::get_alerts).post(alerts::post_alerts))
        .route("/alerts/groups", get(alerts::get_groups))
        .route("/status", get(status::get_status))
        .route("/receivers", get(status::get_receivers))
        .route(
            "/silences",
            get(silences::get_silences).post(silences::post_silences),
        )
        .route(
            "/silence/{id}",
            get(silences::get_silence).delete(silences::delete_silence),
        )
        .layer(middleware::from_fn(api_headers))
        // Alertmanager reads request bodies without a limit; axum's default
        // of 2 MiB would refuse a 3000-alert batch from a script.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    let mut inner = Router::new()
        .nest("/api/v2", v2)
        .route("/api/v1/{*rest}", any(gone))
        .route("/-/healthy", get(ok_text).head(ok_text))
        .route("/-/ready", get(ok_text).head(ok_text))
        .route("/-/reload", post(status::reload))
        .route("/metrics", get(metrics))
        .merge(crate::ui::routes())
        .layer(middleware::from_fn_with_state(state.clone(), limit_gets))
        .layer(middleware::from_fn_with_state(state.clone(), instrument))
        .with_state(state);
    if let Some(t) = timeout {
        inner = inner.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            t,
        ));
    }
    if prefix.is_empty() {
        inner
    } else {
        // "<prefix>/" is where Alertmanager's links point (with #/... after
        // it): on to the index page, which keeps the fragment.
        let index = prefix.clone();
        Router::new().nest(&prefix, inner).route(
            &format!("{prefix}/"),
            get(move || async move { axum::response::Redirect::permanent(&index) }),
        )
    }
}

async fn ok_text() -> &'static str {
    "OK"
}

/// Alertmanager 0.27 removed API v1; clients get 410 Gone with a pointer.
async fn gone() -> Response {
    (StatusCode::GONE, "The Alertmanager API v1 was deprecated in version 0.16.0 and is removed as of version 0.27.0 - please use the equivalent route in the v2 API\n")
        .into_response()
}

async fn metrics(State(s): State<ApiState>) -> Response {
    // Alert counts are computed at scrape time, like Alertmanager's
    // collector: suppressed means silenced or inhibited now.
    let rt = s.app.runtime();
    let now = s.app.settings.clock.now();
    let (mut active, mut suppressed) = (0i64, 0i64);
    let silences = s.app.silences.query(now);
    for a in s
        .app
        .store
        .snapshot()
        .iter()
        .filter(|a| !a.resolved_at(now))
    {
        if !silences.silenced_by(&a.labels).is_empty()
            || rt.inhibitor.inhibited_by(&a.labels, now).is_some()
        {
            suppressed += 1;
        } else {
            active += 1;
        }
    }
    s.app.metrics.set_alert_counts(active, suppressed, 0);
    s.app
        .metrics
        .set_silence_counts(&s.app.silences.count_by_state(now));
    if let Some(p) = s.app.settings.cluster.as_ref().and_then(|c| c.peer()) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = p.metrics();
        s.app.metrics.set_cluster(&crate::metrics::ClusterSample {
            members: p.peers().len(),
            failed: p.failed_peers(),
            position: p.position(),
            health: m.suspects.load(Relaxed),
            received: m.received.load(Relaxed),
            sent: m.sent.load(Relaxed),
            invalid: m.invalid.load(Relaxed),
            pushpull: m.pushpull.load(Relaxed),
            tls: p.tls_enabled().then(|| m.tls.clone()),
        });
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        s.app.metrics.render(),
    )
        .into_response()
}

/// Alertmanager's API answers allow any origin and must not be cached.
async fn api_headers(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Date"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `--web.get-concurrency`: GETs beyond the limit are refused with 503
/// instead of queueing, as in Alertmanager.
async fn limit_gets(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    match s.get_limit.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Limit of concurrent GET requests reached ({}), try again later.\n",
                s.get_concurrency
            ),
        )
            .into_response(),
    }
}

async fn instrument(State(s): State<ApiState>, req: Request<Body>, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let size = axum::body::HttpBody::size_hint(resp.body()).exact();
    s.app
        .metrics
        .observe_http(&handler, &method, started.elapsed(), size);
    resp
}
