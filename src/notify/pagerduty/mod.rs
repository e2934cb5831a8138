//! The PagerDuty integration (`notify/pagerduty`): one event per flush,
//! `trigger` while any alert fires and `resolve` once all are resolved,
//! deduplicated by PagerDuty on the group key's hash. Events API v2 with a
//! `routing_key`, the older v1 with a `service_key`.
//!
//! Retries follow PagerDuty's documentation as Alertmanager does: v2
//! retries 5xx and 429 (after its `Retry-After`, Herald's rule), v1 5xx and
//! 403, v1's way of saying "rate limited".

mod config;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;

pub use config::{PagerdutyConfig, PagerdutyImage, PagerdutyLink};

use super::http::{check_status, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::webhook::payload::{render, Sorted};
use super::{group_key_hash, FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Alertmanager's fixed endpoint of Events API v1 (`url` is v2's only).
const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

/// PagerDuty refuses larger events; Alertmanager then drops the details.
const MAX_EVENT_BYTES: usize = 512_000;

/// Both APIs cut the summary (v2) or description (v1) at this many runes.
const MAX_SUMMARY_RUNES: usize = 1024;

pub struct Pagerduty {
    conf: PagerdutyConfig,
    client: Client,
    key: Credential,
    v1: bool,
    url: String,
    timeout: Option<Duration>,
    templates: Arc<Templates>,
    external_url: String,
}

/// Both APIs' event, fields in Go's order (`pagerDutyMessage`); what one
/// API does not use is left out, except `event_action` and `payload`,
/// which Go always writes.
#[derive(Serialize)]
struct Message<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    routing_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    service_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dedup_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    incident_key: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    event_action: &'a str,
    payload: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<Image>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: String,
    source: String,
    severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_details: Option<Details<'a>>,
}

/// The rendered `details`, keys sorted and nested maps too, as Go writes a
/// `map[string]any`.
#[derive(Clone, Copy)]
struct Details<'a>(&'a BTreeMap<String, Json>);

impl Serialize for Details<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &Sorted(v))?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Image {
    src: String,
    alt: String,
    href: String,
}

#[derive(Serialize)]
struct Link {
    href: String,
    text: String,
}

