//! The webhook integration (`notify/webhook`): POSTs Alertmanager's version
//! "4" JSON payload.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{BoxFuture, FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::config::{HttpClientConfig, WebhookConfig};
use crate::model::Alert;
use crate::template::Data;

/// `User-Agent` of every outgoing request. Alertmanager sends
/// `Alertmanager/<version>`; receivers that key on the product name keep
/// working.
pub fn user_agent() -> String {
    format!("Alertmanager/{}", env!("CARGO_PKG_VERSION"))
}

/// A credential given inline or in a file read at each notification (so a
/// rotated secret takes effect without a reload).
pub(super) enum Credential {
    Inline(String),
    File(String),
}

impl Credential {
    pub(super) fn from(inline: Option<&str>, file: Option<&String>) -> Option<Credential> {
        match (inline, file) {
            (Some(s), _) => Some(Credential::Inline(s.to_string())),
            (None, Some(f)) => Some(Credential::File(f.clone())),
            (None, None) => None,
        }
    }

    pub(super) fn read(&self) -> Result<String, NotifyError> {
        match self {
            Credential::Inline(s) => Ok(s.clone()),
            Credential::File(f) => read_secret_file(f),
        }
    }
}

pub struct Webhook {
    client: reqwest::Client,
    http: HttpClientConfig,
    url: Credential,
    max_alerts: u64,
    external_url: String,
}

/// The payload: template data plus three webhook fields, in Go's order.
#[derive(Serialize)]
struct Message<'a> {
    #[serde(flatten)]
    data: &'a Data,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

/// Builds the HTTP client an integration's `http_config` describes.
pub fn http_client(
    cfg: &HttpClientConfig,
    timeout: Option<Duration>,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().user_agent(user_agent());
    b = b.redirect(if cfg.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    });
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(p) = &cfg.proxy_url {
        let mut proxy = reqwest::Proxy::all(p).map_err(|e| format!("proxy_url: {e}"))?;
        if let Some(np) = &cfg.no_proxy {
            proxy = proxy.no_proxy(reqwest::NoProxy::from_string(np));
        }
        b = b.proxy(proxy);
    } else if cfg.proxy_from_environment != Some(true) {
        b = b.no_proxy();
    }
    if let Some(tls) = &cfg.tls_config {
        // One rustls configuration for every TLS client Herald has, so
        // `server_name` and the version bounds hold here too.
        let tls = crate::tls::client_config(tls, std::path::Path::new(""), "tls_config")
            .map_err(|e| e.to_string())?;
        b = b.tls_backend_preconfigured(tls);
    }
    b.build().map_err(|e| format!("http client: {e}"))
}

fn read_secret_file(path: &str) -> Result<String, NotifyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| NotifyError::new(false, FailureReason::Other, format!("reading {path}: {e}")))
}

/// Adds the credentials of `http_config` to a request.
pub fn authorize(
    mut req: reqwest::RequestBuilder,
    cfg: &HttpClientConfig,
) -> Result<reqwest::RequestBuilder, NotifyError> {
    if let Some(ba) = &cfg.basic_auth {
        let user = match (&ba.username, &ba.username_file) {
            (_, Some(f)) => read_secret_file(f)?,
            (Some(u), None) => u.clone(),
            (None, None) => String::new(),
        };
        let pass = match (&ba.password, &ba.password_file) {
            (_, Some(f)) => Some(read_secret_file(f)?),
            (Some(p), None) => Some(p.expose().to_string()),
            (None, None) => None,
        };
        req = req.basic_auth(user, pass);
    }
    let bearer = match (&cfg.bearer_token, &cfg.bearer_token_file) {
        (_, Some(f)) => Some(("Bearer".to_string(), read_secret_file(f)?)),
        (Some(t), None) => Some(("Bearer".to_string(), t.expose().to_string())),
        _ => None,
    };
    let authz = match &cfg.authorization {
        Some(a) => {
            let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
            match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => Some((kind, read_secret_file(f)?)),
                (Some(c), None) => Some((kind, c.expose().to_string())),
                (None, None) => None,
            }
        }
        None => None,
    };
    if let Some((kind, cred)) = bearer.or(authz) {
        req = req.header(reqwest::header::AUTHORIZATION, format!("{kind} {cred}"));
    }
    Ok(req)
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig, external_url: &str) -> Result<Webhook, String> {
        let http = cfg.http_config.clone().unwrap_or_default();
        let client = http_client(&http, cfg.timeout.map(|d| d.0).filter(|d| !d.is_zero()))?;
        let url = Credential::from(cfg.url.as_deref(), cfg.url_file.as_ref())
            .ok_or("webhook without url")?;
        Ok(Webhook {
            client,
            http,
            url,
            max_alerts: cfg.max_alerts,
            external_url: external_url.to_string(),
        })
    }
}

impl Notifier for Webhook {
    fn notify<'a>(
        &'a self,
        ctx: &'a NotifyCtx,
        alerts: &'a [Arc<Alert>],
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let (kept, truncated) = if self.max_alerts > 0 && alerts.len() as u64 > self.max_alerts
            {
                (
                    &alerts[..self.max_alerts as usize],
                    alerts.len() as u64 - self.max_alerts,
                )
            } else {
                (alerts, 0)
            };
            let mut data = Data::new(
                &ctx.receiver,
                &ctx.group_labels,
                kept,
                ctx.now,
                &self.external_url,
            );
            data.notification_reason = ctx.reason.map(|r| r.as_str());
            let mut body = crate::gojson::to_vec(&Message {
                data: &data,
                version: "4",
                group_key: &ctx.group_key,
                truncated_alerts: truncated,
            });
            body.push(b'\n');
            let url = self.url.read()?;
            let req = self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            let req = authorize(req, &self.http)?;
            let resp = req.send().await.map_err(|e| {
                NotifyError::new(
                    true,
                    FailureReason::Other,
                    format!("Post \"{}\": {e}", redact(&url)),
                )
            })?;
            check_status(resp.status().as_u16())
        })
    }
}

/// Hides credentials in a URL before it goes into an error or a log.
fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) => {
            if p.password().is_some() {
                let _ = p.set_password(Some("xxxxx"));
            }
            p.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// `notify.Retrier.Check` for the webhook: 2xx succeeds, 5xx is retried,
/// anything else fails for this flush.
pub fn check_status(code: u16) -> Result<(), NotifyError> {
    if (200..300).contains(&code) {
        return Ok(());
    }
    Err(NotifyError::new(
        (500..600).contains(&code),
        FailureReason::from_status(code),
        format!("unexpected status code {code}"),
    ))
}
