//! The top-level `tracing:` block: spans of one alert's way from the API to
//! a webhook, exported over OTLP/HTTP to a receiver this test runs, with
//! the trace context carried to the webhook in `traceparent`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use common::*;

/// An OTLP/HTTP trace receiver: every span of every export request, with
/// its resource's `service.name`.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    addr: Option<std::net::SocketAddr>,
}

async fn export(State(c): State<Collector>, body: Bytes) -> Vec<u8> {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export request");
    let mut spans = c.spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                spans.push((service.clone(), s));
            }
        }
    }
    // An empty ExportTraceServiceResponse.
    Vec::new()
}

impl Collector {
    async fn start() -> Collector {
        let mut c = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        c.addr = Some(listener.local_addr().unwrap());
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(c.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        c
    }

    fn by_name(&self) -> HashMap<String, Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| (s.name.clone(), s.clone()))
            .collect()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn sigterm_and_wait(server: &mut Server) {
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if server.child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "herald did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_alert_to_a_webhook_is_one_parented_trace_per_request_and_flush() {
    let collector = Collector::start().await;
    let hook = Webhook::start().await;
    let config = format!(
        r#"
route:
  receiver: wh
  group_wait: 0s
receivers:
- name: wh
  webhook_configs:
  - url: {url}
tracing:
  client_type: http
  endpoint: {endpoint}
  insecure: true
  sampling_fraction: 1.0
"#,
        url = hook.url("/hook"),
        endpoint = collector.addr.unwrap()
    );
    let mut server = start_herald(&config, &[]).await;

    // The caller's trace: the API spans must join it.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", server.base))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!([{"labels": {"alertname": "Traced"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let got = hook.nth(1, Duration::from_secs(15)).await;
    get_json(&format!("{}/api/v2/status", server.base)).await;

    // The exporter's batch is sent at the latest when Herald stops.
    sigterm_and_wait(&mut server).await;
    let spans = wait_for(
        "the spans of the alert's path",
        Duration::from_secs(10),
        || {
            let s = collector.by_name();
            [
                "POST /api/v2/alerts",
                "dispatch.AggregationGroup.flush",
                "HTTP POST",
            ]
            .iter()
            .all(|n| s.contains_key(*n))
            .then_some(s)
        },
    )
    .await;
    let services: Vec<String> = collector
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    assert!(
        services.iter().all(|s| s.contains("alertmanager")),
        "{services:?}"
    );

    let span = |n: &str| {
        spans
            .get(n)
            .unwrap_or_else(|| panic!("no span {n}: {:?}", spans.keys()))
    };
    // The request: server span under the caller's, handler under it, and
    // the alert's insert into its group under the handler.
    let server_span = span("POST /api/v2/alerts");
    assert_eq!(hex(&server_span.trace_id), caller_trace);
    assert_eq!(hex(&server_span.parent_span_id), caller_span);
    let handler = span("api.postAlertsHandler");
    assert_eq!(handler.parent_span_id, server_span.span_id);
    let insert = span("dispatch.AggregationGroup.insert");
    assert_eq!(insert.parent_span_id, handler.span_id);
    assert_eq!(insert.trace_id, server_span.trace_id);

    // Every API request has its server span and handler span.
    let status = span("api.getStatusHandler");
    assert_eq!(status.parent_span_id, span("GET /api/v2/status").span_id);

    // The flush: a trace of its own, down to the webhook's HTTP request.
    let flush = span("dispatch.AggregationGroup.flush");
    assert!(flush.parent_span_id.is_empty(), "the flush is a root span");
    let retry = span("notify.RetryStage.Exec");
    assert_eq!(retry.parent_span_id, flush.span_id);
    let notify = span("notify.Integration.Notify");
    assert_eq!(notify.parent_span_id, retry.span_id);
    let http = span("HTTP POST");
    assert_eq!(http.parent_span_id, notify.span_id);
    for s in [retry, notify, http] {
        assert_eq!(s.trace_id, flush.trace_id);
    }
    let attr = |s: &Span, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .map(|v| format!("{:?}", v.value))
    };
    assert!(attr(flush, "alerting.aggregation_group.key").is_some_and(|v| v.contains("{}:{}")));
    assert!(attr(notify, "alerting.notify.integration.name").is_some_and(|v| v.contains("webhook")));

    // The webhook got the HTTP span's context.
    let traceparent = got
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("traceparent on the notification")
        .to_string();
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", hex(&flush.trace_id), hex(&http.span_id))
    );
}

