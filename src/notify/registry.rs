//! The one table of integrations. Everything that used to enumerate them by
//! hand (the receiver's `*_configs` keys, the "not supported yet" list, the
//! `global:` defaults, the load-time template check, the pipeline build and
//! the `alertmanager_integrations` count) derives from the `integrations!`
//! invocation below, so adding an integration is its folder
//! (`notify/<kind>/{config.rs, mod.rs}`) and one line here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::global::GlobalConfig;
use super::Notifier;
use crate::commoncfg::{invalid, FieldError, Unsupported};
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
}

macro_rules! integrations {
    (
        delivered { $( $kind:literal => $field:ident : $config:ty, )* }
        refused { $( $rkind:literal => $rfield:ident, )* }
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
            $(
                /// Recognised, so it is refused by name rather than as an
                /// unknown key.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $rfield: Option<Vec<Unsupported>>,
            )*
        }

        /// The kinds Herald delivers to, in the table's order.
        pub const DELIVERED: &[&str] = &[$($kind),*];

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

            /// The first integration this receiver configures that Herald
            /// does not deliver to yet.
            fn refused(&self) -> Option<&'static str> {
                $(
                    if self.$rfield.as_ref().is_some_and(|v| !v.is_empty()) {
                        return Some($rkind);
                    }
                )*
                None
            }
        }
    };
}

integrations! {
    delivered {
        "webhook" => webhook_configs: super::webhook::WebhookConfig,
        "email" => email_configs: super::email::EmailConfig,
        "slack" => slack_configs: super::slack::SlackConfig,
        "sns" => sns_configs: super::sns::SnsConfig,
    }
    refused {
        "pagerduty" => pagerduty_configs,
        "opsgenie" => opsgenie_configs,
        "wechat" => wechat_configs,
        "pushover" => pushover_configs,
        "victorops" => victorops_configs,
        "telegram" => telegram_configs,
        "webex" => webex_configs,
        "discord" => discord_configs,
        "msteams" => msteams_configs,
        "msteamsv2" => msteamsv2_configs,
        "jira" => jira_configs,
        "rocketchat" => rocketchat_configs,
        "incidentio" => incidentio_configs,
        "mattermost" => mattermost_configs,
    }
}

impl ReceiverConfig {
    /// Copies global defaults into the integration configs and validates
    /// them, as Alertmanager's loader does per receiver.
    pub fn apply_global(&mut self, global: &GlobalConfig, field: &str) -> Result<(), FieldError> {
        if let Some(kind) = self.refused() {
            return Err(invalid(
                format!("{field}.{kind}_configs"),
                format!(
                    "receiver {:?}: the {kind} integration is not supported by Herald yet ({} are)",
                    self.name,
                    delivered_list()
                ),
            ));
        }
        let mut index = KindIndex::default();
        for (kind, c) in self.integrations_mut() {
            let i = index.next(kind);
            c.apply_global(global, &format!("{field}.{kind}_configs[{i}]"))?;
        }
        Ok(())
    }
}

/// `webhook_configs, email_configs and slack_configs`.
fn delivered_list() -> String {
    let keys: Vec<String> = DELIVERED.iter().map(|k| format!("{k}_configs")).collect();
    match keys.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => keys.join(""),
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
    fn the_refusal_names_what_is_delivered() {
        assert_eq!(
            delivered_list(),
            "webhook_configs, email_configs, slack_configs and sns_configs"
        );
        let mut rc = ReceiverConfig {
            name: "pager".into(),
            pagerduty_configs: Some(vec![Unsupported]),
            ..Default::default()
        };
        let e = rc
            .apply_global(&GlobalConfig::default(), "receivers[0]")
            .unwrap_err();
        assert_eq!(e.field, "receivers[0].pagerduty_configs");
        assert!(e.message.contains("pagerduty integration is not supported"));
    }

    #[test]
    fn kinds_are_numbered_separately() {
        let mut ix = KindIndex::default();
        assert_eq!(
            [ix.next("webhook"), ix.next("email"), ix.next("webhook")],
            [0, 0, 1]
        );
    }
}
