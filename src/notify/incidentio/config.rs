//! `incidentio_configs`: an alert source's webhook URL (inline or in a
//! file), its token, `max_alerts` and `timeout`
//! (`notify/incidentio/config.go`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::duration::PromDuration;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentioConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Not a secret in Alertmanager (a plain URL): shown in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_source_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_source_token_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
}

impl IncidentioConfig {
    fn token_set(&self) -> bool {
        self.alert_source_token
            .as_ref()
            .is_some_and(|t| !t.expose().is_empty())
    }

    fn token_file_set(&self) -> bool {
        self.alert_source_token_file
            .as_deref()
            .is_some_and(|f| !f.is_empty())
    }
}

impl IntegrationConfig for IncidentioConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `IncidentioConfig.UnmarshalYAML` on what the user wrote (so a
    /// config without its own `http_config` needs no token), then the
    /// global `http_config`.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        let url_file = self.url_file.as_deref().is_some_and(|u| !u.is_empty());
        match (&self.url, url_file) {
            (None, false) => return Err(invalid(f, "one of url or url_file must be configured")),
            (Some(_), true) => {
                return Err(invalid(
                    f,
                    "at most one of url & url_file must be configured",
                ))
            }
            (Some(u), false) => {
                check_http_url(u).map_err(|m| invalid(format!("{f}.url"), m))?;
            }
            (None, true) => {}
        }
        let token = self.token_set() || self.token_file_set();
        if self.token_set() && self.token_file_set() {
            return Err(invalid(
                f,
                "at most one of alert_source_token & alert_source_token_file must be configured",
            ));
        }
        if let Some(http) = &self.http_config {
            // prometheus/common turns bearer_token(_file) into an
            // `authorization` while it loads, so they count as one.
            let authorization = http.authorization.is_some()
                || http.bearer_token.is_some()
                || http.bearer_token_file.is_some();
            if authorization && token {
                return Err(invalid(
                    f,
                    "cannot specify alert_source_token or alert_source_token_file when using http_config.authorization",
                ));
            }
            if !authorization && !token {
                return Err(invalid(
                    f,
                    "at least one of alert_source_token, alert_source_token_file or http_config.authorization must be configured",
                ));
            }
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        Ok(())
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Incidentio::new(self, ctx.external_url)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<IncidentioConfig, FieldError> {
        let mut c: IncidentioConfig = serde_saphyr::from_str(yaml).unwrap();
        c.apply_global(&GlobalConfig::default(), "iio").map(|()| c)
    }

    #[test]
    fn go_checks_what_the_user_wrote() {
        let msg = |y: &str| load(y).unwrap_err().message;
        assert_eq!(msg("{}"), "one of url or url_file must be configured");
        assert_eq!(
            msg("{url: 'http://x', url_file: /u}"),
            "at most one of url & url_file must be configured"
        );
        assert_eq!(
            msg("{url: 'http://x', alert_source_token: t, alert_source_token_file: /t}"),
            "at most one of alert_source_token & alert_source_token_file must be configured"
        );
        assert!(
            msg("{url: 'http://x', alert_source_token: t, http_config: {bearer_token: b}}")
                .starts_with("cannot specify alert_source_token")
        );
        assert!(
            msg("{url: 'http://x', http_config: {basic_auth: {username: u}}}")
                .starts_with("at least one of alert_source_token")
        );
        // No http_config of its own: no token needed; the global one is used.
        let c = load("{url: 'http://x'}").unwrap();
        assert!(c.http_config.is_some() && c.send_resolved);
        load("{url_file: /u, http_config: {authorization: {credentials: c}}}").unwrap();
    }
}
