//! The VictorOps (Splunk On-Call) integration (`notify/victorops`): one
//! event per flush to the REST endpoint `{api_url}{api_key}/{routing_key}`,
//! `CRITICAL` (or the configured firing type) while any alert fires and
//! `RECOVERY` once all are resolved, on the incident the group key's hash
//! names. The URL holds the API key, so no error or log shows it.

mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use config::VictorOpsConfig;

use super::http::{check_status, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::{group_key_hash, FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Templates, Value};

/// VictorOps keeps at most this many characters of a state message.
const MAX_STATE_MESSAGE_RUNES: usize = 20480;

/// The message types a firing event may have; anything else is sent as
/// `CRITICAL`.
const FIRING_TYPES: [&str; 3] = ["INFO", "WARNING", "CRITICAL"];

pub struct VictorOps {
    conf: VictorOpsConfig,
    client: Client,
    api_url: url::Url,
    key: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

fn fatal(message: impl Into<String>) -> NotifyError {
    NotifyError::new(false, FailureReason::Other, message)
}

impl VictorOps {
    fn new(
        conf: &VictorOpsConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<VictorOps, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let api_url = conf
            .api_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or(BuildError::Missing("victorops config without api_url"))?;
        // The inline key first, as Go reads it, even beside a file.
        let key = Credential::from(
            conf.api_key
                .as_ref()
                .map(|s| s.expose())
                .filter(|s| !s.is_empty()),
            conf.api_key_file.as_ref(),
        )
        .ok_or(BuildError::Missing("victorops config without api_key"))?;
        Ok(VictorOps {
            conf: conf.clone(),
            client,
            api_url,
            key,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// The event: the fixed fields and the custom ones, keys sorted as Go
    /// writes a `map[string]string`.
    fn body(&self, group_key: &str, data: &Value, firing: bool) -> Result<Vec<u8>, NotifyError> {
        let c = &self.conf;
        let t = |text: &str| {
            self.templates
                .execute_text(text, data)
                .map_err(|e| fatal(format!("templating error: {e}")))
        };
        let mut message_type = t(&c.message_type)?;
        if !firing {
            message_type = "RECOVERY".into();
        } else if !FIRING_TYPES.contains(&message_type.as_str()) {
            message_type = "CRITICAL".into();
        }
        let (state_message, truncated) =
            truncate_runes(t(&c.state_message)?, MAX_STATE_MESSAGE_RUNES);
        if truncated {
            tracing::warn!(
                group_key,
                max_runes = MAX_STATE_MESSAGE_RUNES,
                "Truncated state_message"
            );
        }
        let mut msg = BTreeMap::from([
            ("message_type".to_string(), message_type),
            ("entity_id".to_string(), group_key_hash(group_key)),
            (
                "entity_display_name".to_string(),
                t(&c.entity_display_name)?,
            ),
            ("state_message".to_string(), state_message),
            ("monitoring_tool".to_string(), t(&c.monitoring_tool)?),
        ]);
        for (k, v) in &c.custom_fields {
            msg.insert(k.clone(), t(v)?);
        }
        let mut body = crate::gojson::to_vec(&msg);
        body.push(b'\n');
        Ok(body)
    }

    /// `{api_url}{api_key}/{routing_key}`, the routing key rendered.
    fn url(&self, key: &str, data: &Value) -> Result<String, NotifyError> {
        let routing = self
            .templates
            .execute_text(&self.conf.routing_key, data)
            .map_err(|e| fatal(format!("templating error: {e}")))?;
        let mut u = self.api_url.clone();
        let path = format!("{}{key}/{routing}", u.path());
        u.set_path(&path);
        Ok(u.to_string())
    }
}

#[async_trait::async_trait]
impl Notifier for VictorOps {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let firing = alerts.iter().any(|a| !a.resolved_at(ctx.now));
        // Read off the runtime's threads at each notification, so that a
        // rotated key file counts.
        let key = match &self.key {
            Credential::Inline(k) => k.clone(),
            Credential::File(f) => tokio::fs::read_to_string(f)
                .await
                .map(|s| s.trim().to_string())
                .map_err(|e| fatal(format!("failed to read API key from file: open {f}: {e}")))?,
        };
        let url = self.url(&key, &data)?;
        let body = self.body(&ctx.group_key, &data, firing)?;
        let req = self.client.post_json(&url, body).await?;
        // The URL holds the API key.
        let resp = super::http::send(req)
            .await
            .map_err(|e| super::http::transport_error("<redacted>", e))?;
        let status = check_status(&resp, &[]);
        if let Err(mut e) = status {
            // Go adds the answer's body to the error.
            let body = resp.bytes().await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(1024)]);
            if !text.trim().is_empty() {
                e.message = format!("{}: {}", e.message, text.trim());
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;

    fn notifier(yaml: &str) -> VictorOps {
        let mut c: VictorOpsConfig = serde_saphyr::from_str(yaml).unwrap();
        use crate::notify::IntegrationConfig;
        c.apply_global(&crate::notify::GlobalConfig::default(), "vo")
            .unwrap();
        VictorOps::new(&c, Arc::new(Templates::load(&[]).unwrap()), "http://am").unwrap()
    }

    fn data() -> Value {
        let labels = LabelSet::from_strs([("team", "db")]);
        crate::template::Data::new("r", &labels, &[], jiff::Timestamp::UNIX_EPOCH, "http://am")
            .to_value()
    }

    const KEY: &str = "{}:{team=\"db\"}";

    #[test]
    fn the_url_carries_key_and_rendered_routing_key() {
        let n = notifier("api_key: k3y\nrouting_key: 'team-{{ .GroupLabels.team }}'\napi_url: http://vo.test/alert\n");
        assert_eq!(
            n.url("k3y", &data()).unwrap(),
            "http://vo.test/alert/k3y/team-db"
        );
    }

    #[test]
    fn message_types_and_limits() {
        let n = notifier(&format!(
            "api_key: k\nrouting_key: r\nmessage_type: '{{{{ \"bogus\" }}}}'\nstate_message: 'ü{}'\ncustom_fields: {{zz: '{{{{ .GroupLabels.team }}}}'}}\n",
            "x".repeat(MAX_STATE_MESSAGE_RUNES)
        ));
        let body: serde_json::Value =
            serde_json::from_slice(&n.body(KEY, &data(), true).unwrap()).unwrap();
        assert_eq!(body["message_type"], "CRITICAL");
        assert_eq!(body["zz"], "db");
        assert_eq!(
            body["state_message"].as_str().unwrap().chars().count(),
            MAX_STATE_MESSAGE_RUNES
        );
        assert_eq!(body["entity_id"], group_key_hash(KEY));
        let body: serde_json::Value =
            serde_json::from_slice(&n.body(KEY, &data(), false).unwrap()).unwrap();
        assert_eq!(body["message_type"], "RECOVERY");
        let n = notifier("api_key: k\nrouting_key: r\nmessage_type: WARNING\n");
        let body: serde_json::Value =
            serde_json::from_slice(&n.body(KEY, &data(), true).unwrap()).unwrap();
        assert_eq!(body["message_type"], "WARNING");
    }
}
