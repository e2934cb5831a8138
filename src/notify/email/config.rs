//! `email_configs`: SMTP delivery settings, with the `global.smtp_*`
//! defaults applied at load as Alertmanager's loader does.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::commoncfg::{invalid, FieldError, Secret, TlsConfig};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

/// `host:port` of the SMTP smarthost; the port is required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        if port.is_empty() {
            return Err(format!("address {s:?}: port cannot be empty"));
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.contains(':') && !s.starts_with('[') {
            return Err(format!("address {s}: too many colons in address"));
        }
        let port = port
            .parse()
            .map_err(|_| format!("address {s:?}: invalid port {port:?}"))?;
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HostPort::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `to:` is a comma-separated address list in Alertmanager; a YAML list of
/// addresses is accepted too and joined, since users write it that way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AddressList(pub String);

impl<'de> Deserialize<'de> for AddressList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(AddressList(match Raw::deserialize(d)? {
            Raw::One(s) => s,
            Raw::Many(v) => v.join(", "),
        }))
    }
}

impl Serialize for AddressList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<AddressList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<HostPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_identity: Option<String>,
    /// Header name (canonical MIME form after load) → value template.
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_html")]
    pub html: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Newer than 0.25: hidden from the status answer unless set, so that
    /// 0.25's amtool still parses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_implicit_tls: Option<bool>,
    /// Newer than 0.25 too: hidden unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threading: Option<ThreadingConfig>,
}

/// `threading:` (Alertmanager 0.30): `References`/`In-Reply-To` headers
/// naming a message that does not exist, so that mail clients thread every
/// notification of a group (per day with `daily`) under it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadingConfig {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thread_by_date: String,
}

fn default_html() -> String {
    r#"{{ template "email.default.html" . }}"#.into()
}

/// The default `Subject` header.
pub const DEFAULT_EMAIL_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

/// Go's `textproto.CanonicalMIMEHeaderKey` (the same rule as HTTP's):
/// `x-priority` → `X-Priority`.
pub use crate::commoncfg::canonical_header_key;

impl IntegrationConfig for EmailConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Alertmanager's per-config rules and the `global.smtp_*` defaults.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if self.to.as_ref().is_none_or(|t| t.0.trim().is_empty()) {
            return Err(invalid(f, "missing to address in email config"));
        }
        let mut headers = BTreeMap::new();
        for (k, v) in std::mem::take(&mut self.headers) {
            let key = canonical_header_key(&k);
            if headers.insert(key.clone(), v).is_some() {
                return Err(invalid(
                    format!("{f}.headers"),
                    format!("duplicate header {key:?} in email config"),
                ));
            }
        }
        self.headers = headers;
        if let Some(t) = self.threading.as_ref().filter(|t| t.enabled) {
            for h in ["References", "In-Reply-To"] {
                if self.headers.contains_key(h) {
                    return Err(invalid(
                        f,
                        format!("conflicting configuration: threading.enabled conflicts with custom {h} header"),
                    ));
                }
            }
            if !matches!(t.thread_by_date.as_str(), "none" | "daily") {
                return Err(invalid(
                    format!("{f}.threading"),
                    "threading.thread_by_date must be either 'none' or 'daily'",
                ));
            }
        }
        if self.smarthost.is_none() {
            let host = g
                .smtp_smarthost
                .clone()
                .ok_or_else(|| invalid(format!("{f}.smarthost"), "no global SMTP smarthost set"))?;
            self.smarthost = Some(host);
        }
        if self.from.as_deref().is_none_or(str::is_empty) {
            let from = g
                .smtp_from
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("{f}.from"), "no global SMTP from set"))?;
            self.from = Some(from);
        }
        if self.hello.as_deref().is_none_or(str::is_empty) {
            self.hello = Some(g.smtp_hello.clone());
        }
        if self.auth_username.is_none() {
            self.auth_username = g.smtp_auth_username.clone();
        }
        if self.auth_password.is_some() && self.auth_password_file.is_some() {
            return Err(invalid(
                f,
                "at most one of auth_password & auth_password_file must be configured",
            ));
        }
        if self.auth_password.is_none() && self.auth_password_file.is_none() {
            self.auth_password = g.smtp_auth_password.clone();
            self.auth_password_file = g.smtp_auth_password_file.clone();
        }
        // Each of the two falls back on its own (`cmp.Or` in Go), so a
        // local secret and a global secret file can both be set; the file
        // wins when the secret is read, as in Alertmanager.
        if self
            .auth_secret
            .as_ref()
            .is_none_or(|s| s.expose().is_empty())
        {
            self.auth_secret = g.smtp_auth_secret.clone();
        }
        if self.auth_secret_file.as_deref().is_none_or(str::is_empty) {
            self.auth_secret_file = g.smtp_auth_secret_file.clone();
        }
        if self.auth_identity.is_none() {
            self.auth_identity = g.smtp_auth_identity.clone();
        }
        if self.require_tls.is_none() {
            self.require_tls = Some(g.smtp_require_tls);
        }
        if self.tls_config.is_none() {
            self.tls_config = g.smtp_tls_config.clone();
        }
        if self.force_implicit_tls.is_none() {
            self.force_implicit_tls = g.smtp_force_implicit_tls;
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("to", self.to.as_ref().map_or("", |t| t.0.as_str())),
            ("from", self.from.as_deref().unwrap_or("")),
            ("html", &self.html),
            ("text", &self.text),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text))
        .collect();
        for (h, text) in &self.headers {
            texts.push((format!("headers.{h}"), text));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Email::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

impl EmailConfig {
    /// Implicit TLS (SMTPS): asked for, or port 465 unless turned off.
    pub fn implicit_tls(&self) -> bool {
        match self.force_implicit_tls {
            Some(v) => v,
            None => self.smarthost.as_ref().is_some_and(|h| h.port == 465),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonical() {
        assert_eq!(canonical_header_key("x-priority"), "X-Priority");
        assert_eq!(canonical_header_key("SUBJECT"), "Subject");
        assert_eq!(canonical_header_key("message-id"), "Message-Id");
        assert_eq!(canonical_header_key("bad key"), "bad key");
    }

    #[test]
    fn host_port() {
        assert_eq!(
            HostPort::parse("smtp.example.com:587").unwrap().to_string(),
            "smtp.example.com:587"
        );
        assert_eq!(HostPort::parse("[::1]:25").unwrap().host, "::1");
        assert!(HostPort::parse("smtp.example.com").is_err());
        assert!(HostPort::parse("smtp.example.com:").is_err());
    }
}