/// Go's `units.MetricBytes.String`: 512000 is `512KB`, 523456 `523KB456B`.
fn metric_bytes(mut n: usize) -> String {
    if n == 0 {
        return "0B".into();
    }
    let mut parts = Vec::new();
    for unit in ["", "K", "M", "G", "T", "P", "E"] {
        if !n.is_multiple_of(1000) {
            parts.push(format!("{}{unit}B", n % 1000));
        }
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

fn fatal(message: impl Into<String>) -> NotifyError {
    NotifyError::new(false, FailureReason::Other, message)
}

/// PagerDuty's 400 answer names what it refused; Go adds that to the
/// error (and nothing of any other answer's body).
fn error_details(status: u16, body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<String>,
    }
    if status != 400 {
        return None;
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    Some(format!("{}: {}", a.message, a.errors.join(",")))
}

impl Pagerduty {
    fn new(
        conf: &PagerdutyConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Pagerduty, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let v1 = conf.is_v1();
        let key = if v1 {
            Credential::from(
                conf.service_key
                    .as_ref()
                    .map(|s| s.expose())
                    .filter(|s| !s.is_empty()),
                conf.service_key_file.as_ref(),
            )
        } else {
            Credential::from(
                conf.routing_key
                    .as_ref()
                    .map(|s| s.expose())
                    .filter(|s| !s.is_empty()),
                conf.routing_key_file.as_ref(),
            )
        }
        .ok_or(BuildError::Missing("pagerduty config without a key"))?;
        let url = if v1 {
            V1_URL.to_string()
        } else {
            conf.url
                .clone()
                .ok_or(BuildError::Missing("pagerduty config without url"))?
        };
        Ok(Pagerduty {
            conf: conf.clone(),
            client,
            key,
            v1,
            url,
            timeout: conf.timeout.map(|d| d.0).filter(|t| !t.is_zero()),
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// Every `details` value rendered (Go's `renderDetails`): the top-level
    /// keys as written, every string below rendered, a rendered string that
    /// reads as YAML structure sent as that structure.
    fn details(&self, data: &Value) -> Result<BTreeMap<String, Json>, NotifyError> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.conf.details {
            let rendered = render(v, &self.templates, data).map_err(|e| {
                let cause = e
                    .message
                    .strip_prefix("failed to render custom payload: ")
                    .unwrap_or(&e.message);
                fatal(format!("failed to render details: {cause}"))
            })?;
            out.insert(k.clone(), rendered);
        }
        Ok(out)
    }

    /// The JSON event, with the details replaced by a note when the event
    /// would exceed PagerDuty's size limit.
    fn body(
        &self,
        group_key: &str,
        data: &Value,
        firing: bool,
        key: &str,
    ) -> Result<Vec<u8>, NotifyError> {
        let c = &self.conf;
        let api = if self.v1 { "v1" } else { "v2" };
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(|e| fatal(format!("failed to template PagerDuty {api} message: {e}")))
        };
        let details = self.details(data)?;
        let (summary, truncated) = truncate_runes(t(&c.description)?, MAX_SUMMARY_RUNES);
        if truncated {
            let what = if self.v1 { "description" } else { "summary" };
            tracing::warn!(
                key = group_key,
                max_runes = MAX_SUMMARY_RUNES,
                "Truncated {what}"
            );
        }
        let key = t(key)?;
        let action = if firing { "trigger" } else { "resolve" };
        let hash = group_key_hash(group_key);
        let mut msg = if self.v1 {
            if key.is_empty() {
                return Err(fatal("service key cannot be empty"));
            }
            let (client, client_url) = if firing {
                (t(&c.client)?, t(&c.client_url)?)
            } else {
                (String::new(), String::new())
            };
            Message {
                routing_key: String::new(),
                service_key: key,
                dedup_key: String::new(),
                incident_key: hash,
                event_type: action,
                description: summary,
                event_action: "",
                payload: None,
                client,
                client_url,
                details: Some(Details(&details)),
                images: Vec::new(),
                links: Vec::new(),
            }
        } else {
            let mut images = Vec::new();
            for im in &c.images {
                let image = Image {
                    src: t(&im.src)?,
                    alt: t(&im.alt)?,
                    href: t(&im.href)?,
                };
                if !image.src.is_empty() {
                    images.push(image);
                }
            }
            let mut links = Vec::new();
            for l in &c.links {
                let link = Link {
                    href: t(&l.href)?,
                    text: t(&l.text)?,
                };
                if !link.href.is_empty() {
                    links.push(link);
                }
            }
            let severity = if c.severity.is_empty() {
                "error".to_string()
            } else {
                t(&c.severity)?
            };
            let payload = Payload {
                summary,
                source: t(&c.source)?,
                severity,
                class: t(&c.class)?,
                component: t(&c.component)?,
                group: t(&c.group)?,
                custom_details: Some(Details(&details)),
            };
            let msg = Message {
                routing_key: key,
                service_key: String::new(),
                dedup_key: hash,
                incident_key: String::new(),
                event_type: "",
                description: String::new(),
                event_action: action,
                payload: Some(payload),
                client: t(&c.client)?,
                client_url: t(&c.client_url)?,
                details: None,
                images,
                links,
            };
            if msg.routing_key.is_empty() {
                return Err(fatal("routing key cannot be empty"));
            }
            msg
        };
        // An empty map is left out, as Go's omitempty does.
        if details.is_empty() {
            msg.details = None;
            if let Some(p) = msg.payload.as_mut() {
                p.custom_details = None;
            }
        }
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        if body.len() <= MAX_EVENT_BYTES {
            return Ok(body);
        }
        let note = BTreeMap::from([(
            "error".to_string(),
            Json::String(format!(
                "Custom details have been removed because the original event exceeds the maximum size of {}",
                metric_bytes(MAX_EVENT_BYTES)
            )),
        )]);
        if self.v1 {
            msg.details = Some(Details(&note));
        } else if let Some(p) = msg.payload.as_mut() {
            p.custom_details = Some(Details(&note));
        }
        tracing::warn!(
            "Truncated Details because message of size {} exceeds limit {}",
            metric_bytes(body.len()),
            metric_bytes(MAX_EVENT_BYTES)
        );
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok(body)
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), NotifyError> {
        let what = if self.v1 { "PagerDuty v1" } else { "PagerDuty" };
        let send = async {
            let req = self.client.post_json(&self.url, body).await?;
            super::http::send(req).await.map_err(|e| {
                NotifyError::new(
                    true,
                    FailureReason::Other,
                    format!(
                        "failed to post message to {what}: Post \"{}\": {}",
                        super::http::redact(&self.url),
                        e.without_url()
                    ),
                )
            })
        };
        let resp = match self.timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| {
                NotifyError::new(
                    true,
                    FailureReason::ContextDeadlineExceeded,
                    format!(
                        "failed to post message to {what}: context deadline exceeded: configured pagerduty timeout reached ({})",
                        crate::duration::PromDuration(t)
                    ),
                )
            })??,
            None => send.await?,
        };
        // v1 answers 403 when it rate-limits, v2 429.
        let retry_codes: &[u16] = if self.v1 { &[403] } else { &[429] };
        let status = check_status(&resp, retry_codes);
        let code = resp.status().as_u16();
        if let Err(mut e) = status {
            let body = resp.bytes().await.unwrap_or_default();
            if let Some(d) = error_details(code, &body) {
                e.message = format!("{}: {d}", e.message);
            }
            // Go labels v1 failures by no status (it never wrapped them).
            if self.v1 {
                e.reason = FailureReason::Other;
            }
            return Err(e);
        }
        Ok(())
    }
}

/// The key as configured, or the trimmed content of its file, read off the
/// runtime's threads at each notification so that a rotated file counts.
async fn read_key(key: &Credential, which: &str) -> Result<String, NotifyError> {
    match key {
        Credential::Inline(k) => Ok(k.clone()),
        Credential::File(f) => tokio::fs::read_to_string(f)
            .await
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                fatal(format!(
                    "failed to read {which} key from file: open {f}: {e}"
                ))
            }),
    }
}

