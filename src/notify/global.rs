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
    #[serde(default = "default_victorops_url")]
    pub victorops_api_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(default = "default_telegram_url")]
    pub telegram_api_url: String,
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
    /// The section's own rules (`GlobalConfig.UnmarshalYAML` and the
    /// checks `Load` makes on it).
    pub fn check(&self) -> Result<(), FieldError> {
        self.http_config
            .validate()
            .map_err(|m| invalid("global.http_config", m))?;
        for (a, b, both) in [
            (
                self.slack_api_url.is_some(),
                self.slack_api_url_file.is_some(),
                "slack_api_url & slack_api_url_file",
            ),
            (
                self.opsgenie_api_key.is_some(),
                self.opsgenie_api_key_file.is_some(),
                "opsgenie_api_key & opsgenie_api_key_file",
            ),
            (
                self.victorops_api_key.is_some(),
                self.victorops_api_key_file.is_some(),
                "victorops_api_key & victorops_api_key_file",
            ),
            (
                self.smtp_auth_password.is_some(),
                self.smtp_auth_password_file.is_some(),
                "smtp_auth_password & smtp_auth_password_file",
            ),
        ] {
            if a && b {
                return Err(invalid(
                    "global",
                    format!("at most one of {both} must be configured"),
                ));
            }
        }
        Ok(())
    }
}
