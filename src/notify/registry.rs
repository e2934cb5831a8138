//! The one table of integrations. Everything that used to enumerate them by
//! hand (the receiver's `*_configs` keys, the `global:` defaults, the
//! load-time template check, the pipeline build and the
//! `alertmanager_integrations` count) derives from the `integrations!`
//! invocation below, so adding an integration is its folder
//! (`notify/<kind>/{config.rs, mod.rs}`) and one line here. The table is
//! in the order of Go's `config.Receiver`, which is also the order of the
//! receiver's keys in `/api/v2/status`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::global::GlobalConfig;
use super::Notifier;
use crate::commoncfg::FieldError;
use crate::template::Templates;

/// What an integration's config gives the rest of Herald. The kind name
/// (`webhook` for `webhook_configs`) is the table's, not the config's, so
/// that one place names each integration.
pub trait IntegrationConfig: Send + Sync {
    /// `send_resolved`, whose default differs between integrations.
    fn send_resolved(&self) -> bool;

    /// Fills what the config leaves unset from `global:` and checks it, as
    /// Alertmanager's loader does per receiver; `field` is the config's path
    /// (`receivers[0].slack_configs[1]`) for the error.
    fn apply_global(&mut self, global: &GlobalConfig, field: &str) -> Result<(), FieldError>;

    /// Every template text of the config with its key relative to the
    /// config (`title`, `fields[0].value`), so a text that does not parse is
    /// reported at load instead of failing the first notification.
    fn template_texts(&self) -> Vec<(String, &str)> {
        Vec::new()
    }

    /// The notifier that delivers for this config.
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError>;
}

/// What building a notifier may use besides its config.
pub struct BuildCtx<'a> {
    /// Herald's default templates plus the config's `templates:`.
    pub templates: &'a Arc<Templates>,
    /// `--web.external-url`, the `.ExternalURL` of the template data.
    pub external_url: &'a str,
}

/// Why a notifier could not be built from a config that loaded.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    HttpClient(#[from] super::http::ClientError),
    /// `tls_config` names files that cannot be read or used.
    #[error("{0}")]
    Tls(String),
    /// A key the loader fills was empty: a bug in Herald, not in the config.
    #[error("{0}")]
    Missing(&'static str),
    /// A credential file named by the config cannot be read at load.
    #[error("{0}")]
    Credential(String),
}

