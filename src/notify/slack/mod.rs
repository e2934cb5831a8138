//! The Slack integration (`notify/slack`): one message attachment built
//! from the config's templates, POSTed to an incoming-webhook URL or, in
//! Slack-app mode, to `chat.postMessage` with the bot token.
//!
//! Slack's answers are read as newer Alertmanager releases do (a JSON body
//! with `"ok": false` is a permanent error) and better than any of them on
//! rate limits: HTTP 429 is retried no sooner than its `Retry-After`.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::{SlackAction, SlackConfig, SlackConfirm, SlackField, DEFAULT_SLACK_APP_URL};

use super::http::{check_status, transport_error, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Slack cuts attachment titles longer than this.
const MAX_TITLE_RUNES: usize = 1024;

enum Target {
    /// An incoming-webhook URL: the URL is the credential.
    Webhook(Credential),
    /// A Slack app: `chat.postMessage` with a bot token.
    App { url: String, token: Credential },
}

pub struct Slack {
    conf: SlackConfig,
    client: Client,
    target: Target,
    templates: Arc<Templates>,
    external_url: String,
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    /// The message `chat.update` edits.
    #[serde(rename = "ts", skip_serializing_if = "String::is_empty")]
    timestamp: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    attachments: [Attachment<'a>; 1],
}

#[derive(Serialize)]
struct Attachment<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mrkdwn_in: &'a [String],
}

#[derive(Serialize)]
struct Field {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    short: bool,
}

#[derive(Serialize)]
struct Action {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<Confirm>,
}

#[derive(Serialize)]
struct Confirm {
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ok_text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dismiss_text: String,
}

/// Which of `mrkdwn_in` applies when the config leaves it empty.
fn default_mrkdwn_in() -> &'static [String] {
    static DEFAULT: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| vec!["fallback".into(), "pretext".into(), "text".into()])
}

impl Slack {
    fn new(
        conf: &SlackConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Slack, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, conf.timeout.map(|d| d.0))?;
        let app = Credential::from(
            conf.app_token.as_ref().map(|s| s.expose()),
            conf.app_token_file.as_ref(),
        );
        let hook = Credential::from(
            conf.api_url.as_ref().map(|s| s.expose()),
            conf.api_url_file.as_ref(),
        );
        let target = match (app, hook) {
            (Some(token), _) => Target::App {
                url: conf
                    .app_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SLACK_APP_URL.into()),
                token,
            },
            (None, Some(url)) => Target::Webhook(url),
            (None, None) => {
                return Err(BuildError::Missing(
                    "slack config without api_url or app_token",
                ))
            }
        };
        Ok(Slack {
            conf: conf.clone(),
            client,
            target,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The JSON body; a template error is permanent.
    /// `update` is the message to edit (`ts`, channel id) with
    /// `update_message`.
    fn payload(
        &self,
        ctx: &NotifyCtx,
        data: &Value,
        update: Option<&(String, String)>,
    ) -> Result<Vec<u8>, NotifyError> {
        let c = &self.conf;
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(NotifyError::template)
        };
        let (title, truncated) = truncate_runes(t(&c.title)?, MAX_TITLE_RUNES);
        if truncated {
            tracing::warn!(key = %ctx.group_key, max_runes = MAX_TITLE_RUNES, "Truncated title");
        }
        let mut fields = Vec::with_capacity(c.fields.len());
        for f in &c.fields {
            fields.push(Field {
                title: t(&f.title)?,
                value: t(&f.value)?,
                short: f.short.unwrap_or(c.short_fields),
            });
        }
        let mut actions = Vec::with_capacity(c.actions.len());
        for a in &c.actions {
            let confirm = match &a.confirm {
                Some(cf) => Some(Confirm {
                    text: t(&cf.text)?,
                    title: t(&cf.title)?,
                    ok_text: t(&cf.ok_text)?,
                    dismiss_text: t(&cf.dismiss_text)?,
                }),
                None => None,
            };
            actions.push(Action {
                kind: t(&a.kind)?,
                text: t(&a.text)?,
                url: t(&a.url)?,
                style: t(&a.style)?,
                name: t(&a.name)?,
                value: t(&a.value)?,
                confirm,
            });
        }
        let attachment = Attachment {
            title,
            title_link: t(&c.title_link)?,
            pretext: t(&c.pretext)?,
            text: t(&c.text)?,
            fallback: t(&c.fallback)?,
            callback_id: t(&c.callback_id)?,
            fields,
            actions,
            image_url: t(&c.image_url)?,
            thumb_url: t(&c.thumb_url)?,
            footer: t(&c.footer)?,
            color: t(&c.color)?,
            mrkdwn_in: if c.mrkdwn_in.is_empty() {
                default_mrkdwn_in()
            } else {
                &c.mrkdwn_in
            },
        };
        let (timestamp, channel) = match update {
            Some((ts, channel)) => (ts.clone(), channel.clone()),
            None => (String::new(), t(&c.channel)?),
        };
        let req = Request {
            channel,
            username: t(&c.username)?,
            icon_emoji: t(&c.icon_emoji)?,
            icon_url: t(&c.icon_url)?,
            link_names: c.link_names,
            text: t(&c.message_text)?,
            timestamp,
            attachments: [attachment],
        };
        let mut body = crate::gojson::to_vec(&req);
        body.push(b'\n');
        Ok(body)
    }
}

