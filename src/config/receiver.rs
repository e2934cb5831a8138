//! Receivers: a name and lists of integration configs. Herald delivers to
//! webhooks, e-mail and Slack; every other integration Alertmanager knows is
//! recognised by name and refused with a clear error rather than silently
//! dropped.

use serde::{Deserialize, Serialize};

use super::{
    invalid, ConfigError, EmailConfig, GlobalConfig, HttpClientConfig, SlackConfig, Unsupported,
};
use crate::duration::PromDuration;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "super::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(
        default,
        deserialize_with = "super::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub email_configs: Vec<EmailConfig>,
    #[serde(
        default,
        deserialize_with = "super::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushover_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webex_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteams_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteamsv2_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incidentio_configs: Option<Vec<Unsupported>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mattermost_configs: Option<Vec<Unsupported>>,
}

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

fn yes() -> bool {
    true
}

impl ReceiverConfig {
    /// The integration types Herald cannot deliver to yet that this receiver
    /// configures.
    fn unsupported(&self) -> Vec<&'static str> {
        let all = [
            ("pagerduty", &self.pagerduty_configs),
            ("opsgenie", &self.opsgenie_configs),
            ("wechat", &self.wechat_configs),
            ("pushover", &self.pushover_configs),
            ("victorops", &self.victorops_configs),
            ("sns", &self.sns_configs),
            ("telegram", &self.telegram_configs),
            ("webex", &self.webex_configs),
            ("discord", &self.discord_configs),
            ("msteams", &self.msteams_configs),
            ("msteamsv2", &self.msteamsv2_configs),
            ("jira", &self.jira_configs),
            ("rocketchat", &self.rocketchat_configs),
            ("incidentio", &self.incidentio_configs),
            ("mattermost", &self.mattermost_configs),
        ];
        all.into_iter()
            .filter(|(_, v)| v.as_ref().is_some_and(|v| !v.is_empty()))
            .map(|(n, _)| n)
            .collect()
    }

    /// Copies global defaults into the integration configs and validates
    /// them, as Alertmanager's loader does per receiver.
    pub(super) fn apply_global(
        &mut self,
        global: &GlobalConfig,
        field: &str,
    ) -> Result<(), ConfigError> {
        if let Some(kind) = self.unsupported().first() {
            return Err(invalid(
                format!("{field}.{kind}_configs"),
                format!("receiver {:?}: the {kind} integration is not supported by Herald yet (webhook_configs, email_configs and slack_configs are)", self.name),
            ));
        }
        for (i, e) in self.email_configs.iter_mut().enumerate() {
            e.apply_global(global, &format!("{field}.email_configs[{i}]"))?;
        }
        for (i, s) in self.slack_configs.iter_mut().enumerate() {
            s.apply_global(global, &format!("{field}.slack_configs[{i}]"))?;
        }
        for (i, w) in self.webhook_configs.iter_mut().enumerate() {
            let f = format!("{field}.webhook_configs[{i}]");
            let http = w
                .http_config
                .get_or_insert_with(|| global.http_config.clone());
            http.validate()
                .map_err(|m| invalid(format!("{f}.http_config"), m))?;
            match (&w.url, &w.url_file) {
                (None, None) => {
                    return Err(invalid(&f, "one of url or url_file must be configured"))
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &f,
                        "at most one of url & url_file must be configured",
                    ))
                }
                (Some(u), None) => check_http_url(u).map_err(|m| invalid(format!("{f}.url"), m))?,
                (None, Some(_)) => {}
            }
        }
        Ok(())
    }
}

/// An absolute http(s) URL. The URL itself is left out of the message: it
/// may hold a secret (a Slack webhook URL is one).
pub(super) fn check_http_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("invalid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err("scheme required for webhook url".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("missing host for URL".into());
    }
    Ok(())
}
