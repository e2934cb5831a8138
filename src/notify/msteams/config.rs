//! `msteams_configs`: an Office 365 connector webhook (inline or in a file)
//! and the three templates of the MessageCard.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The webhook URL carries its own credential: shown as `<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    #[serde(default = "d_title", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default = "d_summary", skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default = "d_text", skip_serializing_if = "String::is_empty")]
    pub text: String,
}

fn d_title() -> String {
    "{{ template \"msteams.default.title\" . }}".into()
}
fn d_summary() -> String {
    "{{ template \"msteams.default.summary\" . }}".into()
}
fn d_text() -> String {
    "{{ template \"msteams.default.text\" . }}".into()
}

/// The checks Go's `MSTeamsConfig` and `MSTeamsV2Config` share: exactly
/// one of `webhook_url` and `webhook_url_file` (an empty file name counts
/// as unset), and a URL that is http(s) with a host. `<secret>` passes, as
/// in Alertmanager, so that a config read back from `/api/v2/status` loads.
pub(crate) fn check_webhook_url(
    url: Option<&Secret>,
    file: Option<&String>,
    f: &str,
) -> Result<(), FieldError> {
    let file = file.filter(|s| !s.is_empty());
    match (url, file) {
        (None, None) => Err(invalid(
            f,
            "one of webhook_url or webhook_url_file must be configured",
        )),
        (Some(_), Some(_)) => Err(invalid(
            f,
            "at most one of webhook_url & webhook_url_file must be configured",
        )),
        (Some(u), None) => check_secret_url(u, &format!("{f}.webhook_url")),
        (None, Some(_)) => Ok(()),
    }
}

/// Go's `SecretURL`: `<secret>` or an http(s) URL with a host.
pub(crate) fn check_secret_url(u: &Secret, f: &str) -> Result<(), FieldError> {
    if u.expose() == crate::commoncfg::SECRET_TOKEN {
        return Ok(());
    }
    check_http_url(u.expose()).map_err(|m| invalid(f, m))
}

impl IntegrationConfig for MsTeamsConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn apply_global(&mut self, global: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        check_webhook_url(self.webhook_url.as_ref(), self.webhook_url_file.as_ref(), f)?;
        global.inherit_http_config(&mut self.http_config, f)
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        vec![
            ("title".into(), self.title.as_str()),
            ("summary".into(), self.summary.as_str()),
            ("text".into(), self.text.as_str()),
        ]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::MsTeams::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