#[tokio::test]
async fn without_a_tracing_block_no_trace_context_is_sent() {
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: wh\n  group_wait: 0s\nreceivers:\n- name: wh\n  webhook_configs:\n  - url: {}\n",
        hook.url("/hook")
    );
    let server = start_herald(&config, &[]).await;
    post_alerts(&server.base, &json!([{"labels": {"alertname": "Plain"}}])).await;
    let got = hook.nth(1, Duration::from_secs(15)).await;
    assert!(got.headers.get("traceparent").is_none());
}

#[tokio::test]
async fn a_reload_installs_and_removes_the_exporter() {
    let collector = Collector::start().await;
    let hook = Webhook::start().await;
    let base = format!(
        "route:\n  receiver: wh\n  group_wait: 0s\n  group_by: [alertname]\nreceivers:\n- name: wh\n  webhook_configs:\n  - url: {}\n",
        hook.url("/hook")
    );
    let server = start_herald(&base, &[]).await;
    post_alerts(&server.base, &json!([{"labels": {"alertname": "Before"}}])).await;
    let first = hook.nth(1, Duration::from_secs(15)).await;
    assert!(first.headers.get("traceparent").is_none());

    let traced = format!(
        "{base}tracing:\n  client_type: http\n  endpoint: {}\n  insecure: true\n  sampling_fraction: 1\n",
        collector.addr.unwrap()
    );
    std::fs::write(&server.config_path, traced).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/-/reload", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    post_alerts(&server.base, &json!([{"labels": {"alertname": "After"}}])).await;
    let second = wait_for(
        "the notification after the reload",
        Duration::from_secs(15),
        || {
            hook.all()
                .into_iter()
                .find(|r| r.body["groupLabels"]["alertname"] == "After")
        },
    )
    .await;
    assert!(second.headers.get("traceparent").is_some());

    // Without the block again, the provider is uninstalled.
    std::fs::write(&server.config_path, &base).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/-/reload", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    post_alerts(
        &server.base,
        &json!([{"labels": {"alertname": "Untraced"}}]),
    )
    .await;
    let third = wait_for(
        "the notification after the second reload",
        Duration::from_secs(15),
        || {
            hook.all()
                .into_iter()
                .find(|r| r.body["groupLabels"]["alertname"] == "Untraced")
        },
    )
    .await;
    assert!(third.headers.get("traceparent").is_none());
}

#[tokio::test]
async fn an_unreachable_grpc_collector_does_not_hold_up_notifications() {
    let hook = Webhook::start().await;
    // Go's default client: gRPC. Nothing listens on the port.
    let config = format!(
        "route:\n  receiver: wh\n  group_wait: 0s\nreceivers:\n- name: wh\n  webhook_configs:\n  - url: {}\ntracing:\n  endpoint: 127.0.0.1:{}\n  insecure: true\n  sampling_fraction: 1\n  timeout: 1s\n",
        hook.url("/hook"),
        free_port()
    );
    let mut server = start_herald(&config, &[]).await;
    post_alerts(&server.base, &json!([{"labels": {"alertname": "Grpc"}}])).await;
    let got = hook.nth(1, Duration::from_secs(15)).await;
    assert!(got.headers.get("traceparent").is_some());
    // The stop still ends: the exporter gives up within its timeout.
    sigterm_and_wait(&mut server).await;
}

/// An OTLP/gRPC trace receiver.
#[derive(Clone, Default)]
struct GrpcCollector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for GrpcCollector
{
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test]
async fn the_default_grpc_client_exports_the_flush() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let collector = GrpcCollector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Collectors accept gzip; Herald sends it as asked.
    let svc = TraceServiceServer::new(collector.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream_listener(listener))
            .await
            .unwrap()
    });
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: wh\n  group_wait: 0s\nreceivers:\n- name: wh\n  webhook_configs:\n  - url: {}\ntracing:\n  endpoint: {addr}\n  insecure: true\n  sampling_fraction: 1\n  compression: gzip\n",
        hook.url("/hook"),
    );
    let mut server = start_herald(&config, &[]).await;
    post_alerts(&server.base, &json!([{"labels": {"alertname": "Grpc"}}])).await;
    hook.nth(1, Duration::from_secs(15)).await;
    sigterm_and_wait(&mut server).await;
    let names: Vec<String> = wait_for("spans over gRPC", Duration::from_secs(10), || {
        let names: Vec<String> = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        names
            .iter()
            .any(|n| n == "dispatch.AggregationGroup.flush")
            .then_some(names)
    })
    .await;
    assert!(
        names.iter().any(|n| n == "notify.Integration.Notify"),
        "{names:?}"
    );
}

/// The accepted connections of `listener`, as tonic's server takes them.
fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}
