//! `webhook_configs`: a URL (inline or in a file) and the HTTP client.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig};
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
    /// Shown in clear in `GET /api/v2/status`, as Alertmanager 0.25 does, so
    /// that its `amtool` can parse the answer (see docs/compatibility.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
}

impl IntegrationConfig for WebhookConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn apply_global(&mut self, global: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        let http = self
            .http_config
            .get_or_insert_with(|| global.http_config.clone());
        http.validate()
            .map_err(|m| invalid(format!("{f}.http_config"), m))?;
        match (&self.url, &self.url_file) {
            (None, None) => Err(invalid(f, "one of url or url_file must be configured")),
            (Some(_), Some(_)) => Err(invalid(
                f,
                "at most one of url & url_file must be configured",
            )),
            (Some(u), None) => check_http_url(u).map_err(|m| invalid(format!("{f}.url"), m)),
            (None, Some(_)) => Ok(()),
        }
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Webhook::new(self, ctx.external_url)?))
    }
}
