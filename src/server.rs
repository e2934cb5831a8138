//! Herald's HTTP server: the API's and the web UI's routers side by side
//! under `--web.route-prefix`, with what every route shares: the GET
//! concurrency limit, the HTTP metrics and the request timeout. Composing
//! them here keeps `api` and `ui` independent of each other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use crate::app::App;

/// What the shared layers need.
#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    get_limit: Arc<Semaphore>,
    get_concurrency: usize,
}

/// Every route Herald serves. `route_prefix` is `--web.route-prefix`;
/// `get_concurrency` is `--web.get-concurrency` (at least 1); `timeout` is
/// `--web.timeout` (none when zero).
pub fn router(
    app: Arc<App>,
    route_prefix: &str,
    get_concurrency: usize,
    timeout: Option<Duration>,
) -> Router {
    let prefix = route_prefix.trim_end_matches('/').to_string();
    let shared = Shared {
        app: app.clone(),
        get_limit: Arc::new(Semaphore::new(get_concurrency.max(1))),
        get_concurrency: get_concurrency.max(1),
    };
    let mut inner = crate::api::router(app.clone())
        .merge(crate::ui::router(app, &prefix))
        .layer(middleware::from_fn_with_state(shared.clone(), limit_gets))
        .layer(middleware::from_fn_with_state(shared, instrument));
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

/// `--web.get-concurrency`: GETs beyond the limit are refused with 503
/// instead of queueing, as in Alertmanager.
async fn limit_gets(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    match s.get_limit.clone().try_acquire_owned() {
        Ok(_permit) => {
            let metrics = &s.app.metrics;
            metrics.get_in_flight(1);
            // Decremented when the request ends or is dropped (a client
            // that hangs up, a timeout).
            struct InFlight<'a>(&'a crate::metrics::Metrics);
            impl Drop for InFlight<'_> {
                fn drop(&mut self) {
                    self.0.get_in_flight(-1);
                }
            }
            let _in_flight = InFlight(metrics);
            next.run(req).await
        }
        Err(_) => {
            s.app.metrics.get_limit_exceeded();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Limit of concurrent GET requests reached ({}), try again later.\n",
                    s.get_concurrency
                ),
            )
                .into_response()
        }
    }
}

async fn instrument(State(s): State<Shared>, req: Request<Body>, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let size = axum::body::HttpBody::size_hint(resp.body()).exact();
    s.app.metrics.observe_http(
        &handler,
        &method,
        resp.status().as_u16(),
        started.elapsed(),
        size,
    );
    resp
}
