//! `wechat_configs`: a WeChat Work application (corp id, its secret, the
//! agent) and the message's templates, with Alertmanager's defaults.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corp_id: Option<String>,
    #[serde(default = "d_message")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default = "d_to_user")]
    pub to_user: String,
    #[serde(default = "d_to_party")]
    pub to_party: String,
    #[serde(default = "d_to_tag")]
    pub to_tag: String,
    #[serde(default = "d_agent_id")]
    pub agent_id: String,
    /// `text` (the default) or `markdown`: which of the message's two
    /// content objects carries the text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message_type: String,
}

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"wechat.default.{name}\" . }}}}")
}
fn d_message() -> String {
    tmpl("message")
}
fn d_to_user() -> String {
    tmpl("to_user")
}
fn d_to_party() -> String {
    tmpl("to_party")
}
fn d_to_tag() -> String {
    tmpl("to_tag")
}
fn d_agent_id() -> String {
    tmpl("agent_id")
}

/// Go compares secrets with `!= ""`: an empty one counts as unset.
fn set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

fn set_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl IntegrationConfig for WechatConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `WechatConfig.UnmarshalYAML`, then what `Config.UnmarshalYAML` does
    /// with the `global.wechat_*` defaults, in that order so that the first
    /// error is Alertmanager's.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if self.message_type.is_empty() {
            self.message_type = "text".into();
        }
        if self.message_type != "text" && self.message_type != "markdown" {
            return Err(invalid(
                format!("{f}.message_type"),
                format!(
                    "weChat message type {:?} does not match valid options ^(text|markdown)$",
                    self.message_type
                ),
            ));
        }
        if set(&self.api_secret) && set_str(&self.api_secret_file) {
            return Err(invalid(
                f,
                "at most one of api_secret & api_secret_file must be configured",
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        let (url, field) = match &self.api_url {
            Some(u) => (u.clone(), format!("{f}.api_url")),
            None => (
                g.wechat_api_url.clone(),
                "global.wechat_api_url".to_string(),
            ),
        };
        check_http_url(&url).map_err(|m| invalid(field, m))?;
        if !set(&self.api_secret) && !set_str(&self.api_secret_file) {
            if !set(&g.wechat_api_secret) && !set_str(&g.wechat_api_secret_file) {
                return Err(invalid(
                    f,
                    "no global Wechat Api Secret set either inline or in a file",
                ));
            }
            self.api_secret = g.wechat_api_secret.clone();
            self.api_secret_file = g.wechat_api_secret_file.clone();
        }
        if !set_str(&self.corp_id) {
            self.corp_id = g.wechat_api_corp_id.clone();
        }
        if !set_str(&self.corp_id) {
            return Err(invalid(f, "no global Wechat CorpID set"));
        }
        self.api_url = Some(with_trailing_slash(&url));
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("message", &self.message),
            ("to_user", &self.to_user),
            ("to_party", &self.to_party),
            ("to_tag", &self.to_tag),
            ("agent_id", &self.agent_id),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        if let Some(c) = &self.corp_id {
            texts.push(("corp_id".into(), c));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Wechat::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

/// Alertmanager appends `gettoken` and `message/send` to the URL's path,
/// so it makes sure the path ends in `/`.
pub(crate) fn with_trailing_slash(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) => {
            if !p.path().ends_with('/') {
                let path = format!("{}/", p.path());
                p.set_path(&path);
            }
            p.to_string()
        }
        Err(_) => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, global: &str) -> Result<WechatConfig, FieldError> {
        let mut c: WechatConfig = serde_saphyr::from_str(yaml).unwrap();
        let g: GlobalConfig = serde_saphyr::from_str(global).unwrap();
        c.apply_global(&g, "w").map(|()| c)
    }

    #[test]
    fn globals_fill_in_and_the_path_gets_its_slash() {
        let c = load(
            "{}",
            "{wechat_api_secret: s, wechat_api_corp_id: corp, wechat_api_url: 'http://wx.test/cgi-bin'}",
        )
        .unwrap();
        assert_eq!(c.api_url.as_deref(), Some("http://wx.test/cgi-bin/"));
        assert_eq!(c.corp_id.as_deref(), Some("corp"));
        assert_eq!(c.api_secret.as_ref().map(Secret::expose), Some("s"));
        assert_eq!(c.message_type, "text");
        let c = load("{api_secret: mine, corp_id: c}", "{}").unwrap();
        assert_eq!(
            c.api_url.as_deref(),
            Some("https://qyapi.weixin.qq.com/cgi-bin/")
        );
        assert_eq!(c.api_secret.as_ref().map(Secret::expose), Some("mine"));
    }

    #[test]
    fn go_checks_in_go_order() {
        let e = load("{message_type: html}", "{}").unwrap_err();
        assert!(e.message.contains("does not match valid options"), "{e:?}");
        let e = load("{api_secret: a, api_secret_file: f}", "{}").unwrap_err();
        assert!(e.message.starts_with("at most one of api_secret"));
        let e = load("{corp_id: c}", "{}").unwrap_err();
        assert!(e.message.contains("no global Wechat Api Secret"));
        let e = load("{api_secret: s}", "{}").unwrap_err();
        assert_eq!(e.message, "no global Wechat CorpID set");
        // An empty secret is no secret.
        let e = load("{api_secret: '', corp_id: c}", "{}").unwrap_err();
        assert!(e.message.contains("no global Wechat Api Secret"));
    }
}
