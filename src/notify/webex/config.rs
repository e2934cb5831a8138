//! `webex_configs`: the Messages API URL, the room (a template) and the
//! message template; the bot's token comes from `http_config.authorization`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebexConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// `global.webex_api_url` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default = "d_message")]
    pub message: String,
    #[serde(default)]
    pub room_id: String,
}

fn d_message() -> String {
    "{{ template \"webex.default.message\" . }}".into()
}

impl IntegrationConfig for WebexConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `WebexConfig.UnmarshalYAML`'s checks (made on the config as
    /// written, so a global `http_config` does not supply the
    /// authorization), then the loader's defaults.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if let Some(u) = &self.api_url {
            check_http_url(u).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        }
        if self.room_id.is_empty() {
            return Err(invalid(f, "missing room_id on webex_config"));
        }
        // prometheus/common turns `bearer_token(_file)` into an
        // `authorization` while parsing, so either satisfies Go's check.
        let authorized = self.http_config.as_ref().is_some_and(|h| {
            h.authorization.is_some()
                || h.bearer_token
                    .as_ref()
                    .is_some_and(|t| !t.expose().is_empty())
                || h.bearer_token_file
                    .as_deref()
                    .is_some_and(|f| !f.is_empty())
        });
        if !authorized {
            return Err(invalid(
                f,
                "missing webex_configs.http_config.authorization",
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        if self.api_url.is_none() {
            self.api_url = Some(g.webex_api_url.clone());
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        vec![
            ("message".into(), self.message.as_str()),
            ("room_id".into(), self.room_id.as_str()),
        ]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Webex::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
