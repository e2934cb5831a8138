//! `webhook_configs`: a URL (inline or in a file) and the HTTP client.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::duration::PromDuration;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// A secret since Alertmanager 0.26 (a URL often carries a token):
    /// `<secret>` in `GET /api/v2/status`, as 0.33.1 and 0.34 show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
    /// Sent instead of the default JSON, every string rendered as a
    /// template (see `payload.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl IntegrationConfig for WebhookConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn apply_global(&mut self, global: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        global.inherit_http_config(&mut self.http_config, f)?;
        match (&self.url, &self.url_file) {
            (None, None) => Err(invalid(f, "one of url or url_file must be configured")),
            (Some(_), Some(_)) => Err(invalid(
                f,
                "at most one of url & url_file must be configured",
            )),
            // What `GET /api/v2/status` shows loads again, as in Go (the
            // notifier then fails to deliver, as Alertmanager's does).
            (Some(u), None) if u.expose() == crate::commoncfg::SECRET_TOKEN => Ok(()),
            // A templated URL is only known per notification: at load it
            // has to parse as a template, as in Alertmanager.
            (Some(u), None) if super::payload::is_templated(u.expose()) => {
                crate::template::Templates::with_builtins()
                    .check_text(u.expose())
                    .map_err(|e| {
                        invalid(format!("{f}.url"), format!("invalid template syntax: {e}"))
                    })
            }
            (Some(u), None) => {
                check_http_url(u.expose()).map_err(|m| invalid(format!("{f}.url"), m))
            }
            (None, Some(_)) => Ok(()),
        }
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts = Vec::new();
        if let Some(p) = &self.payload {
            payload_texts(p, "payload", &mut texts);
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Webhook::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

/// Every string of a payload (keys too) with its path, for the load-time
/// template check.
fn payload_texts<'a>(v: &'a serde_json::Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        serde_json::Value::String(s) => out.push((at.to_string(), s)),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                payload_texts(item, &format!("{at}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                let path = format!("{at}.{k}");
                out.push((path.clone(), k));
                payload_texts(item, &path, out);
            }
        }
        _ => {}
    }
}
