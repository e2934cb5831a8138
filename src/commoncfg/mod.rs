//! The config vocabulary every section of `alertmanager.yml` shares, as
//! prometheus/common's `config` package is to Alertmanager: secrets, the
//! HTTP client settings (`http_config`, `tls_config`), and the YAML rules of
//! `gopkg.in/yaml.v2` that serde lacks.
//!
//! It sits below both `config` (the whole file) and the integrations'
//! configs in `notify/<kind>/config.rs`, so neither has to import the other.

mod http;
mod secret;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use http::{
    canonical_header_key, Authorization, BasicAuth, HttpClientConfig, OAuth2, TlsConfig,
};
pub use secret::{Secret, SECRET_TOKEN};

/// A rule of Alertmanager's that a section broke; `field` is the path to
/// the offending key (`receivers[0].slack_configs[1].api_url`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// yaml.v2 reads an empty value (`key:` or `key: ~`) as the zero value;
/// serde would refuse null for a list or map.
pub fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// serde's `default = "..."` for the many keys that default to true.
pub(crate) fn yes() -> bool {
    true
}

/// Accepts any YAML and remembers only that something was there: used for
/// parts of the schema Herald recognises but does not implement, so they are
/// refused by name instead of being reported as unknown keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Unsupported)
    }
}

impl Serialize for Unsupported {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// An absolute http(s) URL. The URL itself is left out of the message: it
/// may hold a secret (a Slack webhook URL is one).
pub fn check_http_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("invalid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err("scheme required for webhook url".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("missing host for URL".into());
    }
    Ok(())
}