#[async_trait::async_trait]
impl Notifier for Pagerduty {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let firing = alerts.iter().any(|a| !a.resolved_at(ctx.now));
        let which = if self.v1 { "service" } else { "routing" };
        let key = read_key(&self.key, which).await?;
        let body = self.body(&ctx.group_key, &data, firing, &key)?;
        self.post(body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;
    use crate::notify::IntegrationConfig;

    const KEY: &str = "{}:{team=\"db\"}";

    fn notifier(yaml: &str) -> Pagerduty {
        let mut c: PagerdutyConfig = serde_saphyr::from_str(yaml).unwrap();
        c.apply_global(&crate::notify::GlobalConfig::default(), "pd")
            .unwrap();
        Pagerduty::new(&c, Arc::new(Templates::load(&[]).unwrap()), "http://am").unwrap()
    }

    fn data() -> Value {
        let labels = LabelSet::from_strs([("team", "db")]);
        crate::template::Data::new("r", &labels, &[], jiff::Timestamp::UNIX_EPOCH, "http://am")
            .to_value()
    }

    fn event(n: &Pagerduty, firing: bool) -> Json {
        serde_json::from_slice(&n.body(KEY, &data(), firing, "k").unwrap()).unwrap()
    }

    #[test]
    fn v2_events_carry_rendered_details_and_defaults() {
        let n = notifier(
            "routing_key: k\ndetails: {team: '{{ .GroupLabels.team }}', nested: {'{{ .GroupLabels.team }}_x': ['{{ len .Alerts }}', 2]}}\nimages: [{src: '', alt: a}, {src: 'http://i/{{ .GroupLabels.team }}'}]\nlinks: [{href: 'http://l', text: t}]\n",
        );
        assert_eq!(n.url, "https://events.pagerduty.com/v2/enqueue");
        let e = event(&n, true);
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], group_key_hash(KEY));
        assert_eq!(e["routing_key"], "k");
        assert_eq!(e["payload"]["severity"], "error");
        assert_eq!(e["payload"]["source"], e["client"]);
        let d = &e["payload"]["custom_details"];
        assert_eq!(d["team"], "db");
        assert_eq!(d["nested"], serde_json::json!({"db_x": [0, 2]}));
        assert_eq!(d["num_firing"], 0);
        assert_eq!(d["firing"], serde_json::json!([]));
        assert_eq!(
            e["images"],
            serde_json::json!([{"src": "http://i/db", "alt": "", "href": ""}])
        );
        assert_eq!(
            e["links"],
            serde_json::json!([{"href": "http://l", "text": "t"}])
        );
        assert!(e.get("details").is_none() && e.get("incident_key").is_none());
        assert_eq!(event(&n, false)["event_action"], "resolve");
    }

    #[test]
    fn v1_events_use_the_service_key_and_fixed_url() {
        let n = notifier("service_key: s\nrouting_key: r\nurl: http://elsewhere/\n");
        assert_eq!(n.url, V1_URL);
        let e = event(&n, true);
        assert_eq!(e["service_key"], "k");
        assert_eq!(e["event_type"], "trigger");
        assert_eq!(e["event_action"], "");
        assert_eq!(e["payload"], Json::Null);
        assert_eq!(e["incident_key"], group_key_hash(KEY));
        assert_eq!(e["details"]["num_resolved"], 0);
        assert!(e["client"].is_string());
        // A resolve names no client.
        let e = event(&n, false);
        assert_eq!(e["event_type"], "resolve");
        assert!(e.get("client").is_none() && e.get("client_url").is_none());
    }

    #[test]
    fn oversized_events_lose_their_details() {
        let big = "x".repeat(MAX_EVENT_BYTES);
        let n = notifier(&format!("routing_key: k\ndetails: {{big: '{big}'}}\n"));
        let body = n.body(KEY, &data(), true, "k").unwrap();
        assert!(body.len() < MAX_EVENT_BYTES);
        let e: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            e["payload"]["custom_details"],
            serde_json::json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512KB"})
        );
        let long = "ü".repeat(2000);
        let n = notifier(&format!("routing_key: k\ndescription: '{long}'\n"));
        let summary = event(&n, true)["payload"]["summary"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_RUNES);
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn an_empty_key_after_templating_is_refused() {
        let n = notifier("routing_key: k\n");
        let e = n
            .body(KEY, &data(), true, "{{ if false }}x{{ end }}")
            .unwrap_err();
        assert_eq!(e.message, "routing key cannot be empty");
        assert!(!e.retryable);
    }

    #[test]
    fn sizes_are_written_as_go_s_units() {
        assert_eq!(metric_bytes(512_000), "512KB");
        assert_eq!(metric_bytes(523_456), "523KB456B");
        assert_eq!(metric_bytes(999), "999B");
        assert_eq!(metric_bytes(1_000_000), "1MB");
    }

    #[test]
    fn only_a_400_names_what_pagerduty_refused() {
        let body = br#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect","x"]}"#;
        assert_eq!(
            error_details(400, body).as_deref(),
            Some("Event object is invalid: Length of 'routing_key' is incorrect,x")
        );
        assert_eq!(error_details(500, body), None);
        assert_eq!(error_details(400, b"not json"), None);
    }
}
