//! The Discord integration (`notify/discord`): one webhook message with a
//! `content` line and one embed (title, description, a colour for the
//! group's state), POSTed to the channel's webhook URL.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::DiscordConfig;

use super::http::{check_status_with_body, transport_error, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::{Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::Templates;

/// Discord's embed limits, in characters.
const MAX_TITLE_RUNES: usize = 256;
const MAX_DESCRIPTION_RUNES: usize = 4096;
/// Discord's limit of a message's `content`.
const MAX_CONTENT_RUNES: usize = 2000;

const COLOR_RED: u32 = 0x992D22;
const COLOR_GREEN: u32 = 0x2ECC71;

pub struct Discord {
    conf: DiscordConfig,
    client: Client,
    url: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

/// Go's struct, fields in its order.
#[derive(Serialize)]
struct Webhook<'a> {
    content: String,
    embeds: [Embed; 1],
    #[serde(skip_serializing_if = "str::is_empty")]
    username: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    avatar_url: String,
}

#[derive(Serialize)]
struct Embed {
    title: String,
    description: String,
    color: u32,
}

impl Discord {
    fn new(
        conf: &DiscordConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Discord, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let url = Credential::from(
            conf.webhook_url.as_ref().map(|s| s.expose()),
            conf.webhook_url_file.as_ref(),
        )
        .ok_or(BuildError::Missing("discord config without webhook_url"))?;
        Ok(Discord {
            conf: conf.clone(),
            client,
            url,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The JSON body; a template error is permanent.
    fn payload(
        &self,
        ctx: &NotifyCtx,
        alerts: &[Arc<Alert>],
        data: &crate::template::Value,
    ) -> Result<Vec<u8>, NotifyError> {
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(NotifyError::template)
        };
        let cut = |text: String, max: usize, what: &str| {
            let (text, truncated) = truncate_runes(text, max);
            if truncated {
                tracing::warn!(key = %ctx.group_key, max_runes = max, "Truncated {what}");
            }
            text
        };
        let title = cut(t(&self.conf.title)?, MAX_TITLE_RUNES, "title");
        let description = cut(t(&self.conf.message)?, MAX_DESCRIPTION_RUNES, "message");
        let content = cut(t(&self.conf.content)?, MAX_CONTENT_RUNES, "content");
        // Go's Alerts.Status: firing while any alert fires. (Its third
        // colour, grey, is for a status that a group never has.)
        let firing = alerts.iter().any(|a| !a.resolved_at(ctx.now));
        let avatar_url = if self.conf.avatar_url.is_empty() || go_url_parses(&self.conf.avatar_url)
        {
            self.conf.avatar_url.clone()
        } else {
            tracing::warn!(key = %ctx.group_key, "Bad avatar url");
            String::new()
        };
        let w = Webhook {
            content,
            embeds: [Embed {
                title,
                description,
                color: if firing { COLOR_RED } else { COLOR_GREEN },
            }],
            username: &self.conf.username,
            avatar_url,
        };
        let mut body = crate::gojson::to_vec(&w);
        body.push(b'\n');
        Ok(body)
    }
}

/// What Go's `url.Parse` refuses, which is much less than a URL parser
/// that wants an absolute URL: control characters, a bad `%` escape, a
/// colon before any scheme.
fn go_url_parses(u: &str) -> bool {
    if u.bytes().any(|b| b < 0x20 || b == 0x7f) || u.starts_with(':') {
        return false;
    }
    let b = u.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[async_trait::async_trait]
impl Notifier for Discord {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let body = self.payload(ctx, alerts, &data)?;
        let url = self.url.read().map_err(|e| {
            NotifyError::new(
                false,
                e.reason,
                format!("read webhook_url_file: {}", e.message),
            )
        })?;
        let req = self.client.post_json(&url, body).await?;
        // The webhook URL carries the webhook's token: never in an error.
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // Herald's rule for rate limits: Discord's 429 is retried once its
        // `Retry-After` passed (Alertmanager gives up).
        check_status_with_body(resp, &[429]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_urls_are_checked_as_go_does() {
        assert!(go_url_parses("https://example.com/a.png"));
        assert!(go_url_parses("not even a url"));
        assert!(!go_url_parses("http://x/%zz"));
        assert!(!go_url_parses("http://x/\n"));
        assert!(!go_url_parses(":nothing"));
    }
}
