//! The Microsoft Teams integration (`notify/msteams`): one legacy
//! MessageCard per notification, POSTed to an Office 365 connector
//! webhook. Teams answers a card it cannot take with a non-2xx status;
//! Alertmanager reads nothing but the status (a 200 is delivered, whatever
//! its body), and so does Herald, with the body of a failure in the error.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::MsTeamsConfig;
pub(crate) use config::{check_secret_url, check_webhook_url};

use super::http::{check_status_with_body, transport_error, Client, Credential};
use super::registry::BuildError;
use super::{Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::Templates;

/// `themeColor` of a group with a firing alert and of an all-resolved one.
const COLOR_FIRING: &str = "8C1A1A";
const COLOR_RESOLVED: &str = "2DC72D";

pub struct MsTeams {
    conf: MsTeamsConfig,
    client: Client,
    url: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

/// The MessageCard, its keys in Go's order.
#[derive(Serialize)]
struct Message {
    #[serde(rename = "@context")]
    context: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    summary: String,
    text: String,
    #[serde(rename = "themeColor")]
    theme_color: &'static str,
}

/// `true` when one of the alerts still fires: Go's `Alerts.Status()`.
pub(crate) fn any_firing(ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> bool {
    alerts.iter().any(|a| !a.resolved_at(ctx.now))
}

impl MsTeams {
    fn new(
        conf: &MsTeamsConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<MsTeams, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let url = Credential::from(
            conf.webhook_url.as_ref().map(|s| s.expose()),
            conf.webhook_url_file.as_ref(),
        )
        .ok_or(BuildError::Missing("msteams without webhook_url"))?;
        Ok(MsTeams {
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
        let msg = Message {
            context: "http://schema.org/extensions",
            kind: "MessageCard",
            title: t(&self.conf.title)?,
            summary: t(&self.conf.summary)?,
            text: t(&self.conf.text)?,
            theme_color: if any_firing(ctx, alerts) {
                COLOR_FIRING
            } else {
                COLOR_RESOLVED
            },
        };
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok(body)
    }
}

#[async_trait::async_trait]
impl Notifier for MsTeams {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let body = self.payload(ctx, alerts)?;
        let url = self.url.read()?;
        // The webhook URL is the credential: never in an error.
        let resp = super::http::send(self.client.post_json(&url, body).await?)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // Teams throttles connectors with 429: Alertmanager gives up on
        // it, Herald tries again once the Retry-After has passed.
        check_status_with_body(resp, &[429]).await
    }
}
