//! `msteamsv2_configs`: a Power Automate workflow URL (inline or in a
//! file) and the two templates of the Adaptive Card.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::msteams::check_webhook_url;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsV2Config {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The workflow URL carries its own signature: shown as `<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    #[serde(default = "d_title", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default = "d_text", skip_serializing_if = "String::is_empty")]
    pub text: String,
}

fn d_title() -> String {
    "{{ template \"msteamsv2.default.title\" . }}".into()
}
fn d_text() -> String {
    "{{ template \"msteamsv2.default.text\" . }}".into()
}

impl IntegrationConfig for MsTeamsV2Config {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Alertmanager 0.34 (#5379): without an `http_config` the global one
    /// is used; a partial `http_config` without `proxy_url` still gets the
    /// global `proxy_url`, as a corporate proxy is usually the one way out
    /// to Microsoft. 0.33.1 used the receiver's `http_config` as it was.
    fn apply_global(&mut self, global: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        check_webhook_url(self.webhook_url.as_ref(), self.webhook_url_file.as_ref(), f)?;
        match &mut self.http_config {
            None => self.http_config = Some(global.http_config.clone()),
            Some(http) => {
                // What the user wrote is checked, before anything is
                // inherited (Go validates it when the YAML is read).
                http.validate()
                    .map_err(|m| invalid(format!("{f}.http_config"), m))?;
                // Go's proxy_from_environment wins over a proxy_url: a
                // receiver that asked for the environment keeps it.
                if http.proxy_url.is_none() && http.proxy_from_environment != Some(true) {
                    http.proxy_url = global.http_config.proxy_url.clone();
                }
            }
        }
        if let Some(http) = &self.http_config {
            http.validate()
                .map_err(|m| invalid(format!("{f}.http_config"), m))?;
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        vec![
            ("title".into(), self.title.as_str()),
            ("text".into(), self.text.as_str()),
        ]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::MsTeamsV2::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, global: &str) -> Result<MsTeamsV2Config, FieldError> {
        let mut c: MsTeamsV2Config = serde_saphyr::from_str(yaml).unwrap();
        let g: GlobalConfig = serde_saphyr::from_str(global).unwrap();
        c.apply_global(&g, "receivers[0].msteamsv2_configs[0]")
            .map(|()| c)
    }

    #[test]
    fn a_partial_http_config_inherits_the_global_proxy_url() {
        let global = "http_config: {proxy_url: 'http://proxy.corp:3128', follow_redirects: false}";
        let url = "webhook_url: https://prod.westeurope.logic.azure.com/workflows/x\n";
        // Nothing set: the global http_config whole.
        let c = load(url, global).unwrap();
        let h = c.http_config.unwrap();
        assert_eq!(h.proxy_url.as_deref(), Some("http://proxy.corp:3128"));
        assert!(!h.follow_redirects);
        // Partial: only the proxy URL comes from global.
        let c = load(
            &format!("{url}http_config: {{bearer_token: t, no_proxy: localhost, proxy_url: 'http://own:1'}}"),
            global,
        )
        .unwrap();
        assert_eq!(
            c.http_config.unwrap().proxy_url.as_deref(),
            Some("http://own:1")
        );
        let c = load(&format!("{url}http_config: {{bearer_token: t}}"), global).unwrap();
        let h = c.http_config.unwrap();
        assert_eq!(h.proxy_url.as_deref(), Some("http://proxy.corp:3128"));
        assert!(h.follow_redirects, "the rest stays the receiver's");
        assert!(h.bearer_token.is_some());
        // A receiver's no_proxy without its own proxy_url is refused, as Go
        // checks it before inheriting.
        assert!(load(
            &format!("{url}http_config: {{no_proxy: localhost}}"),
            global
        )
        .is_err());
    }
}
