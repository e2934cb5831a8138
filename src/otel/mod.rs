//! The top-level `tracing:` block (Alertmanager's `tracing` package): spans
//! of the notification path exported over OTLP, by gRPC or HTTP/protobuf.
//!
//! As in Alertmanager the tracer provider is process-wide: the code that
//! starts spans (API, dispatcher, notify stages, the HTTP request of a
//! notifier) asks this module, and a reload swaps the provider underneath.
//! While no `tracing:` block is configured, starting a span is one atomic
//! load and nothing is allocated.
//!
//! The module is named `otel` because `tracing` is the crate Herald logs with.

mod config;
mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

pub use config::{ClientType, HeaderValues, TracingConfig};
pub(crate) use http::server_spans;

/// Set while a provider is installed: spans are only built then.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The installed provider; read without a lock by every span start.
static PROVIDER: arc_swap::ArcSwapOption<SdkTracerProvider> =
    arc_swap::ArcSwapOption::const_empty();

/// Alertmanager's `service.name`, so trace backends group Herald's spans
/// with the Alertmanagers it replaces.
const SERVICE_NAME: &str = "alertmanager";

/// How long a shut-down provider may take to send the spans it still holds
/// (Alertmanager's `shutdownFunc` waits five seconds).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("failed to build a new tracer provider: {0}")]
    Build(String),
}

/// Installs, replaces or removes the tracer provider for the config's
/// `tracing:` block (`tracing.Manager.ApplyConfig`). An unchanged block
/// keeps the running provider, unless it has TLS settings: their files may
/// have changed on disk, so the exporter is rebuilt as Alertmanager does.
/// Must run inside the tokio runtime (the exporters' clients need it).
pub struct Manager {
    applied: Mutex<Option<TracingConfig>>,
}

impl Default for Manager {
    fn default() -> Self {
        Self::new()
    }
}

impl Manager {
    pub fn new() -> Manager {
        Manager {
            applied: Mutex::new(None),
        }
    }

    pub fn apply(
        &self,
        cfg: Option<&TracingConfig>,
        dir: &std::path::Path,
    ) -> Result<(), OtelError> {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let unchanged = applied.as_ref() == cfg;
        if unchanged
            && cfg.is_none_or(|c| {
                c.tls_config
                    .as_ref()
                    .is_none_or(|t| *t == Default::default())
            })
        {
            return Ok(());
        }
        let Some(cfg) = cfg else {
            ENABLED.store(false, Ordering::Release);
            let old = take_provider();
            shutdown_in_background(old);
            *applied = None;
            tracing::info!("Tracing provider uninstalled.");
            return Ok(());
        };
        // Built before the old one goes, so tracing stays available
        // throughout the reload.
        let provider = build_provider(cfg, dir)?;
        let old = PROVIDER.swap(Some(std::sync::Arc::new(provider)));
        ENABLED.store(true, Ordering::Release);
        shutdown_in_background(old);
        *applied = Some(cfg.clone());
        tracing::info!("Successfully installed a new tracer provider.");
        Ok(())
    }

    /// Stops tracing and sends the spans still buffered (at shutdown, after
    /// the last flush).
    pub async fn stop(&self) {
        ENABLED.store(false, Ordering::Release);
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(p) = take_provider() {
            shutdown(p).await;
            tracing::info!("Tracing manager stopped");
        }
    }
}

fn take_provider() -> Option<std::sync::Arc<SdkTracerProvider>> {
    PROVIDER.swap(None)
}

fn shutdown_in_background(p: Option<std::sync::Arc<SdkTracerProvider>>) {
    if let Some(p) = p {
        tokio::spawn(shutdown(p));
    }
}

/// The SDK's shutdown blocks until the exporter has sent what it holds,
/// so it runs off the async worker threads.
async fn shutdown(p: std::sync::Arc<SdkTracerProvider>) {
    let done = tokio::task::spawn_blocking(move || p.shutdown_with_timeout(SHUTDOWN_TIMEOUT)).await;
    match done {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => tracing::warn!(err = %e, "Failed to shut down the previous tracer provider"),
    }
}

fn build_provider(
    cfg: &TracingConfig,
    dir: &std::path::Path,
) -> Result<SdkTracerProvider, OtelError> {
    let exporter = build_exporter(cfg, dir)?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", SERVICE_NAME),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        ])
        .build();
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.sampling_fraction,
        ))))
        .with_resource(resource)
        .build())
}

