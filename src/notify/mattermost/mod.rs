//! The Mattermost integration (`notify/mattermost`): an incoming-webhook
//! message with the configured attachments, or with one attachment built
//! from the top-level keys, plus `props.card` and a priority block that is
//! made to fit Mattermost's rules rather than refused.

mod config;

use std::sync::Arc;

use serde::Serialize;

pub use config::{
    MattermostAttachment, MattermostConfig, MattermostField, MattermostPriority, MattermostProps,
};

use super::http::{check_status_with_body, transport_error, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Mattermost refuses a message text longer than this.
const MAX_TEXT_RUNES: usize = 16383;

pub struct Mattermost {
    conf: MattermostConfig,
    client: Client,
    url: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

/// The webhook request, keys in Go's order, empty ones left out.
#[derive(Debug, Serialize)]
struct Request {
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<MattermostAttachment>,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    props: Option<MattermostProps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<MattermostPriority>,
}

impl Mattermost {
    fn new(
        conf: &MattermostConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Mattermost, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let url = Credential::from(
            conf.webhook_url.as_ref().map(|s| s.expose()),
            conf.webhook_url_file.as_ref(),
        )
        .ok_or(BuildError::Missing("mattermost without webhook_url"))?;
        Ok(Mattermost {
            conf: conf.clone(),
            client,
            url,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The request before `sanitize`; a template error is permanent.
    fn request(&self, data: &Value) -> Result<Request, NotifyError> {
        let c = &self.conf;
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(NotifyError::template)
        };
        let fields = |fs: &[MattermostField]| -> Result<Vec<MattermostField>, NotifyError> {
            fs.iter()
                .map(|f| {
                    Ok(MattermostField {
                        title: t(&f.title)?,
                        value: t(&f.value)?,
                        short: f.short,
                    })
                })
                .collect()
        };
        let text = t(&c.text)?;
        let mut req = Request {
            text: String::new(),
            channel: t(&c.channel)?,
            username: t(&c.username)?,
            icon_url: t(&c.icon_url)?,
            icon_emoji: t(&c.icon_emoji)?,
            attachments: Vec::new(),
            kind: t(&c.kind)?,
            props: None,
            priority: None,
        };
        // An empty priority in the config means none; one that renders
        // empty is made `standard` by `sanitize`.
        if let Some(p) = c.priority.as_ref().filter(|p| !p.priority.is_empty()) {
            req.priority = Some(MattermostPriority {
                priority: t(&p.priority)?,
                requested_ack: p.requested_ack,
                persistent_notifications: p.persistent_notifications,
            });
        }
        if let Some(p) = c.props.as_ref().filter(|p| !p.card.is_empty()) {
            req.props = Some(MattermostProps { card: t(&p.card)? });
        }
        if c.attachments.is_empty() {
            // The text goes into the one attachment built from the
            // top-level keys, not into the message.
            req.attachments.push(MattermostAttachment {
                text,
                fallback: t(&c.fallback)?,
                color: t(&c.color)?,
                pretext: t(&c.pretext)?,
                author_name: t(&c.author_name)?,
                author_link: t(&c.author_link)?,
                author_icon: t(&c.author_icon)?,
                title: t(&c.title)?,
                title_link: t(&c.title_link)?,
                fields: fields(&c.fields)?,
                thumb_url: t(&c.thumb_url)?,
                footer: t(&c.footer)?,
                footer_icon: t(&c.footer_icon)?,
                image_url: t(&c.image_url)?,
            });
        } else {
            for a in &c.attachments {
                req.attachments.push(MattermostAttachment {
                    fallback: t(&a.fallback)?,
                    color: t(&a.color)?,
                    pretext: t(&a.pretext)?,
                    text: t(&a.text)?,
                    author_name: t(&a.author_name)?,
                    author_link: t(&a.author_link)?,
                    author_icon: t(&a.author_icon)?,
                    title: t(&a.title)?,
                    title_link: t(&a.title_link)?,
                    fields: fields(&a.fields)?,
                    thumb_url: t(&a.thumb_url)?,
                    footer: t(&a.footer)?,
                    footer_icon: t(&a.footer_icon)?,
                    image_url: t(&a.image_url)?,
                });
            }
            req.text = text;
        }
        Ok(req)
    }
}

/// What Alertmanager does to a request before sending it: the message
/// text cut to Mattermost's limit, and a priority Mattermost would refuse
/// turned into one it takes (an unknown priority is `standard`, which
/// asks for no acknowledgement; only `urgent` may notify persistently).
fn sanitize(req: &mut Request, group_key: &str) {
    let (text, truncated) = truncate_runes(std::mem::take(&mut req.text), MAX_TEXT_RUNES);
    req.text = text;
    if truncated {
        tracing::warn!(key = %group_key, max_runes = MAX_TEXT_RUNES, "Truncated text");
    }
    let Some(p) = &mut req.priority else { return };
    let lower = p.priority.to_lowercase();
    match lower.as_str() {
        "urgent" | "important" | "standard" => p.priority = lower,
        _ => {
            tracing::warn!(key = %group_key, priority = %p.priority, "Priority is set to standard due to invalid value");
            p.priority = "standard".into();
        }
    }
    if p.requested_ack && p.priority == "standard" {
        tracing::warn!(key = %group_key, "RequestedAck is set to false due to priority is standard");
        p.requested_ack = false;
    }
    if p.persistent_notifications && p.priority != "urgent" {
        tracing::warn!(key = %group_key, "PersistentNotifications is set to false due to priority is not urgent");
        p.persistent_notifications = false;
    }
}

#[async_trait::async_trait]
impl Notifier for Mattermost {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let url = self.url.read()?;
        if url.is_empty() {
            return Err(NotifyError::new(
                false,
                FailureReason::Other,
                "webhook url missing",
            ));
        }
        let data = super::template_data(ctx, alerts, &self.external_url);
        let mut req = self.request(&data)?;
        sanitize(&mut req, &ctx.group_key);
        let mut body = crate::gojson::to_vec(&req);
        body.push(b'\n');
        // The webhook URL is the credential: never in an error.
        let resp = super::http::send(self.client.post_json(&url, body).await?)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // Mattermost rate-limits with 429: retried after its Retry-After
        // (Alertmanager gives up).
        check_status_with_body(resp, &[429]).await.map_err(|mut e| {
            e.message = format!("channel {:?}: {}", req.channel, e.message);
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str, priority: Option<(&str, bool, bool)>) -> Request {
        Request {
            text: text.into(),
            channel: String::new(),
            username: String::new(),
            icon_url: String::new(),
            icon_emoji: String::new(),
            attachments: Vec::new(),
            kind: String::new(),
            props: None,
            priority: priority.map(|(p, ack, persistent)| MattermostPriority {
                priority: p.into(),
                requested_ack: ack,
                persistent_notifications: persistent,
            }),
        }
    }

    #[test]
    fn text_is_cut_at_mattermosts_limit() {
        let mut r = request(&"ü".repeat(MAX_TEXT_RUNES), None);
        sanitize(&mut r, "k");
        assert_eq!(r.text.chars().count(), MAX_TEXT_RUNES);
        assert!(!r.text.ends_with('…'));
        let mut r = request(&"ü".repeat(MAX_TEXT_RUNES + 1), None);
        sanitize(&mut r, "k");
        assert_eq!(r.text.chars().count(), MAX_TEXT_RUNES);
        assert!(r.text.ends_with("ü…"));
    }

    #[test]
    fn priorities_are_made_to_fit() {
        let fix = |p: (&str, bool, bool)| {
            let mut r = request("", Some(p));
            sanitize(&mut r, "k");
            let p = r.priority.unwrap();
            (p.priority, p.requested_ack, p.persistent_notifications)
        };
        assert_eq!(fix(("URGENT", true, true)), ("urgent".into(), true, true));
        assert_eq!(
            fix(("Important", true, true)),
            ("important".into(), true, false)
        );
        assert_eq!(
            fix(("standard", true, true)),
            ("standard".into(), false, false)
        );
        assert_eq!(fix(("", true, false)), ("standard".into(), false, false));
        assert_eq!(fix(("p1", false, true)), ("standard".into(), false, false));
    }

    #[test]
    fn empty_keys_are_left_out_of_the_json() {
        let mut r = request("", None);
        r.attachments.push(MattermostAttachment {
            title: "t".into(),
            fields: vec![MattermostField {
                title: "a".into(),
                value: "b".into(),
                short: None,
            }],
            ..Default::default()
        });
        r.priority = Some(MattermostPriority {
            priority: "standard".into(),
            requested_ack: false,
            persistent_notifications: false,
        });
        let json = String::from_utf8(crate::gojson::to_vec(&r)).unwrap();
        assert_eq!(
            json,
            r#"{"attachments":[{"title":"t","fields":[{"title":"a","value":"b"}]}],"priority":{"priority":"standard"}}"#
        );
    }
}
