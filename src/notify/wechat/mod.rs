//! The WeChat Work integration (`notify/wechat`): an access token fetched
//! with the application's secret (`gettoken`) and kept for two hours, then
//! the message POSTed to `message/send` with it.
//!
//! WeChat answers HTTP 200 with an `errcode` in the body: 0 is success,
//! 42001 (the token expired early) drops the token and retries, anything
//! else is permanent. Any status but 200 is retried, as in Alertmanager;
//! a 429 or 503 no sooner than its `Retry-After`.

mod config;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use config::WechatConfig;

use super::http::{check_status, encode_query, transport_error, Client};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// Alertmanager fetches a new token once the one it has is this old.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// WeChat's `errcode` for an access token that is no longer valid.
const TOKEN_EXPIRED: i64 = 42001;

pub struct Wechat {
    conf: WechatConfig,
    client: Client,
    api_url: url::Url,
    templates: Arc<Templates>,
    external_url: String,
    /// The access token and when it was fetched. Never held across an
    /// await.
    token: Mutex<Option<(String, Instant)>>,
}

/// The message in Go's field order. Both content objects are always
/// there (Go's `omitempty` does not drop a struct), one of them empty.
#[derive(Serialize)]
struct Message {
    text: Content,
    #[serde(skip_serializing_if = "String::is_empty")]
    touser: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    toparty: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    totag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    agentid: String,
    safe: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    msgtype: &'static str,
    markdown: Content,
}

#[derive(Serialize, Default)]
struct Content {
    content: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
}

#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl Wechat {
    fn new(
        conf: &WechatConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Wechat, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let api_url = conf
            .api_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or(BuildError::Missing("wechat config without api_url"))?;
        Ok(Wechat {
            conf: conf.clone(),
            client,
            api_url,
            templates,
            external_url: external_url.to_string(),
            token: Mutex::new(None),
        })
    }

    /// `api_url` with `rel` appended to its path and `query` as its query.
    fn url(&self, rel: &str, query: &str) -> String {
        let mut u = self.api_url.clone();
        let path = format!("{}{rel}", u.path());
        u.set_path(&path);
        u.set_query((!query.is_empty()).then_some(query));
        u.to_string()
    }

    /// The cached token while it is younger than two hours, else a new one.
    async fn access_token(
        &self,
        t: &impl Fn(&str) -> Result<String, NotifyError>,
    ) -> Result<String, NotifyError> {
        {
            let cached = self.token.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(token) = fresh_token(cached.as_ref(), Instant::now()) {
                return Ok(token.to_string());
            }
        }
        let secret = match (&self.conf.api_secret_file, &self.conf.api_secret) {
            (Some(f), _) if !f.is_empty() => tokio::fs::read_to_string(f)
                .await
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    NotifyError::new(false, FailureReason::Other, format!("reading {f}: {e}"))
                })?,
            (_, Some(s)) => s.expose().to_string(),
            _ => String::new(),
        };
        let corp_id = self.conf.corp_id.clone().unwrap_or_default();
        let query = encode_query(&[("corpsecret", &t(&secret)?), ("corpid", &t(&corp_id)?)]);
        let req = self
            .client
            .request(
                reqwest::Method::GET,
                &self.url("gettoken", &query),
                None,
                None,
            )
            .await?;
        // The URL carries the secret: never in an error.
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        // WeChat reports a bad secret in the body, with status 200. Any
        // other status is the way there failing: Alertmanager then fails
        // on the body for good, Herald retries a 5xx or 429 (after its
        // Retry-After) as for the message.
        if !resp.status().is_success() {
            check_status(&resp, &[429])?;
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            NotifyError::new(
                false,
                FailureReason::Other,
                format!("decoding the access token answer: {e}"),
            )
        })?;
        if answer.access_token.is_empty() {
            return Err(NotifyError::new(
                false,
                FailureReason::Other,
                format!("invalid APISecret for CorpID: {corp_id}"),
            ));
        }
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((answer.access_token.clone(), Instant::now()));
        Ok(answer.access_token)
    }

    /// The JSON body of `message/send`; a template error is permanent.
    fn payload(&self, data: &Value) -> Result<Vec<u8>, NotifyError> {
        let c = &self.conf;
        let t = |text: &str| self.render(text, data);
        let content = Content {
            content: t(&c.message)?,
        };
        let (msgtype, text, markdown) = if c.message_type == "markdown" {
            ("markdown", Content::default(), content)
        } else {
            ("text", content, Content::default())
        };
        let msg = Message {
            text,
            touser: t(&c.to_user)?,
            toparty: t(&c.to_party)?,
            totag: t(&c.to_tag)?,
            agentid: t(&c.agent_id)?,
            safe: "0",
            msgtype,
            markdown,
        };
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok(body)
    }

    fn render(&self, text: &str, data: &Value) -> Result<String, NotifyError> {
        self.templates.execute_text(text, data).map_err(|e| {
            NotifyError::new(
                false,
                FailureReason::Other,
                format!("templating error: {e}"),
            )
        })
    }
}