/// Go's exporters take `host:port` and pick the scheme from `insecure`;
/// an endpoint that already names a scheme is taken as it is.
fn base_url(cfg: &TracingConfig) -> String {
    if cfg.endpoint.contains("://") {
        cfg.endpoint.trim_end_matches('/').to_string()
    } else {
        let scheme = if cfg.insecure { "http" } else { "https" };
        format!("{scheme}://{}", cfg.endpoint.trim_end_matches('/'))
    }
}

fn build_exporter(
    cfg: &TracingConfig,
    dir: &std::path::Path,
) -> Result<opentelemetry_otlp::SpanExporter, OtelError> {
    let headers = cfg.header_map().map_err(OtelError::Build)?;
    // Go's exporters default to a ten-second timeout per export.
    let timeout = match cfg.timeout.0 {
        d if d.is_zero() => Duration::from_secs(10),
        d => d,
    };
    let built = match cfg.client_type {
        ClientType::Grpc => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(base_url(cfg))
                .with_timeout(timeout);
            if cfg.compression == "gzip" {
                b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            if !headers.is_empty() {
                let mut hm = axum::http::HeaderMap::new();
                for (k, v) in &headers {
                    let key = axum::http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| OtelError::Build(format!("header {k:?}: {e}")))?;
                    let val = axum::http::HeaderValue::from_str(v)
                        .map_err(|e| OtelError::Build(format!("header {k:?}: {e}")))?;
                    hm.insert(key, val);
                }
                let md = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(hm);
                b = b.with_metadata(md);
            }
            if !cfg.insecure {
                b = b.with_tls_config(grpc_tls(cfg, dir)?);
            }
            b.build()
        }
        ClientType::Http => {
            let mut client =
                reqwest::Client::builder().user_agent(crate::notify::http::user_agent());
            if let Some(t) = cfg.tls_config.as_ref().filter(|_| !cfg.insecure) {
                let tls = crate::tls::client_config(t, dir, "tracing.tls_config")
                    .map_err(|e| OtelError::Build(e.to_string()))?;
                client = client.tls_backend_preconfigured(tls);
            }
            let client = client
                .timeout(timeout)
                .build()
                .map_err(|e| OtelError::Build(e.to_string()))?;
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", base_url(cfg)))
                .with_timeout(timeout);
            if cfg.compression == "gzip" {
                b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            if !headers.is_empty() {
                b = b.with_headers(headers);
            }
            b.build()
        }
    };
    built.map_err(|e| OtelError::Build(e.to_string()))
}

/// gRPC's TLS from `tls_config`: tonic takes PEM material rather than a
/// rustls configuration, so only what it can express is honoured.
fn grpc_tls(
    cfg: &TracingConfig,
    dir: &std::path::Path,
) -> Result<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig, OtelError> {
    let mut tls =
        opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new().with_native_roots();
    let Some(t) = &cfg.tls_config else {
        return Ok(tls);
    };
    let read =
        |inline: Option<&str>, file: Option<&String>| -> Result<Option<Vec<u8>>, OtelError> {
            match (inline, file) {
                (Some(s), _) => Ok(Some(s.as_bytes().to_vec())),
                (None, Some(f)) => std::fs::read(dir.join(f)).map(Some).map_err(|e| {
                    OtelError::Build(format!(
                        "tracing.tls_config: {}: {e}",
                        dir.join(f).display()
                    ))
                }),
                (None, None) => Ok(None),
            }
        };
    if t.insecure_skip_verify {
        return Err(OtelError::Build(
            "tracing.tls_config.insecure_skip_verify is not supported by Herald for the grpc client; use client_type: http".into(),
        ));
    }
    if let Some(ca) = read(t.ca.as_deref(), t.ca_file.as_ref())? {
        tls = tls
            .ca_certificate(opentelemetry_otlp::tonic_types::transport::Certificate::from_pem(ca));
    }
    let cert = read(t.cert.as_deref(), t.cert_file.as_ref())?;
    let key = read(t.key.as_ref().map(|k| k.expose()), t.key_file.as_ref())?;
    if let (Some(c), Some(k)) = (cert, key) {
        tls = tls.identity(opentelemetry_otlp::tonic_types::transport::Identity::from_pem(c, k));
    }
    if let Some(name) = t.server_name.as_deref().filter(|n| !n.is_empty()) {
        tls = tls.domain_name(name);
    }
    Ok(tls)
}

