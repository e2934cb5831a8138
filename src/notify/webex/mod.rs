//! The Webex integration (`notify/webex`): one markdown message POSTed to
//! the Messages API for the configured room, authorised by the bot token
//! of `http_config.authorization`.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::WebexConfig;

use super::http::{check_status_with_body, redact, transport_error, truncate_bytes, Client};
use super::registry::BuildError;
use super::{Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::Templates;

/// The longest message Webex takes, in bytes.
const MAX_MESSAGE_BYTES: usize = 7439;

pub struct Webex {
    conf: WebexConfig,
    client: Client,
    url: String,
    templates: Arc<Templates>,
    external_url: String,
}

#[derive(Serialize)]
struct Message {
    markdown: String,
    #[serde(rename = "roomId", skip_serializing_if = "String::is_empty")]
    room_id: String,
}

impl Webex {
    fn new(
        conf: &WebexConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Webex, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let url = conf
            .api_url
            .clone()
            .ok_or(BuildError::Missing("webex config without api_url"))?;
        Ok(Webex {
            conf: conf.clone(),
            client,
            url,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The JSON body; a template error is permanent. (Go drops an error of
    /// the `room_id` template and posts without a room, which Webex
    /// refuses; Herald reports the template error instead.)
    fn payload(
        &self,
        ctx: &NotifyCtx,
        data: &crate::template::Value,
    ) -> Result<Vec<u8>, NotifyError> {
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(NotifyError::template)
        };
        let (markdown, truncated) = truncate_bytes(t(&self.conf.message)?, MAX_MESSAGE_BYTES);
        if truncated {
            tracing::debug!(key = %ctx.group_key, max_bytes = MAX_MESSAGE_BYTES, "message truncated due to exceeding maximum allowed length by webex");
        }
        let m = Message {
            markdown,
            room_id: t(&self.conf.room_id)?,
        };
        let mut body = crate::gojson::to_vec(&m);
        body.push(b'\n');
        Ok(body)
    }
}

#[async_trait::async_trait]
impl Notifier for Webex {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let body = self.payload(ctx, &data)?;
        let req = self.client.post_json(&self.url, body).await?;
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error(&redact(&self.url), e))?;
        // Herald's rule for rate limits: a 429 is retried after its
        // `Retry-After` (Alertmanager gives up).
        check_status_with_body(resp, &[429]).await
    }
}
