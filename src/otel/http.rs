//! The server side of tracing (Alertmanager's `tracing.Middleware` with the
//! API handlers' own spans): every request to the API and the operational
//! endpoints gets a server span `<METHOD> <path>` that joins the caller's
//! `traceparent`, and an API v2 request also the handler's span
//! (`api.postAlertsHandler`, ...). The handler runs with that span as the
//! current context, so the dispatcher's spans for posted alerts are its
//! children.

use axum::extract::{OriginalUri, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;

/// The handler span Alertmanager starts for an API v2 route.
fn handler_name(method: &Method, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v2")?;
    Some(match (method.as_str(), rest) {
        ("GET", "/status") => "api.getStatusHandler",
        ("GET", "/receivers") => "api.getReceiversHandler",
        ("GET", "/alerts") => "api.getAlertsHandler",
        ("POST", "/alerts") => "api.postAlertsHandler",
        ("GET", "/alerts/groups") => "api.getAlertGroupsHandler",
        ("GET", "/silences") => "api.getSilencesHandler",
        ("POST", "/silences") => "api.postSilencesHandler",
        ("GET", p) if p.starts_with("/silence/") => "api.getSilenceHandler",
        ("DELETE", p) if p.starts_with("/silence/") => "api.deleteSilenceHandler",
        _ => return None,
    })
}

pub(crate) async fn server_spans(req: Request, next: Next) -> Response {
    if !super::enabled() {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // The path as the client sent it, route prefix included (`r.URL.Path`).
    let full = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let name = format!("{method} {full}");
    let parent = super::extract(req.headers());
    let server = super::start_named(
        "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        name,
        SpanKind::Server,
        &parent,
        || {
            vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("url.path", full.clone()),
            ]
        },
    );
    let handler = handler_name(&method, req.uri().path()).map(|n| {
        super::start(
            "github.com/prometheus/alertmanager/api/v2",
            n,
            SpanKind::Internal,
            server.context(),
            Vec::new,
        )
    });
    let cx = handler
        .as_ref()
        .map_or_else(|| server.context().clone(), |h| h.context().clone());
    let resp = next.run(req).with_context(cx).await;
    let code = resp.status();
    if let Some(h) = handler {
        if !code.is_success() {
            h.error(code.to_string());
        }
        h.end();
    }
    server.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(code.as_u16()),
    ));
    if code.is_server_error() {
        server.error(code.to_string());
    }
    server.end();
    resp
}
