//! The incident.io integration (`notify/incidentio`): the webhook's JSON
//! (template data, `groupKey`, `truncatedAlerts`) as version "1", POSTed to
//! an HTTP alert source with its token as a bearer.
//!
//! incident.io rate-limits (and refuses oversized bodies) with 429, which
//! is retried no sooner than its `Retry-After`.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::IncidentioConfig;

use super::http::{check_status, transport_error, Client, Credential};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::commoncfg::{Authorization, Secret};
use crate::model::Alert;
use crate::template::Data;

/// The largest body incident.io accepts.
const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

pub struct Incidentio {
    client: Client,
    url: Credential,
    max_alerts: u64,
    timeout: Option<std::time::Duration>,
    external_url: String,
}

/// The payload: template data plus three fields, in Go's order.
#[derive(Serialize)]
struct Message<'a> {
    #[serde(flatten)]
    data: &'a Data,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

impl Message<'_> {
    /// JSON as Go's `json.Encoder` writes it: a newline at the end.
    fn encode(&self) -> Vec<u8> {
        let mut body = crate::gojson::to_vec(self);
        body.push(b'\n');
        body
    }
}

/// The body to send: over incident.io's limit, only the first alert is
/// kept (the group's other fields stay), as Alertmanager does; if that is
/// still too big it is sent anyway and refused there.
fn encode_within_limit(
    data: &mut Data,
    group_key: &str,
    truncated_alerts: u64,
) -> (Vec<u8>, Option<usize>) {
    fn msg<'a>(data: &'a Data, group_key: &'a str, truncated_alerts: u64) -> Message<'a> {
        Message {
            data,
            version: "1",
            group_key,
            truncated_alerts,
        }
    }
    let body = msg(data, group_key, truncated_alerts).encode();
    if body.len() <= MAX_PAYLOAD_BYTES {
        return (body, None);
    }
    let original = body.len();
    data.alerts.truncate(1);
    (
        msg(data, group_key, truncated_alerts).encode(),
        Some(original),
    )
}

/// The part of an incident.io error answer worth showing: its `message`,
/// `error` and `errors`, joined (nothing when the body is not that JSON).
fn error_details(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error: String,
        #[serde(default)]
        errors: Vec<String>,
    }
    let Ok(a) = serde_json::from_slice::<Answer>(body) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if !a.message.is_empty() {
        parts.push(a.message);
    }
    if !a.error.is_empty() {
        parts.push(a.error);
    }
    if !a.errors.is_empty() {
        parts.push(a.errors.join(", "));
    }
    parts.join(": ")
}

