//! The Telegram integration (`notify/telegram`): one `sendMessage` call of
//! the Bot API per notification, made as Alertmanager's telebot client
//! makes it: `POST {api_url}/bot<token>/sendMessage` with a JSON object
//! whose values are all strings, keys in Go's map order.
//!
//! The Bot API answers `{"ok":true,"result":{...}}` or
//! `{"ok":false,"error_code":N,"description":"..."}` (with
//! `parameters.retry_after` under flood control). The token is part of the
//! URL, so no URL ever goes into an error or a log.

mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use config::TelegramConfig;

use super::http::{parse_retry_after, transport_error, truncate_runes, Client};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::Templates;

/// Telegram refuses longer messages.
const MAX_MESSAGE_RUNES: usize = 4096;

/// What an HTML message too long for Telegram is replaced with: cutting
/// HTML could leave a tag open, which Telegram refuses. Go's raw string,
/// the indentation of its second line included.
const HTML_TOO_LONG: &str = "Alertmanager notification could not be sent: message length exceeds Telegram limits.\n\t\t\tPlease check the template used for producing the message content.";

/// Where a value is read from on each notification, so that a rotated
/// file takes effect without a reload.
enum Source<T> {
    Inline(T),
    File(String),
}

pub struct Telegram {
    conf: TelegramConfig,
    client: Client,
    api_url: String,
    token: Source<String>,
    chat: Source<i64>,
    templates: Arc<Templates>,
    external_url: String,
}

impl Telegram {
    fn new(
        conf: &TelegramConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Telegram, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let api_url = conf
            .api_url
            .clone()
            .ok_or(BuildError::Missing("telegram config without api_url"))?;
        // The file wins, as in Go, where the inline token is only read
        // when no file is named.
        let token = match conf.bot_token_file.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => Source::File(f.to_string()),
            None => Source::Inline(
                conf.bot_token
                    .as_ref()
                    .map(|s| s.expose().to_string())
                    .unwrap_or_default(),
            ),
        };
        let chat = match conf.chat_id_file.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => Source::File(f.to_string()),
            None => Source::Inline(conf.chat_id),
        };
        Ok(Telegram {
            conf: conf.clone(),
            client,
            api_url,
            token,
            chat,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The message text: in HTML mode rendered with HTML escaping and
    /// replaced when too long, otherwise cut to Telegram's limit.
    fn text(&self, ctx: &NotifyCtx, data: &crate::template::Value) -> Result<String, NotifyError> {
        if self.conf.parse_mode == "HTML" {
            let text = self
                .templates
                .execute_html_text(&self.conf.message, data)
                .map_err(NotifyError::template)?;
            if text.chars().count() > MAX_MESSAGE_RUNES {
                tracing::warn!(key = %ctx.group_key, max_runes = MAX_MESSAGE_RUNES, "Message too long for Telegram, sending the fallback text");
                return Ok(HTML_TOO_LONG.to_string());
            }
            return Ok(text);
        }
        let text = self
            .templates
            .execute_text(&self.conf.message, data)
            .map_err(NotifyError::template)?;
        let (text, truncated) = truncate_runes(text, MAX_MESSAGE_RUNES);
        if truncated {
            tracing::warn!(key = %ctx.group_key, max_runes = MAX_MESSAGE_RUNES, "Truncated message");
        }
        Ok(text)
    }

    async fn token(&self) -> Result<String, NotifyError> {
        match &self.token {
            Source::Inline(t) => Ok(t.clone()),
            Source::File(f) => read_file(f).await,
        }
    }

    async fn chat_id(&self) -> Result<i64, NotifyError> {
        match &self.chat {
            Source::Inline(id) => Ok(*id),
            Source::File(f) => {
                let text = read_file(f).await?;
                text.parse::<i64>().map_err(|e| {
                    NotifyError::new(
                        true,
                        FailureReason::Other,
                        format!("could not parse chat_id from {f}: {e}"),
                    )
                })
            }
        }
    }
}

/// A file read for a notification: a missing file may yet appear (a
/// secret being mounted), so Go retries, and so does Herald.
async fn read_file(path: &str) -> Result<String, NotifyError> {
    tokio::fs::read_to_string(path)
        .await
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("could not read {path}: {e}"),
            )
        })
}

