//! `sns_configs`: where to publish (a topic, a phone number or a mobile
//! endpoint), the templated subject, message and attributes, and the
//! `sigv4` section naming the AWS credentials (prometheus/sigv4's
//! `SigV4Config`, the same block Prometheus' remote write has).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The SNS endpoint, a template (Alertmanager renders it per
    /// notification); empty means AWS's regional endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_url: String,
    #[serde(default)]
    pub sigv4: Sigv4Config,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic_arn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_arn: String,
    #[serde(default = "d_subject", skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(default = "d_message", skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Message attributes: keys and values are templates.
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub attributes: BTreeMap<String, String>,
    /// Go's switch to the AWS SDK's own HTTP client (0.33): only the TLS
    /// and proxy settings of `http_config` apply then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_aws_http_client: bool,
}

fn d_subject() -> String {
    r#"{{ template "sns.default.subject" . }}"#.into()
}
fn d_message() -> String {
    r#"{{ template "sns.default.message" . }}"#.into()
}

/// prometheus/sigv4 v0.4.1. Empty keys are looked up in AWS's default
/// chain (environment, shared files), as the AWS SDK does.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sigv4Config {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    /// Passed to STS AssumeRole (0.34; 0.33.1 accepts it but drops it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// Accepted for the shared block; Alertmanager's SNS notifier uses
    /// neither this nor `service_name` (it always signs for `sns`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_fips_sts_endpoint: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
}

impl Sigv4Config {
    pub(crate) fn secret_key(&self) -> &str {
        self.secret_key.as_ref().map(Secret::expose).unwrap_or("")
    }

    /// prometheus/sigv4's `Validate`, with its words.
    fn validate(&self) -> Result<(), &'static str> {
        if self.access_key.is_empty() != self.secret_key().is_empty() {
            return Err("must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config");
        }
        if !self.external_id.is_empty() && self.role_arn.is_empty() {
            return Err("external_id can only be used with role_arn");
        }
        Ok(())
    }
}

impl IntegrationConfig for SnsConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn apply_global(&mut self, global: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        self.sigv4
            .validate()
            .map_err(|m| invalid(format!("{f}.sigv4"), m))?;
        // Go's check, kept as written: an odd number of the three empty is
        // refused, so one destination passes and so do all three.
        let empty = [&self.target_arn, &self.topic_arn, &self.phone_number]
            .iter()
            .filter(|s| s.is_empty())
            .count();
        if empty % 2 == 1 {
            return Err(invalid(
                f,
                "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config",
            ));
        }
        global.inherit_http_config(&mut self.http_config, f)
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("api_url", &self.api_url),
            ("topic_arn", &self.topic_arn),
            ("phone_number", &self.phone_number),
            ("target_arn", &self.target_arn),
            ("subject", &self.subject),
            ("message", &self.message),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_str()))
        .collect();
        for (k, v) in &self.attributes {
            texts.push((format!("attributes.{k}"), k));
            texts.push((format!("attributes.{k}"), v));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Sns::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