impl Incidentio {
    fn new(cfg: &IncidentioConfig, external_url: &str) -> Result<Incidentio, BuildError> {
        let mut http = cfg.http_config.clone().unwrap_or_default();
        // The alert source token replaces whatever authorization the
        // (possibly global) http_config has. Its file is read by the client
        // at each request, so a rotated token needs no reload.
        let token = cfg
            .alert_source_token
            .as_ref()
            .filter(|t| !t.expose().is_empty());
        let token_file = cfg
            .alert_source_token_file
            .as_ref()
            .filter(|f| !f.is_empty());
        if token.is_some() || token_file.is_some() {
            http.bearer_token = None;
            http.bearer_token_file = None;
            http.authorization = Some(Authorization {
                kind: Some("Bearer".into()),
                credentials: token.map(|t| Secret::new(t.expose())),
                credentials_file: if token.is_some() {
                    None
                } else {
                    token_file.cloned()
                },
                credentials_ref: None,
            });
        }
        // `timeout` bounds the whole attempt, as Go's context deadline
        // does, so no client timeout.
        let client = Client::new(&http, None)?;
        let url = Credential::from(
            cfg.url.as_deref(),
            cfg.url_file.as_ref().filter(|f| !f.is_empty()),
        )
        .ok_or(BuildError::Missing("incidentio config without url"))?;
        Ok(Incidentio {
            client,
            url,
            max_alerts: cfg.max_alerts,
            timeout: cfg.timeout.map(|d| d.0).filter(|t| !t.is_zero()),
            external_url: external_url.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Notifier for Incidentio {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let (kept, truncated) = super::truncate_alerts(alerts, self.max_alerts);
        let mut data = super::notification_data(ctx, kept, &self.external_url);
        let (body, reduced_from) = encode_within_limit(&mut data, &ctx.group_key, truncated);
        if let Some(original) = reduced_from {
            if body.len() <= MAX_PAYLOAD_BYTES {
                tracing::warn!(
                    original_size = original,
                    final_size = body.len(),
                    max_size = MAX_PAYLOAD_BYTES,
                    "Truncated alert content due to incident.io payload size limit"
                );
            } else {
                tracing::error!(original_size = original, final_size = body.len(), max_size = MAX_PAYLOAD_BYTES,
                    "Truncated alert content due to incident.io payload size limit, but still exceeds limit");
            }
        }
        let url = self.url.read_async().await.map_err(|mut e| {
            e.retryable = false;
            e.message = format!("read url_file: {}", e.message);
            e
        })?;
        // The URL names the alert source: Go redacts it from every error.
        let send = async {
            super::http::send(self.client.post_json(&url, body).await?)
                .await
                .map_err(|e| transport_error("<redacted>", e))
        };
        let resp = match self.timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| {
                NotifyError::new(
                    true,
                    FailureReason::ContextDeadlineExceeded,
                    format!(
                        "Post \"<redacted>\": context deadline exceeded: configured incident.io timeout reached ({})",
                        crate::duration::PromDuration(t)
                    ),
                )
            })??,
            None => send.await?,
        };
        if let Err(mut e) = check_status(&resp, &[429]) {
            let body = resp.bytes().await.unwrap_or_default();
            let details = error_details(&body);
            if !details.is_empty() {
                e.message = format!("{}: {details}", e.message);
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;

    #[test]
    fn error_answers_are_summarised_like_go() {
        assert_eq!(
            error_details(br#"{"message":"bad","error":"invalid","errors":["a","b"]}"#),
            "bad: invalid: a, b"
        );
        assert_eq!(error_details(b"<html>"), "");
        assert_eq!(error_details(br#"{"status":"x"}"#), "");
    }

    #[test]
    fn an_oversized_body_keeps_only_the_first_alert() {
        let alert = |i: usize| {
            let mut a = crate::model::test_alert(0, 0, 0, false);
            a.labels = LabelSet::from_strs([("alertname", "Big"), ("i", &*i.to_string())]);
            a.annotations = LabelSet::from_strs([("blob", &*"x".repeat(100 * 1024))]);
            Arc::new(a)
        };
        let now = jiff::Timestamp::now();
        let small: Vec<_> = (0..4).map(alert).collect();
        let mut data = Data::new("r", &LabelSet::default(), &small, now, "http://am");
        let (body, reduced) = encode_within_limit(&mut data, "{}:{}", 0);
        assert_eq!(reduced, None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["alerts"].as_array().unwrap().len(), 4);
        assert_eq!(v["version"], "1");
        assert!(body.ends_with(b"}\n"));

        let big: Vec<_> = (0..6).map(alert).collect();
        let mut data = Data::new("r", &LabelSet::default(), &big, now, "http://am");
        let (body, reduced) = encode_within_limit(&mut data, "{}:{}", 2);
        assert!(reduced.unwrap() > MAX_PAYLOAD_BYTES);
        assert!(body.len() <= MAX_PAYLOAD_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(v["alerts"][0]["labels"]["i"], "0");
        // The rest of the group is as it was.
        assert_eq!(v["truncatedAlerts"], 2);
        assert_eq!(v["commonLabels"]["alertname"], "Big");
    }
}