/// The `sendMessage` body as telebot writes it: a Go `map[string]string`,
/// so every value a string, keys sorted, options only when they are set.
fn body(conf: &TelegramConfig, chat_id: i64, text: String) -> Vec<u8> {
    let mut m: BTreeMap<&str, String> = BTreeMap::new();
    m.insert("chat_id", chat_id.to_string());
    m.insert("text", text);
    m.insert("disable_web_page_preview", "true".into());
    if conf.disable_notifications {
        m.insert("disable_notification", "true".into());
    }
    if !conf.parse_mode.is_empty() {
        m.insert("parse_mode", conf.parse_mode.clone());
    }
    if conf.message_thread_id != 0 {
        m.insert("message_thread_id", conf.message_thread_id.to_string());
    }
    let mut out = crate::gojson::to_vec(&m);
    out.push(b'\n');
    out
}

/// What the Bot API says in every answer.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error_code: u16,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Option<Parameters>,
    #[serde(default)]
    result: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Reads the Bot API's answer. Go's telebot looks at the body only and
/// retries every error; Herald classifies the error by Telegram's
/// `error_code` as Alertmanager's main branch labels it (#5375) and, as
/// for every integration, retries what can succeed later: 5xx, 429 (no
/// sooner than `retry_after`) and answers that are not the Bot API's,
/// while a refusal (bad chat, bad token, bad HTML) fails at once.
fn check_answer(
    status: u16,
    retry_after_header: Option<std::time::Duration>,
    body: &[u8],
) -> Result<Option<serde_json::Value>, NotifyError> {
    let details = || String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            // Not the Bot API speaking (a proxy, a load balancer): its
            // status says what it is worth.
            if !(200..300).contains(&status) {
                let retryable = status >= 500 || status == 429;
                let mut err = NotifyError::new(
                    retryable,
                    FailureReason::from_status(status),
                    format!("unexpected status code {status}: {}", details().trim()),
                );
                err.retry_after = retry_after_header.filter(|_| status == 429 || status == 503);
                return Err(err);
            }
            return Err(NotifyError::new(
                true,
                FailureReason::Other,
                format!("telebot: could not read the Bot API's answer: {e}"),
            ));
        }
    };
    if answer.ok {
        return Ok(answer.result);
    }
    let code = if answer.error_code != 0 {
        answer.error_code
    } else {
        status
    };
    let mut err = NotifyError::new(
        code >= 500 || code == 429 || code < 400,
        if code == 429 {
            FailureReason::RateLimited
        } else {
            FailureReason::from_status(code)
        },
        format!("telegram: {} ({code})", answer.description),
    );
    if code == 429 {
        err.retry_after = answer
            .parameters
            .and_then(|p| p.retry_after)
            .map(std::time::Duration::from_secs)
            .or(retry_after_header);
    }
    Err(err)
}