macro_rules! integrations {
    (
        $( $kind:literal => $field:ident : $config:ty, )*
    ) => {
        /// A receiver: its name and, per integration, a list of configs.
        #[derive(Clone, Debug, Default, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct ReceiverConfig {
            #[serde(default)]
            pub name: String,
            /// Receiver labels (0.33) for `receiver_matchers`; `name` is
            /// implied (see `api_labels()`), so it is kept as written.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub labels: Option<std::collections::BTreeMap<String, String>>,
            $(
                #[serde(
                    default,
                    deserialize_with = "crate::commoncfg::null_default",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub $field: Vec<$config>,
            )*
        }

        impl ReceiverConfig {
            /// The receiver's labels as the API shows and filters them:
            /// those configured plus `name`, as Alertmanager injects it.
            pub fn api_labels(&self) -> std::collections::BTreeMap<String, String> {
                let mut l = self.labels.clone().unwrap_or_default();
                l.insert("name".to_string(), self.name.clone());
                l
            }

            /// Every integration config of the receiver with its kind, in the
            /// table's order (which is also the order of the status page).
            pub fn integrations(&self) -> Vec<(&'static str, &dyn IntegrationConfig)> {
                let mut out: Vec<(&'static str, &dyn IntegrationConfig)> = Vec::new();
                $( out.extend(self.$field.iter().map(|c| ($kind, c as &dyn IntegrationConfig))); )*
                out
            }

            fn integrations_mut(&mut self) -> Vec<(&'static str, &mut dyn IntegrationConfig)> {
                let mut out: Vec<(&'static str, &mut dyn IntegrationConfig)> = Vec::new();
                $( out.extend(self.$field.iter_mut().map(|c| ($kind, c as &mut dyn IntegrationConfig))); )*
                out
            }
        }
    };
}

integrations! {
    "discord" => discord_configs: super::discord::DiscordConfig,
    "email" => email_configs: super::email::EmailConfig,
    "incidentio" => incidentio_configs: super::incidentio::IncidentioConfig,
    "pagerduty" => pagerduty_configs: super::pagerduty::PagerdutyConfig,
    "slack" => slack_configs: super::slack::SlackConfig,
    "webhook" => webhook_configs: super::webhook::WebhookConfig,
    "opsgenie" => opsgenie_configs: super::opsgenie::OpsgenieConfig,
    "wechat" => wechat_configs: super::wechat::WechatConfig,
    "pushover" => pushover_configs: super::pushover::PushoverConfig,
    "victorops" => victorops_configs: super::victorops::VictorOpsConfig,
    "sns" => sns_configs: super::sns::SnsConfig,
    "telegram" => telegram_configs: super::telegram::TelegramConfig,
    "webex" => webex_configs: super::webex::WebexConfig,
    "msteams" => msteams_configs: super::msteams::MsTeamsConfig,
    "msteamsv2" => msteamsv2_configs: super::msteamsv2::MsTeamsV2Config,
    "jira" => jira_configs: super::jira::JiraConfig,
    "rocketchat" => rocketchat_configs: super::rocketchat::RocketchatConfig,
    "mattermost" => mattermost_configs: super::mattermost::MattermostConfig,
}

impl ReceiverConfig {
    /// Copies global defaults into the integration configs and validates
    /// them, as Alertmanager's loader does per receiver.
    pub fn apply_global(&mut self, global: &GlobalConfig, field: &str) -> Result<(), FieldError> {
        let mut index = KindIndex::default();
        for (kind, c) in self.integrations_mut() {
            let i = index.next(kind);
            c.apply_global(global, &format!("{field}.{kind}_configs[{i}]"))?;
        }
        Ok(())
    }

    /// The notification log's keys of this receiver's integrations, in
    /// the order the pipeline builds them.
    pub(crate) fn log_keys(&self) -> Vec<crate::nflog::ReceiverKey> {
        let mut index = KindIndex::default();
        self.integrations()
            .into_iter()
            .map(|(kind, _)| crate::nflog::ReceiverKey {
                group_name: self.name.clone(),
                integration: kind,
                index: index.next(kind),
            })
            .collect()
    }
}

/// Numbers the configs of each kind from 0 in the order they are listed:
/// the index of `receivers[r].<kind>_configs[i]`, of the notification
/// log's receiver key and of the retry stage's `receiver/kind[i]`.
#[derive(Default)]
pub(crate) struct KindIndex(std::collections::HashMap<&'static str, usize>);

impl KindIndex {
    pub(crate) fn next(&mut self, kind: &'static str) -> usize {
        let i = self.0.entry(kind).or_default();
        *i += 1;
        *i - 1
    }
}

/// Every template text of the receivers' integration configs that does not
/// parse, as `receivers[i].slack_configs[j].title: <error>`. Alertmanager
/// finds these only when a notification fails; Herald reports them at load
/// (a warning) and in `check-config` (a failure).
pub fn template_problems(receivers: &[ReceiverConfig], templates: &Templates) -> Vec<String> {
    let mut out = Vec::new();
    for (r, rc) in receivers.iter().enumerate() {
        let mut index = KindIndex::default();
        for (kind, c) in rc.integrations() {
            let i = index.next(kind);
            for (name, text) in c.template_texts() {
                if let Err(e) = templates.check_text(text) {
                    out.push(format!("receivers[{r}].{kind}_configs[{i}].{name}: {e}"));
                }
            }
        }
    }
    out
}

/// How many integrations the receivers configure
/// (`alertmanager_integrations`).
pub fn integration_count(receivers: &[ReceiverConfig]) -> usize {
    receivers.iter().map(|r| r.integrations().len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_numbered_separately() {
        let mut ix = KindIndex::default();
        assert_eq!(
            [ix.next("webhook"), ix.next("email"), ix.next("webhook")],
            [0, 0, 1]
        );
    }
}