/// Slack's answer to a POST: the status first (5xx and 429 retried, the
/// latter after `Retry-After`), then the body of a JSON answer.
/// On success, the posted message's channel id and `ts` when Slack's JSON
/// answer names them (chat.postMessage and chat.update do).
async fn check_response(
    resp: reqwest::Response,
    channel: &str,
) -> Result<Option<(String, String)>, NotifyError> {
    // Slack rate-limits with 429, which is worth retrying once its
    // Retry-After has passed.
    let status = check_status(&resp, &[429]);
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = resp.bytes().await.unwrap_or_default();
    let details = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    if let Err(mut e) = status {
        if !details.trim().is_empty() {
            e.message = format!("{}: {}", e.message, details.trim());
        }
        e.message = format!("channel {channel:?}: {}", e.message);
        return Err(e);
    }
    if is_json {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            ok: bool,
            #[serde(default)]
            error: String,
            #[serde(default)]
            channel: String,
            #[serde(default)]
            ts: String,
        }
        // An answer that is not the JSON Slack's API always sends is worth
        // another try, as in Alertmanager.
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("channel {channel:?}: could not unmarshal JSON response {details:?}: {e}"),
            )
        })?;
        if !answer.ok {
            return Err(NotifyError::new(
                false,
                FailureReason::ClientError,
                format!(
                    "channel {channel:?}: error response from Slack: {}",
                    answer.error
                ),
            ));
        }
        if !answer.ts.is_empty() && !answer.channel.is_empty() {
            return Ok(Some((answer.ts, answer.channel)));
        }
    } else if body.as_ref() != b"ok" {
        // An incoming webhook answers the plain text `ok`; anything else
        // is Slack refusing the message (Alertmanager 0.33+).
        return Err(NotifyError::new(
            false,
            FailureReason::ClientError,
            format!("channel {channel:?}: received an error response from Slack: {details}"),
        ));
    }
    Ok(None)
}

/// Where `chat.update` is, beside the configured `chat.postMessage`
/// (Alertmanager always uses Slack's own).
fn update_url(post: &str) -> String {
    match post.strip_suffix("chat.postMessage") {
        Some(base) => format!("{base}chat.update"),
        None => "https://slack.com/api/chat.update".into(),
    }
}

const THREAD_TS: &str = "threadTs";
const CHANNEL_ID: &str = "channelId";

#[async_trait::async_trait]
impl Notifier for Slack {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        // The message this group got last time, to edit instead of posting.
        let update = if self.conf.update_message {
            let kept = ctx.receiver_data.lock().unwrap_or_else(|e| e.into_inner());
            let get = |k: &str| {
                kept.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let (ts, channel) = (get(THREAD_TS), get(CHANNEL_ID));
            (!ts.is_empty() && !channel.is_empty()).then_some((ts, channel))
        } else {
            None
        };
        let body = self.payload(ctx, &data, update.as_ref())?;
        let channel = match &update {
            Some((_, id)) => id.clone(),
            None => self
                .templates
                .execute_text(&self.conf.channel, &data)
                .unwrap_or_default(),
        };
        let (mut url, token) = match &self.target {
            Target::Webhook(url) => (url.read()?, None),
            Target::App { url, token } => (url.clone(), Some(token.read()?)),
        };
        if update.is_some() {
            url = update_url(&url);
        }
        let mut req = self.client.post_json(&url, body).await?;
        if let Some(token) = token {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        // The webhook URL is the credential: never in an error.
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        let posted = check_response(resp, &channel).await?;
        if let (true, Some((ts, channel))) = (self.conf.update_message, posted) {
            use crate::nflog::ReceiverDataValue::Str;
            let mut kept = ctx.receiver_data.lock().unwrap_or_else(|e| e.into_inner());
            kept.insert(THREAD_TS.into(), Str(ts));
            kept.insert(CHANNEL_ID.into(), Str(channel));
        }
        Ok(())
    }
}