/// The cached token unless it is more than two hours old (Alertmanager's
/// rule: WeChat's own `expires_in` is not read).
fn fresh_token(cached: Option<&(String, Instant)>, now: Instant) -> Option<&str> {
    cached
        .filter(|(_, at)| now.saturating_duration_since(*at) <= TOKEN_LIFETIME)
        .map(|(t, _)| t.as_str())
}

/// The message query: `api_url`'s own parameters with `access_token` set.
fn send_query(existing: Option<&str>, token: &str) -> String {
    let pairs: Vec<(String, String)> = existing
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .filter(|(k, _)| k != "access_token")
                .collect()
        })
        .unwrap_or_default();
    let mut refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    refs.push(("access_token", token));
    encode_query(&refs)
}

/// WeChat's answer to a message: any status but 200 is retried; then the
/// body's `errcode`.
async fn check_answer(resp: reqwest::Response) -> Result<(), SendOutcome> {
    if resp.status().as_u16() != 200 {
        let mut e = match check_status(&resp, &[]) {
            Err(e) => e,
            // A 2xx other than 200.
            Ok(()) => NotifyError::new(
                true,
                FailureReason::Other,
                format!("unexpected status code {}", resp.status().as_u16()),
            ),
        };
        e.retryable = true;
        return Err(SendOutcome::Failed(e));
    }
    let body = resp.bytes().await.map_err(|e| {
        SendOutcome::Failed(NotifyError::new(
            true,
            FailureReason::Other,
            format!("reading the answer: {}", e.without_url()),
        ))
    })?;
    let answer: SendAnswer = serde_json::from_slice(&body).map_err(|e| {
        SendOutcome::Failed(NotifyError::new(
            true,
            FailureReason::Other,
            format!("decoding the answer: {e}"),
        ))
    })?;
    match answer.errcode {
        0 => Ok(()),
        TOKEN_EXPIRED => Err(SendOutcome::TokenExpired(NotifyError::new(
            true,
            FailureReason::Other,
            answer.errmsg,
        ))),
        _ => Err(SendOutcome::Failed(NotifyError::new(
            false,
            FailureReason::Other,
            answer.errmsg,
        ))),
    }
}

enum SendOutcome {
    Failed(NotifyError),
    /// The token is dropped, so that the retry fetches a new one.
    TokenExpired(NotifyError),
}

#[async_trait::async_trait]
impl Notifier for Wechat {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let t = |text: &str| self.render(text, &data);
        let token = self.access_token(&t).await?;
        let body = self.payload(&data)?;
        let url = self.url("message/send", &send_query(self.api_url.query(), &token));
        let req = self.client.post_json(&url, body).await?;
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error("<redacted>", e))?;
        match check_answer(resp).await {
            Ok(()) => Ok(()),
            Err(SendOutcome::Failed(e)) => Err(e),
            Err(SendOutcome::TokenExpired(e)) => {
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_for_two_hours() {
        let at = Instant::now();
        let cached = ("tok".to_string(), at);
        assert_eq!(fresh_token(Some(&cached), at), Some("tok"));
        assert_eq!(fresh_token(Some(&cached), at + TOKEN_LIFETIME), Some("tok"));
        assert_eq!(
            fresh_token(
                Some(&cached),
                at + TOKEN_LIFETIME + Duration::from_millis(1)
            ),
            None
        );
        assert_eq!(fresh_token(None, at), None);
    }

    #[test]
    fn the_message_query_keeps_the_url_parameters() {
        assert_eq!(send_query(None, "t/1"), "access_token=t%2F1");
        assert_eq!(
            send_query(Some("z=1&access_token=old&debug=1"), "t"),
            "access_token=t&debug=1&z=1"
        );
    }

    #[test]
    fn the_body_has_both_contents_as_go_writes_them() {
        let templates = Arc::new(Templates::load(&[]).unwrap());
        let conf: WechatConfig = serde_saphyr::from_str(
            "{message: 'a <b> & c', to_user: u1, agent_id: '42', message_type: markdown, api_url: 'http://x/'}",
        )
        .unwrap();
        let w = Wechat::new(&conf, templates, "http://am").unwrap();
        let body = w.payload(&Value::Nil).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"text\":{\"content\":\"\"},\"touser\":\"u1\",\"agentid\":\"42\",\"safe\":\"0\",\"msgtype\":\"markdown\",\"markdown\":{\"content\":\"a \\u003cb\\u003e \\u0026 c\"}}\n"
        );
    }

    #[test]
    fn paths_are_appended_to_the_api_url() {
        let conf: WechatConfig =
            serde_saphyr::from_str("{api_url: 'http://wx.test/cgi-bin/?x=1'}").unwrap();
        let w = Wechat::new(&conf, Arc::new(Templates::load(&[]).unwrap()), "").unwrap();
        assert_eq!(
            w.url("gettoken", "corpid=c&corpsecret=s"),
            "http://wx.test/cgi-bin/gettoken?corpid=c&corpsecret=s"
        );
    }
}
