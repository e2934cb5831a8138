//! HTTP API v2 (`api/v2`) and the operational endpoints, under
//! `--web.route-prefix`. Answers are shaped and ordered like go-swagger's,
//! and JSON is written with Go's escaping, so clients and differential tests
//! see what Alertmanager would send.

mod alerts;
mod decode;
mod history;
mod silences;
mod status;
mod stream;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use crate::app::App;
use crate::write_error::WriteError;

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) app: Arc<App>,
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

/// How long a client should wait before retrying a change that met a
/// passing storage failure: long enough for an operator's cleanup or a
/// released lock, short enough that Prometheus' next resend (which ignores
/// the header) and an impatient amtool user are not kept waiting for long.
const STORAGE_RETRY_AFTER_SECS: u64 = 5;

/// How every endpoint (and the UI) answers a change that did not reach the
/// database: the server's failure, never the input's. 503 with
/// `Retry-After` when the same request can succeed later (a full disk, an
/// I/O error, a busy database), 500 otherwise; the message names storage
/// and says that nothing was stored, so a client knows to send it again.
pub(crate) fn storage_failure(e: &WriteError) -> (StatusCode, Option<HeaderValue>, String) {
    if e.retryable() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(HeaderValue::from(STORAGE_RETRY_AFTER_SECS)),
            format!("storage unavailable: {e}; nothing was stored, retry later"),
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("storage failed: {e}; nothing was stored"),
        )
    }
}

/// Sets a storage failure's status and `Retry-After` on a rendered answer.
pub(crate) fn with_storage_status(mut r: Response, e: &WriteError) -> Response {
    let (code, retry_after, _) = storage_failure(e);
    *r.status_mut() = code;
    if let Some(v) = retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// API v2 answers a storage failure with its message as the usual bare
/// JSON string.
impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        let (code, _, msg) = storage_failure(&self);
        with_storage_status(error_response(code, &msg), &self)
    }
}

/// API v2 and the operational endpoints (`/-/healthy`, `/-/reload`,
/// `/metrics`, ...), to be nested under the route prefix beside the UI's.
pub(crate) fn router(app: Arc<App>) -> Router {
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
        // Alertmanager reads request bodies without a limit; the POST
        // handlers read theirs under `--web.max-request-body-bytes`.
        .layer(axum::extract::DefaultBodyLimit::disable());
    // Herald's own endpoints, outside Alertmanager's v2 namespace.
    let herald = Router::new()
        .route("/notifications", get(history::get_notifications))
        .layer(middleware::from_fn(api_headers));
    Router::new()
        .nest("/api/v2", v2)
        .nest("/api/herald/v1", herald)
        .route("/api/v1/{*rest}", any(gone))
        .route("/-/healthy", get(ok_text).head(ok_text))
        .route("/-/ready", get(ok_text).head(ok_text))
        .route("/-/reload", post(status::reload))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(crate::otel::server_spans))
        .with_state(ApiState { app })
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
        if silences.is_alert_silenced(a) || rt.inhibitor.inhibited_by(&a.labels, now).is_some() {
            suppressed += 1;
        } else {
            active += 1;
        }
    }
    s.app.metrics.set_alert_counts(active, suppressed, 0);
    s.app
        .metrics
        .set_silence_counts(&s.app.silences.count_by_state(now));
    s.app
        .metrics
        .set_storage_write_failures(&s.app.storage.write_failures());
    if let Some(p) = s.app.settings.cluster.as_ref().and_then(|c| c.peer()) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = p.metrics();
        s.app.metrics.set_cluster(&crate::metrics::ClusterSample {
            members: p.peers().len(),
            failed: p.failed_peers(),
            position: p.position(),
            health: m.health.load(Relaxed),
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

#[cfg(test)]
mod storage_failure_tests {
    use super::*;

    #[test]
    fn a_passing_failure_is_503_with_retry_after_the_rest_500() {
        for e in [
            WriteError::DiskFull,
            WriteError::Io("disk I/O error".into()),
            WriteError::Busy("database is locked".into()),
        ] {
            let r = e.clone().into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
            assert_eq!(r.headers()[header::RETRY_AFTER], "5", "{e}");
            assert!(storage_failure(&e).2.starts_with("storage unavailable: "));
        }
        for e in [WriteError::Stopped, WriteError::Failed("malformed".into())] {
            let r = e.clone().into_response();
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{e}");
            assert!(r.headers().get(header::RETRY_AFTER).is_none(), "{e}");
            assert!(storage_failure(&e).2.starts_with("storage failed: "));
        }
    }
}
