//! The Rocket.Chat integration (`notify/rocketchat`): one attachment built
//! from the config's templates, POSTed to `api/v1/chat.postMessage` with a
//! personal access token (`X-Auth-Token`) and its user id (`X-User-Id`).
//!
//! Rocket.Chat reports some errors with HTTP 200 and `"success": false`,
//! which is a permanent error, as in Alertmanager; 429 is retried no
//! sooner than its `Retry-After` (Herald's rule).

mod config;

use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;

pub use config::{RocketchatAction, RocketchatConfig, RocketchatField};

use super::http::{check_status, transport_error, truncate_runes, Client};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Rocket.Chat cuts attachment titles longer than this.
const MAX_TITLE_RUNES: usize = 1024;

pub struct Rocketchat {
    conf: RocketchatConfig,
    client: Client,
    url: String,
    token: HeaderValue,
    token_id: HeaderValue,
    templates: Arc<Templates>,
    external_url: String,
}

#[derive(Serialize)]
struct PostMessage {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    avatar: String,
    attachments: [Attachment; 1],
}

#[derive(Serialize)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
}

/// Go writes `short` always, the rest when not empty.
#[derive(Serialize)]
struct Field {
    short: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
}

/// The two booleans are always written (false), as Go's struct has no
/// `omitempty` on them.
#[derive(Serialize)]
struct Action {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    is_webview: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    msg: String,
    msg_in_chat_window: bool,
}

