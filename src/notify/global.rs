//! The `global:` section: the defaults every integration inherits
//! (`smtp_*`, `slack_*`, `http_config`, the API URLs of the services) and
//! `resolve_timeout`. It lives beside the integrations because they are
//! what reads it; `config` only checks the section as a whole.

use serde::{Deserialize, Serialize};

use super::email::HostPort;
use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig, Secret, TlsConfig};
use crate::duration::PromDuration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
    #[serde(default)]
    pub http_config: HttpClientConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    #[serde(default = "default_smtp_hello")]
    pub smtp_hello: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Option<HostPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Option<String>,
    #[serde(default = "yes")]
    pub smtp_require_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_force_implicit_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_app_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_app_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_app_url: Option<String>,
    #[serde(default = "default_pagerduty_url")]
    pub pagerduty_url: String,
    #[serde(default = "default_opsgenie_url")]
    pub opsgenie_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    #[serde(default = "default_wechat_url")]
    pub wechat_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Option<String>,
    /// Kept for the integrations Herald does not deliver yet, so that a
    /// current alertmanager.yml loads; checked like Alertmanager does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret_file: Option<String>,
    #[serde(default = "default_victorops_url")]
    pub victorops_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(default = "default_telegram_url")]
    pub telegram_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token_file: Option<String>,
    #[serde(default = "default_webex_url")]
    pub webex_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_id: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_id_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mattermost_webhook_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mattermost_webhook_url_file: Option<String>,
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration(std::time::Duration::from_secs(300))
}
fn default_smtp_hello() -> String {
    "localhost".into()
}
fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn default_opsgenie_url() -> String {
    "https://api.opsgenie.com/".into()
}
fn default_wechat_url() -> String {
    "https://qyapi.weixin.qq.com/cgi-bin/".into()
}
fn default_victorops_url() -> String {
    "https://alert.victorops.com/integrations/generic/20131114/alert/".into()
}
fn default_telegram_url() -> String {
    "https://api.telegram.org".into()
}
fn default_webex_url() -> String {
    "https://webexapis.com/v1/messages".into()
}

impl Default for GlobalConfig {
    fn default() -> Self {
        // An empty mapping takes every serde default above.
        serde_json::from_str("{}")
            .unwrap_or_else(|_| unreachable!("all GlobalConfig fields have defaults"))
    }
}

impl GlobalConfig {
    /// An integration without its own `http_config` takes the global one,
    /// and either is checked, as Alertmanager's loader does; `field` is
    /// the integration config's path.
    pub(crate) fn inherit_http_config(
        &self,
        own: &mut Option<HttpClientConfig>,
        field: &str,
    ) -> Result<(), FieldError> {
        own.get_or_insert_with(|| self.http_config.clone())
            .validate()
            .map_err(|m| invalid(format!("{field}.http_config"), m))
    }

    /// The section's own rules (`GlobalConfig.UnmarshalYAML` and the
    /// checks `Load` makes on it).
    pub fn check(&self) -> Result<(), FieldError> {
        self.http_config
            .validate()
            .map_err(|m| invalid("global.http_config", m))?;
        let slack_app = self.slack_app_token.is_some() || self.slack_app_token_file.is_some();
        let slack_hook = self.slack_api_url.is_some() || self.slack_api_url_file.is_some();
        // Alertmanager lets a global webhook URL stand beside an app token
        // only when it is the app URL itself (the bearer-token workaround of
        // alertmanager#2513 that users migrate from).
        let app_url = self
            .slack_app_url
            .as_deref()
            .unwrap_or(super::slack::DEFAULT_SLACK_APP_URL);
        let slack_mixed = slack_app
            && slack_hook
            && self.slack_api_url.as_ref().map(|u| u.expose()) != Some(app_url);
        // In Alertmanager's order, so the first error is the same.
        for (both, name) in [
            (
                self.slack_app_token.is_some() && self.slack_app_token_file.is_some(),
                "slack_app_token & slack_app_token_file",
            ),
            (
                self.slack_api_url.is_some() && self.slack_api_url_file.is_some(),
                "slack_api_url & slack_api_url_file",
            ),
            (
                slack_mixed,
                "slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file",
            ),
            (
                self.opsgenie_api_key.is_some() && self.opsgenie_api_key_file.is_some(),
                "opsgenie_api_key & opsgenie_api_key_file",
            ),
            (
                self.victorops_api_key.is_some() && self.victorops_api_key_file.is_some(),
                "victorops_api_key & victorops_api_key_file",
            ),
            (
                non_empty(&self.telegram_bot_token) && non_empty_str(&self.telegram_bot_token_file),
                "telegram_bot_token & telegram_bot_token_file",
            ),
            (
                non_empty(&self.smtp_auth_password) && non_empty_str(&self.smtp_auth_password_file),
                "smtp_auth_password & smtp_auth_password_file",
            ),
            (
                self.rocketchat_token.is_some() && non_empty_str(&self.rocketchat_token_file),
                "rocketchat_token & rocketchat_token_file",
            ),
            (
                self.rocketchat_token_id.is_some() && non_empty_str(&self.rocketchat_token_id_file),
                "rocketchat_token_id & rocketchat_token_id_file",
            ),
            (
                non_empty(&self.smtp_auth_secret) && non_empty_str(&self.smtp_auth_secret_file),
                "smtp_auth_secret & smtp_auth_secret_file",
            ),
            (
                non_empty(&self.wechat_api_secret) && non_empty_str(&self.wechat_api_secret_file),
                "wechat_api_secret & wechat_api_secret_file",
            ),
            (
                self.mattermost_webhook_url.is_some()
                    && non_empty_str(&self.mattermost_webhook_url_file),
                "mattermost_webhook_url & mattermost_webhook_url_file",
            ),
        ] {
            if both {
                return Err(invalid(
                    "global",
                    format!("at most one of {name} must be configured"),
                ));
            }
        }
        if let Some(u) = &self.jira_api_url {
            super::jira::check_api_url(u).map_err(|m| invalid("global.jira_api_url", m))?;
        }
        // Go's URL type checks these where `global:` is read, whether or
        // not a receiver uses them.
        for (name, u) in [
            ("opsgenie_api_url", &self.opsgenie_api_url),
            ("telegram_api_url", &self.telegram_api_url),
            ("webex_api_url", &self.webex_api_url),
            ("pagerduty_url", &self.pagerduty_url),
            ("victorops_api_url", &self.victorops_api_url),
        ] {
            if !u.is_empty() {
                crate::commoncfg::check_http_url(u)
                    .map_err(|m| invalid(format!("global.{name}"), m))?;
            }
        }
        if let Some(u) = &self.mattermost_webhook_url {
            crate::commoncfg::check_http_url(u.expose())
                .map_err(|m| invalid("global.mattermost_webhook_url", m))?;
        }
        // URLs to Alertmanager's parser, used by a receiver or not.
        crate::commoncfg::check_http_url(&self.wechat_api_url)
            .map_err(|m| invalid("global.wechat_api_url", m))?;
        if let Some(u) = &self.rocketchat_api_url {
            crate::commoncfg::check_http_url(u)
                .map_err(|m| invalid("global.rocketchat_api_url", m))?;
        }
        Ok(())
    }
}

/// Go compares secrets and file names with `!= ""`: an empty value counts
/// as unset.
fn non_empty(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

fn non_empty_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}
