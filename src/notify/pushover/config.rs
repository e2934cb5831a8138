//! `pushover_configs`: the application token, the user key and the
//! message parameters, each a template, with Alertmanager's defaults.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_message")]
    pub message: String,
    #[serde(default = "d_url")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url_title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sound: String,
    /// Emergency (2) while firing, normal (0) once resolved.
    #[serde(default = "d_priority")]
    pub priority: String,
    /// How often Pushover repeats an emergency notification.
    #[serde(default = "d_retry")]
    pub retry: GoDuration,
    /// How long Pushover keeps repeating it.
    #[serde(default = "d_expire")]
    pub expire: GoDuration,
    /// How long the message lives on the device; zero is Pushover's own.
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub ttl: GoDuration,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monospace: bool,
}

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"pushover.default.{name}\" . }}}}")
}
fn d_title() -> String {
    tmpl("title")
}
fn d_message() -> String {
    tmpl("message")
}
fn d_url() -> String {
    tmpl("url")
}
fn d_priority() -> String {
    r#"{{ if eq .Status "firing" }}2{{ else }}0{{ end }}"#.into()
}
fn d_retry() -> GoDuration {
    GoDuration(jiff::SignedDuration::from_secs(60))
}
fn d_expire() -> GoDuration {
    GoDuration(jiff::SignedDuration::from_secs(3600))
}

/// A Go `time.Duration` as Pushover's keys take it (`90s`, `1.5h`, no
/// days, negative allowed), unlike the Prometheus durations elsewhere in
/// the config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoDuration(pub jiff::SignedDuration);

impl GoDuration {
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Whole seconds, truncated toward zero, as Go's
    /// `int64(d.Seconds())`.
    pub fn whole_seconds(&self) -> i64 {
        self.0.as_secs()
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_negative() {
            f.write_str("-")?;
        }
        f.write_str(&crate::duration::format_go_duration(self.0.unsigned_abs()))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s or 1h")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<GoDuration, E> {
                crate::duration::parse_go_duration_signed(s)
                    .map(GoDuration)
                    .map_err(|_| E::custom(format!("time: invalid duration {s:?}")))
            }
            // A bare number is Go's "missing unit" (only 0 parses).
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<GoDuration, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<GoDuration, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<GoDuration, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// Go compares secrets with `!= ""`: an empty one counts as unset.
fn set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

fn set_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl IntegrationConfig for PushoverConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `PushoverConfig.UnmarshalYAML`'s checks, in its order; Pushover has
    /// no `global:` keys but `http_config`.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        for (inline, file, name) in [
            (
                set(&self.user_key),
                set_str(&self.user_key_file),
                "user_key",
            ),
            (set(&self.token), set_str(&self.token_file), "token"),
        ] {
            if !inline && !file {
                return Err(invalid(
                    f,
                    format!("one of {name} or {name}_file must be configured"),
                ));
            }
            if inline && file {
                return Err(invalid(
                    f,
                    format!("at most one of {name} & {name}_file must be configured"),
                ));
            }
        }
        if self.html && self.monospace {
            return Err(invalid(
                f,
                "at most one of monospace & html must be configured",
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        [
            ("title", &self.title),
            ("message", &self.message),
            ("url", &self.url),
            ("url_title", &self.url_title),
            ("device", &self.device),
            ("sound", &self.sound),
            ("priority", &self.priority),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect()
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Pushover::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<PushoverConfig, FieldError> {
        let mut c: PushoverConfig = serde_saphyr::from_str(yaml).map_err(|e| FieldError {
            field: String::new(),
            message: e.to_string(),
        })?;
        c.apply_global(&GlobalConfig::default(), "p").map(|()| c)
    }

    #[test]
    fn durations_are_go_durations() {
        let c = load("{user_key: u, token: t, retry: 1m30s, expire: 1.5h, ttl: 90s}").unwrap();
        assert_eq!(
            (c.retry.whole_seconds(), c.expire.whole_seconds()),
            (90, 5400)
        );
        assert_eq!(c.ttl.whole_seconds(), 90);
        let d = load("{user_key: u, token: t}").unwrap();
        assert_eq!(
            (d.retry.whole_seconds(), d.expire.whole_seconds()),
            (60, 3600)
        );
        assert_eq!(d.retry.to_string(), "1m0s");
        // Days are a Prometheus unit, not a Go one; a bare number lacks
        // its unit.
        assert!(load("{user_key: u, token: t, retry: 1d}").is_err());
        assert!(load("{user_key: u, token: t, retry: 30}").is_err());
        assert!(load("{user_key: u, token: t, retry: 0}").is_ok());
    }

    #[test]
    fn go_checks_in_go_order() {
        let e = load("{token: t}").unwrap_err();
        assert_eq!(
            e.message,
            "one of user_key or user_key_file must be configured"
        );
        let e = load("{user_key: u, user_key_file: f, token: t}").unwrap_err();
        assert_eq!(
            e.message,
            "at most one of user_key & user_key_file must be configured"
        );
        let e = load("{user_key: u, token: ''}").unwrap_err();
        assert_eq!(e.message, "one of token or token_file must be configured");
        let e = load("{user_key: u, token: t, html: true, monospace: true}").unwrap_err();
        assert_eq!(
            e.message,
            "at most one of monospace & html must be configured"
        );
    }
}
