//! The Pushover integration (`notify/pushover`): one POST to Pushover's
//! messages API with every parameter in the query string and an empty
//! body, as Alertmanager sends it. Title, message and supplementary URL are
//! cut to Pushover's limits in runes.

mod config;

use std::sync::Arc;

pub use config::{GoDuration, PushoverConfig};

use super::http::{check_status, encode_query, transport_error, truncate_runes, Client};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Pushover's API: fixed in Alertmanager too (reach a test double through
/// `http_config.proxy_url`).
pub const PUSHOVER_API_URL: &str = "https://api.pushover.net/1/messages.json";

/// https://pushover.net/api#limits, in runes.
const MAX_TITLE_RUNES: usize = 250;
const MAX_MESSAGE_RUNES: usize = 1024;
const MAX_URL_RUNES: usize = 512;

pub struct Pushover {
    conf: PushoverConfig,
    client: Client,
    templates: Arc<Templates>,
    external_url: String,
}

impl Pushover {
    fn new(
        conf: &PushoverConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Pushover, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        Ok(Pushover {
            conf: conf.clone(),
            client: Client::new(&http, None)?,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The query string: Go's parameters, sorted by name as
    /// `url.Values.Encode` writes them. A template error is permanent.
    fn query(
        &self,
        ctx: &NotifyCtx,
        data: &Value,
        token: &str,
        user: &str,
    ) -> Result<String, NotifyError> {
        let c = &self.conf;
        let fail = |e: crate::template::TemplateError| NotifyError::template(e);
        let t = |text: &str| self.templates.execute_text(text, data).map_err(fail);
        let key = ctx.group_key.as_ref();
        let token = t(token)?;
        let user = t(user)?;
        let (title, cut) = truncate_runes(t(&c.title)?, MAX_TITLE_RUNES);
        if cut {
            tracing::warn!(
                incident = key,
                max_runes = MAX_TITLE_RUNES,
                "Truncated title"
            );
        }
        let message = if c.html {
            self.templates
                .execute_html_text(&c.message, data)
                .map_err(fail)?
        } else {
            t(&c.message)?
        };
        let (message, cut) = truncate_runes(message, MAX_MESSAGE_RUNES);
        if cut {
            tracing::warn!(
                incident = key,
                max_runes = MAX_MESSAGE_RUNES,
                "Truncated message"
            );
        }
        let message = match message.trim() {
            // Pushover refuses an empty message.
            "" => "(no details)".to_string(),
            m => m.to_string(),
        };
        let (url, cut) = truncate_runes(t(&c.url)?, MAX_URL_RUNES);
        if cut {
            tracing::warn!(incident = key, max_runes = MAX_URL_RUNES, "Truncated URL");
        }
        let url_title = t(&c.url_title)?;
        let priority = t(&c.priority)?;
        let retry = c.retry.whole_seconds().to_string();
        let expire = c.expire.whole_seconds().to_string();
        let device = t(&c.device)?;
        let sound = t(&c.sound)?;
        let ttl = c.ttl.whole_seconds();
        let ttl_text = ttl.to_string();
        let mut params: Vec<(&str, &str)> = vec![("token", &token), ("user", &user)];
        params.push(("title", &title));
        if c.html {
            params.push(("html", "1"));
        }
        if c.monospace {
            params.push(("monospace", "1"));
        }
        params.extend([
            ("message", message.as_str()),
            ("url", &url),
            ("url_title", &url_title),
            ("priority", &priority),
            ("retry", &retry),
            ("expire", &expire),
            ("device", &device),
            ("sound", &sound),
        ]);
        if ttl > 0 {
            params.push(("ttl", &ttl_text));
        }
        Ok(encode_query(&params))
    }
}

/// `token` or `user_key`, inline or from its file. Read on the blocking
/// pool: the file may be on a slow disk.
async fn read_key(
    inline: Option<&crate::commoncfg::Secret>,
    file: Option<&String>,
    name: &str,
) -> Result<String, NotifyError> {
    match (inline.map(|s| s.expose()).filter(|s| !s.is_empty()), file) {
        (Some(s), _) => Ok(s.to_string()),
        (None, Some(f)) => tokio::fs::read_to_string(f)
            .await
            // Trimmed, unlike Alertmanager: a key file ending in a
            // newline is the usual way to write one.
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                NotifyError::new(
                    false,
                    FailureReason::Other,
                    format!("read {name}_file: {e}"),
                )
            }),
        (None, None) => Err(NotifyError::new(
            false,
            FailureReason::Other,
            format!("no {name}"),
        )),
    }
}

#[async_trait::async_trait]
impl Notifier for Pushover {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let c = &self.conf;
        let token = read_key(c.token.as_ref(), c.token_file.as_ref(), "token").await?;
        let user = read_key(c.user_key.as_ref(), c.user_key_file.as_ref(), "user_key").await?;
        let query = self.query(ctx, &data, &token, &user)?;
        let url = format!("{PUSHOVER_API_URL}?{query}");
        let req = self
            .client
            .request(
                reqwest::Method::POST,
                &url,
                Some(Vec::new()),
                Some("text/plain"),
            )
            .await?
            // Go sends the length of the empty body; hyper would not.
            .header(reqwest::header::CONTENT_LENGTH, "0");
        // The query carries the token and the user key: never in an error.
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // Alertmanager retries 5xx only; a 429 is worth another try once
        // its Retry-After has passed (Herald's rule).
        let status = check_status(&resp, &[429]);
        let body = resp.bytes().await.unwrap_or_default();
        status.map_err(|mut e| {
            let details = String::from_utf8_lossy(&body);
            if !details.is_empty() {
                e.message = format!("{}: {details}", e.message);
            }
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NotifyCtx {
        NotifyCtx {
            group_key: Arc::from("{}:{alertname=\"A\"}"),
            group_labels: Default::default(),
            route_labels: Default::default(),
            receiver: Arc::from("r"),
            now: jiff::Timestamp::now(),
            repeat_interval: std::time::Duration::from_secs(3600),
            deadline: tokio::time::Instant::now(),
            cancel: Default::default(),
            stopping: Default::default(),
            firing_hashes: Vec::new(),
            resolved_hashes: Vec::new(),
            reason: None,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            marker: Default::default(),
            receiver_data: Default::default(),
            muted_resolved: Vec::new(),
            alertmanager_rules: false,
        }
    }

    /// The data of a notification without alerts (status `resolved`).
    fn data() -> Value {
        crate::notify::template_data(&ctx(), &[], "http://am")
    }

    fn pushover(yaml: &str) -> Pushover {
        let c: PushoverConfig = serde_saphyr::from_str(yaml).unwrap();
        Pushover::new(&c, Arc::new(Templates::load(&[]).unwrap()), "http://am").unwrap()
    }

    fn params(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn parameters_are_cut_to_pushover_limits_in_runes() {
        let long = "ü".repeat(2000);
        let p = pushover(&format!(
            "{{title: '{long}', message: '  {long}', url: 'http://x/{long}', ttl: 1m, monospace: true}}"
        ));
        let q = p.query(&ctx(), &data(), "tok", "usr").unwrap();
        let got = params(&q);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "device",
                "expire",
                "message",
                "monospace",
                "priority",
                "retry",
                "sound",
                "title",
                "token",
                "ttl",
                "url",
                "url_title",
                "user"
            ]
        );
        let v = |k: &str| got.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(v("title").chars().count(), 250);
        assert!(v("title").ends_with("ü…"));
        // Cut first, then trimmed: the leading blanks cost two runes.
        assert_eq!(v("message").chars().count(), 1022);
        assert_eq!(v("url").chars().count(), 512);
        assert_eq!(
            (v("retry"), v("expire"), v("ttl")),
            ("60".into(), "3600".into(), "60".into())
        );
        assert_eq!(v("priority"), "0");
    }

    #[test]
    fn an_empty_message_says_so_and_html_is_escaped() {
        let p = pushover("{message: '  ', url: ''}");
        let got = params(&p.query(&ctx(), &data(), "t", "u").unwrap());
        assert!(got.contains(&("message".into(), "(no details)".into())));
        assert!(!got.iter().any(|(k, _)| k == "ttl" || k == "html"));
        let p = pushover("{message: '{{ \"<b>\" }}', html: true}");
        let got = params(&p.query(&ctx(), &data(), "t", "u").unwrap());
        assert!(got.contains(&("html".into(), "1".into())));
        assert!(
            got.contains(&("message".into(), "&lt;b&gt;".into())),
            "{got:?}"
        );
    }
}