/// A span Herald started, or nothing when tracing is off. Ending it is
/// explicit, as in Go's `defer span.End()`.
pub(crate) struct SpanGuard {
    cx: Context,
    own: bool,
}

impl SpanGuard {
    /// The context to run the span's children in.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Marks the span failed, with the error as its status message.
    pub(crate) fn error(&self, message: impl Into<String>) {
        if self.own {
            let m = message.into();
            let span = self.cx.span();
            span.set_status(Status::error(m.clone()));
            span.add_event("exception", vec![KeyValue::new("exception.message", m)]);
        }
    }

    pub(crate) fn set_attribute(&self, kv: KeyValue) {
        if self.own {
            self.cx.span().set_attribute(kv);
        }
    }

    pub(crate) fn end(self) {
        if self.own {
            self.cx.span().end();
        }
    }
}

/// Starts span `name` of instrumentation scope `scope` (Go's package path)
/// as a child of `parent`.
pub(crate) fn start(
    scope: &'static str,
    name: &'static str,
    kind: SpanKind,
    parent: &Context,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> SpanGuard {
    start_named(scope, name, kind, parent, attributes)
}

/// `start` with a name made at run time (`GET /api/v2/status`).
pub(crate) fn start_named(
    scope: &'static str,
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> SpanGuard {
    if !ENABLED.load(Ordering::Acquire) {
        return SpanGuard {
            cx: parent.clone(),
            own: false,
        };
    }
    let provider = PROVIDER.load();
    let Some(provider) = provider.as_ref() else {
        return SpanGuard {
            cx: parent.clone(),
            own: false,
        };
    };
    let tracer = provider.tracer(scope);
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes())
        .start_with_context(&tracer, parent);
    SpanGuard {
        cx: parent.with_span(span),
        own: true,
    }
}

pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The W3C `traceparent`/`tracestate` headers of `cx`, for an outgoing
/// request (Go's otelhttp transport with the TraceContext propagator).
pub(crate) fn inject(cx: &Context) -> Vec<(String, String)> {
    struct Headers(Vec<(String, String)>);
    impl Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_string(), value));
        }
    }
    let mut h = Headers(Vec::new());
    if enabled() {
        TraceContextPropagator::new().inject_context(cx, &mut h);
    }
    h.0
}

/// The caller's trace context from an incoming request's headers.
pub(crate) fn extract(headers: &axum::http::HeaderMap) -> Context {
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    if !enabled() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> TracingConfig {
        let mut c: TracingConfig = serde_saphyr::from_str(yaml).unwrap();
        c.check().unwrap();
        c
    }

    #[test]
    fn the_endpoint_is_host_port_with_the_scheme_from_insecure() {
        assert_eq!(base_url(&cfg("endpoint: c:4317\n")), "https://c:4317");
        assert_eq!(
            base_url(&cfg("endpoint: c:4318\ninsecure: true\n")),
            "http://c:4318"
        );
        assert_eq!(
            base_url(&cfg("endpoint: http://c:4318/\n")),
            "http://c:4318"
        );
        assert_eq!(cfg("endpoint: c:1\n").client_type, ClientType::Grpc);
        assert_eq!(
            cfg("endpoint: c:1\nclient_type: http\n").client_type,
            ClientType::Http
        );
    }

    #[test]
    fn headers_send_their_first_value_and_files_are_refused() {
        let c = cfg("endpoint: c:1\nheaders:\n  A:\n    values: [x, y]\n  B:\n    secrets: [s]\n");
        let h = c.header_map().unwrap();
        assert_eq!(h.get("A").map(String::as_str), Some("x"));
        assert_eq!(h.get("B").map(String::as_str), Some("s"));
        let c = cfg("endpoint: c:1\nheaders:\n  A:\n    files: [/f]\n");
        assert_eq!(
            c.header_map().unwrap_err(),
            "header files are not supported for tracing configuration"
        );
    }

    #[test]
    fn without_a_provider_spans_are_not_built() {
        let parent = Context::new();
        let s = start("scope", "name", SpanKind::Internal, &parent, || {
            unreachable!("attributes are only built for a span that is recorded")
        });
        assert!(!s.context().has_active_span());
        s.end();
    }
}