#[async_trait::async_trait]
impl Notifier for Telegram {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let text = self.text(ctx, &data)?;
        let token = self.token().await?;
        let chat_id = self.chat_id().await?;
        let url = format!("{}/bot{token}/sendMessage", self.api_url);
        let shown = format!("{}/bot<redacted>/sendMessage", self.api_url);
        let req = self
            .client
            .post_json(&url, body(&self.conf, chat_id, text))
            .await?;
        let resp = super::http::send(req)
            .await
            .map_err(|e| transport_error(&shown, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let bytes = resp.bytes().await.map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("telebot: reading the answer: {}", e.without_url()),
            )
        })?;
        let result = check_answer(status, retry_after, &bytes)?;
        if let Some(r) = result {
            tracing::debug!(
                key = %ctx.group_key,
                message_id = %r.get("message_id").unwrap_or(&serde_json::Value::Null),
                chat_id = %r.pointer("/chat/id").unwrap_or(&serde_json::Value::Null),
                "Telegram message successfully published"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::registry::IntegrationConfig;
    use crate::notify::GlobalConfig;
    use std::time::Duration;

    fn conf(yaml: &str) -> TelegramConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_body_is_a_map_of_strings_in_go_order() {
        let c = conf("{chat_id: -100, message_thread_id: 7, disable_notifications: true}");
        let b = String::from_utf8(body(&c, -100, "<b>x</b> & y".into())).unwrap();
        assert_eq!(
            b,
            "{\"chat_id\":\"-100\",\"disable_notification\":\"true\",\"disable_web_page_preview\":\"true\",\"message_thread_id\":\"7\",\"parse_mode\":\"HTML\",\"text\":\"\\u003cb\\u003ex\\u003c/b\\u003e \\u0026 y\"}\n"
        );
        // An explicit empty parse mode sends none; unset options are left out.
        let c = conf("{chat_id: 1, parse_mode: ''}");
        let b = String::from_utf8(body(&c, 1, "t".into())).unwrap();
        assert_eq!(
            b,
            "{\"chat_id\":\"1\",\"disable_web_page_preview\":\"true\",\"text\":\"t\"}\n"
        );
    }

    #[test]
    fn bot_api_answers_are_classified() {
        let ok = br#"{"ok":true,"result":{"message_id":5,"chat":{"id":1}}}"#;
        assert_eq!(
            check_answer(200, None, ok).unwrap().unwrap()["message_id"],
            5
        );
        let e = check_answer(
            400,
            None,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.retryable, e.reason, e.message.as_str()),
            (
                false,
                FailureReason::ClientError,
                "telegram: Bad Request: chat not found (400)"
            )
        );
        let e = check_answer(
            401,
            None,
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
        .unwrap_err();
        assert_eq!((e.retryable, e.reason), (false, FailureReason::AuthError));
        // Flood control: retried, no sooner than Telegram asked.
        let e = check_answer(
            429,
            Some(Duration::from_secs(1)),
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 9","parameters":{"retry_after":9}}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.retryable, e.reason, e.retry_after),
            (
                true,
                FailureReason::RateLimited,
                Some(Duration::from_secs(9))
            )
        );
        let e = check_answer(
            500,
            None,
            br#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
        )
        .unwrap_err();
        assert_eq!((e.retryable, e.reason), (true, FailureReason::ServerError));
        // Not the Bot API: the status decides.
        let e = check_answer(502, None, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!((e.retryable, e.reason), (true, FailureReason::ServerError));
        let e = check_answer(404, None, b"404 page not found").unwrap_err();
        assert_eq!((e.retryable, e.reason), (false, FailureReason::ClientError));
        let e = check_answer(200, None, b"ok").unwrap_err();
        assert!(e.retryable);
    }

    #[test]
    fn config_checks_and_globals() {
        let g = GlobalConfig::default();
        let mut c = conf("{chat_id: 1, bot_token: t}");
        c.apply_global(&g, "r").unwrap();
        assert_eq!(c.api_url.as_deref(), Some("https://api.telegram.org"));
        assert!(c.send_resolved);
        let mut c = conf("{chat_id: 1}");
        let e = c.apply_global(&g, "r").unwrap_err();
        assert_eq!(
            e.message,
            "missing bot_token or bot_token_file on telegram_config"
        );
        let g2 = GlobalConfig {
            telegram_bot_token_file: Some("/run/token".into()),
            ..GlobalConfig::default()
        };
        c.apply_global(&g2, "r").unwrap();
        assert_eq!(c.bot_token_file.as_deref(), Some("/run/token"));
        for (yaml, msg) in [
            ("{bot_token: t}", "missing chat_id or chat_id_file on telegram_config"),
            ("{bot_token: t, chat_id: 1, chat_id_file: f}", "at most one of chat_id & chat_id_file must be configured"),
            ("{bot_token: t, bot_token_file: f, chat_id: 1}", "at most one of bot_token & bot_token_file must be configured"),
            ("{bot_token: t, chat_id: 1, parse_mode: html}", "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string"),
        ] {
            let e = conf(yaml).apply_global(&g, "r").unwrap_err();
            assert_eq!(e.message, msg, "{yaml}");
        }
    }
}
