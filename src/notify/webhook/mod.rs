//! The webhook integration (`notify/webhook`): POSTs Alertmanager's version
//! "4" JSON payload.

use std::sync::Arc;

use serde::Serialize;

mod config;
pub(crate) mod payload;

pub use config::WebhookConfig;

use super::http::{check_status, redact, transport_error, Client, Credential};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Data, Templates};

pub struct Webhook {
    client: Client,
    url: Credential,
    max_alerts: u64,
    external_url: String,
    timeout: Option<std::time::Duration>,
    payload: Option<serde_json::Value>,
    templates: Arc<Templates>,
}

/// The payload: template data plus three webhook fields, in Go's order.
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

impl Webhook {
    fn new(
        cfg: &WebhookConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Webhook, BuildError> {
        let http = cfg.http_config.clone().unwrap_or_default();
        // `timeout` bounds the whole attempt (an OAuth2 token fetch
        // included), as Go's context deadline does, so no client timeout.
        let client = Client::new(&http, None)?;
        let url = Credential::from(cfg.url.as_ref().map(|u| u.expose()), cfg.url_file.as_ref())
            .ok_or(BuildError::Missing("webhook without url"))?;
        Ok(Webhook {
            client,
            url,
            max_alerts: cfg.max_alerts,
            external_url: external_url.to_string(),
            timeout: cfg.timeout.map(|d| d.0).filter(|t| !t.is_zero()),
            payload: cfg.payload.clone(),
            templates,
        })
    }
}

#[async_trait::async_trait]
impl Notifier for Webhook {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let (kept, truncated) = super::truncate_alerts(alerts, self.max_alerts);
        let data = super::notification_data(ctx, kept, &self.external_url);
        let raw = self.url.read()?;
        let templated = payload::is_templated(&raw);
        // The template value is a copy of the data: only made when needed.
        let mut value = None;
        let mut body = match &self.payload {
            None => crate::gojson::to_vec(&Message {
                data: &data,
                version: "4",
                group_key: &ctx.group_key,
                truncated_alerts: truncated,
            }),
            Some(p) => {
                let value = value.get_or_insert_with(|| data.to_value());
                let rendered = payload::render(p, &self.templates, value)?;
                crate::gojson::to_vec(&payload::Sorted(&rendered))
            }
        };
        body.push(b'\n');
        // A templated URL is put together from secrets and alert data:
        // none of it goes into an error, as in Alertmanager.
        let (url, shown) = if templated {
            let value = value.get_or_insert_with(|| data.to_value());
            (
                payload::render_url(&raw, &self.templates, value)?,
                "<redacted>".to_string(),
            )
        } else {
            (raw.clone(), redact(&raw))
        };
        let send = async {
            super::http::send(self.client.post_json(&url, body).await?)
                .await
                .map_err(|e| transport_error(&shown, e))
        };
        let resp = match self.timeout {
            // A receiver that does not answer in time fails the attempt,
            // which is retried, as any request without an answer.
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| {
                NotifyError::new(
                    true,
                    FailureReason::ContextDeadlineExceeded,
                    format!(
                        "Post \"{}\": context deadline exceeded: configured webhook timeout reached ({})",
                        shown,
                        crate::duration::PromDuration(t)
                    ),
                )
            })??,
            None => send.await?,
        };
        // Alertmanager's webhook retries 5xx only; a 503's Retry-After
        // is honoured.
        check_status(&resp, &[])
    }
}