/// A token inline or in a file (read once, at load, as Alertmanager does,
/// so that a missing file fails the load), as a header value.
fn credential(
    inline: Option<&crate::commoncfg::Secret>,
    file: Option<&String>,
) -> Result<HeaderValue, BuildError> {
    let text = match (file.filter(|f| !f.is_empty()), inline) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| BuildError::Credential(format!("could not read {f}: {e}")))?,
        (None, Some(s)) => s.expose().to_string(),
        (None, None) => return Err(BuildError::Missing("rocketchat config without a token")),
    };
    let mut v = HeaderValue::from_str(&text)
        .map_err(|_| BuildError::Credential("a Rocket.Chat token is not a valid header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Go's `URL.JoinPath`: `api_url`'s path and the API's, one `/` between.
fn post_url(api_url: &str) -> Result<String, BuildError> {
    let mut u = url::Url::parse(api_url)
        .map_err(|_| BuildError::Missing("rocketchat config with an invalid api_url"))?;
    let path = format!("{}/api/v1/chat.postMessage", u.path().trim_end_matches('/'));
    u.set_path(&path);
    Ok(u.to_string())
}

impl Rocketchat {
    fn new(
        conf: &RocketchatConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Rocketchat, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let url = post_url(
            conf.api_url
                .as_deref()
                .unwrap_or(config::DEFAULT_ROCKETCHAT_API_URL),
        )?;
        Ok(Rocketchat {
            conf: conf.clone(),
            client: Client::new(&http, None)?,
            url,
            token: credential(conf.token.as_ref(), conf.token_file.as_ref())?,
            token_id: credential(conf.token_id.as_ref(), conf.token_id_file.as_ref())?,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The JSON body and its channel; a template error is permanent.
    fn payload(&self, data: &Value) -> Result<(Vec<u8>, String), NotifyError> {
        let c = &self.conf;
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(NotifyError::template)
        };
        let (title, cut) = truncate_runes(t(&c.title)?, MAX_TITLE_RUNES);
        if cut {
            tracing::warn!(max_runes = MAX_TITLE_RUNES, "Truncated title");
        }
        let mut fields = Vec::with_capacity(c.fields.len());
        for f in &c.fields {
            fields.push(Field {
                short: f.short.unwrap_or(c.short_fields),
                title: t(&f.title)?,
                value: t(&f.value)?,
            });
        }
        let mut actions = Vec::with_capacity(c.actions.len());
        for a in &c.actions {
            actions.push(Action {
                // The only type Rocket.Chat's attachments take.
                kind: "button",
                text: t(&a.text)?,
                url: t(&a.url)?,
                is_webview: false,
                msg: t(&a.msg)?,
                msg_in_chat_window: false,
            });
        }
        let attachment = Attachment {
            title,
            title_link: t(&c.title_link)?,
            text: t(&c.text)?,
            image_url: t(&c.image_url)?,
            thumb_url: t(&c.thumb_url)?,
            color: t(&c.color)?,
            fields,
            actions,
        };
        let msg = PostMessage {
            channel: t(&c.channel)?,
            emoji: t(&c.emoji)?,
            avatar: t(&c.icon_url)?,
            attachments: [attachment],
        };
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok((body, msg.channel))
    }
}

/// The answer: the status first (5xx and 429 retried, the body in the
/// error), then the JSON's `success`.
async fn check_response(resp: reqwest::Response, channel: &str) -> Result<(), NotifyError> {
    let status = check_status(&resp, &[429]);
    let body = resp.bytes().await;
    let in_channel = |mut e: NotifyError| {
        e.message = format!("channel {channel:?}: {}", e.message);
        e
    };
    if let Err(mut e) = status {
        let details = body
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        if !details.is_empty() {
            e.message = format!("{}: {details}", e.message);
        }
        return Err(in_channel(e));
    }
    let body = body.map_err(|e| {
        in_channel(NotifyError::new(
            true,
            FailureReason::ClientError,
            format!("could not read response body: {}", e.without_url()),
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        success: bool,
        #[serde(default)]
        error: String,
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
        in_channel(NotifyError::new(
            true,
            FailureReason::ClientError,
            format!(
                "could not unmarshal JSON response {:?}: {e}",
                String::from_utf8_lossy(&body)
            ),
        ))
    })?;
    if !answer.success {
        return Err(in_channel(NotifyError::new(
            false,
            FailureReason::ClientError,
            format!("error response from Rocketchat: {}", answer.error),
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Notifier for Rocketchat {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let (body, channel) = self.payload(&data)?;
        // Set last, so that no `http_headers` entry replaces them.
        let req = self
            .client
            .post_json(&self.url, body)
            .await?
            .header(HeaderName::from_static("x-auth-token"), self.token.clone())
            .header(HeaderName::from_static("x-user-id"), self.token_id.clone());
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error(&super::http::redact(&self.url), e))?;
        check_response(resp, &channel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_path_is_joined_to_the_url() {
        assert_eq!(
            post_url("https://open.rocket.chat/").unwrap(),
            "https://open.rocket.chat/api/v1/chat.postMessage"
        );
        assert_eq!(
            post_url("http://rc.test:3000/chat?x=1").unwrap(),
            "http://rc.test:3000/chat/api/v1/chat.postMessage?x=1"
        );
        assert_eq!(
            post_url("http://rc.test").unwrap(),
            "http://rc.test/api/v1/chat.postMessage"
        );
    }

    #[test]
    fn the_body_is_what_go_writes() {
        let conf: RocketchatConfig = serde_saphyr::from_str(
            "{token: t, token_id: i, channel: '#ops', title: '<T>', color: red, emoji: ':x:', icon_url: '', text: '', title_link: '', short_fields: true, fields: [{title: a, value: b}, {title: c, value: d, short: false}], actions: [{type: link, text: go, url: 'http://x', imageurl: ignored}]}",
        )
        .unwrap();
        let r = Rocketchat::new(&conf, Arc::new(Templates::load(&[]).unwrap()), "").unwrap();
        let (body, channel) = r.payload(&Value::Nil).unwrap();
        assert_eq!(channel, "#ops");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                r##"{"channel":"#ops","emoji":":x:","attachments":[{"title":"\u003cT\u003e","color":"red","##,
                r#""fields":[{"short":true,"title":"a","value":"b"},{"short":false,"title":"c","value":"d"}],"#,
                r#""actions":[{"type":"button","text":"go","url":"http://x","is_webview":false,"msg_in_chat_window":false}]}]}"#,
                "\n"
            )
        );
    }
}
