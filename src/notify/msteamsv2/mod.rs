//! The Microsoft Teams integration for Power Automate workflows
//! (`notify/msteamsv2`), which replaced the retired Office 365
//! connectors: a message whose one attachment is an Adaptive Card with a
//! heading (coloured by status) and a text block, full width.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::MsTeamsV2Config;

use super::http::{check_status_with_body, transport_error, Client, Credential};
use super::msteams::any_firing;
use super::registry::BuildError;
use super::{Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::Templates;

/// Adaptive Card colour names of the heading.
const COLOR_FIRING: &str = "Attention";
const COLOR_RESOLVED: &str = "Good";

pub struct MsTeamsV2 {
    conf: MsTeamsV2Config,
    client: Client,
    url: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

#[derive(Serialize)]
struct Message {
    #[serde(rename = "type")]
    kind: &'static str,
    attachments: [Attachment; 1],
}

#[derive(Serialize)]
struct Attachment {
    #[serde(rename = "contentType")]
    content_type: &'static str,
    /// Always `null`: the card is inline.
    #[serde(rename = "contentUrl")]
    content_url: Option<String>,
    content: Card,
}

#[derive(Serialize)]
struct Card {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    body: [TextBlock; 2],
    msteams: Width,
}

#[derive(Serialize)]
struct TextBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    weight: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    size: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    wrap: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    style: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    color: &'static str,
}

#[derive(Serialize)]
struct Width {
    width: &'static str,
}

impl MsTeamsV2 {
    fn new(
        conf: &MsTeamsV2Config,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<MsTeamsV2, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let url = Credential::from(
            conf.webhook_url.as_ref().map(|s| s.expose()),
            conf.webhook_url_file.as_ref(),
        )
        .ok_or(BuildError::Missing("msteamsv2 without webhook_url"))?;
        Ok(MsTeamsV2 {
            conf: conf.clone(),
            client,
            url,
            templates,
            external_url: external_url.to_string(),
        })
    }

    fn payload(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<Vec<u8>, NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let t = |text: &str| {
            self.templates
                .execute_text(text, &data)
                .map_err(NotifyError::template)
        };
        let heading = TextBlock {
            kind: "TextBlock",
            text: t(&self.conf.title)?,
            weight: "Bolder",
            size: "Medium",
            wrap: true,
            style: "heading",
            color: if any_firing(ctx, alerts) {
                COLOR_FIRING
            } else {
                COLOR_RESOLVED
            },
        };
        let text = TextBlock {
            kind: "TextBlock",
            text: t(&self.conf.text)?,
            weight: "",
            size: "",
            wrap: true,
            style: "",
            color: "",
        };
        let msg = Message {
            kind: "message",
            attachments: [Attachment {
                content_type: "application/vnd.microsoft.card.adaptive",
                content_url: None,
                content: Card {
                    schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                    kind: "AdaptiveCard",
                    version: "1.2",
                    body: [heading, text],
                    msteams: Width { width: "full" },
                },
            }],
        };
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok(body)
    }
}

#[async_trait::async_trait]
impl Notifier for MsTeamsV2 {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let body = self.payload(ctx, alerts)?;
        let url = self.url.read()?;
        // The workflow URL is signed (`sig=`): never in an error.
        let resp = super::http::send(self.client.post_json(&url, body).await?)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // Power Automate throttles with 429: retried after Retry-After
        // (Alertmanager gives up).
        check_status_with_body(resp, &[429]).await
    }
}
