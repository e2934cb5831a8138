//! `event_recorder:` as Alertmanager parses it (`eventrecorder/config.go`,
//! `file.go`, `webhook.go`, `stdout.go`), whether or not the
//! `event-recorder` feature is on.

use serde::{Deserialize, Serialize};

use crate::commoncfg::{null_default, FieldError, HttpClientConfig, Unsupported};
use crate::duration::PromDuration;

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecorderConfig {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub file_outputs: Vec<FileOutputConfig>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub webhook_outputs: Vec<WebhookOutputConfig>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kafka_outputs: Vec<Unsupported>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stdout_outputs: Vec<StdoutOutputConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    #[serde(default)]
    pub path: String,
}

/// `stdout_outputs: [{}]`: the entry has no keys.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutputConfig {}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookOutputConfig {
    #[serde(default)]
    pub url: Option<crate::commoncfg::Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "zero_duration")]
    pub timeout: PromDuration,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub workers: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_retries: i64,
    #[serde(default, skip_serializing_if = "zero_duration")]
    pub retry_backoff: PromDuration,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch_max_events: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch_max_bytes: i64,
    #[serde(default, skip_serializing_if = "zero_duration")]
    pub batch_flush_interval: PromDuration,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn zero_duration(d: &PromDuration) -> bool {
    d.0.is_zero()
}

impl EventRecorderConfig {
    /// The outputs' `UnmarshalYAML` rules, with Alertmanager's messages;
    /// `dir` is the config file's directory, which file paths are relative
    /// to (`resolveFilepaths`).
    pub fn check(&mut self, dir: &std::path::Path) -> Result<(), FieldError> {
        let err = |field: String, m: &str| crate::commoncfg::invalid(field, m);
        for (i, f) in self.file_outputs.iter_mut().enumerate() {
            if f.path.is_empty() {
                return Err(err(
                    format!("event_recorder.file_outputs[{i}]"),
                    "event_recorder file output requires a path",
                ));
            }
            if std::path::Path::new(&f.path).is_relative() {
                f.path = dir.join(&f.path).to_string_lossy().into_owned();
            }
        }
        for (i, w) in self.webhook_outputs.iter().enumerate() {
            let field = format!("event_recorder.webhook_outputs[{i}]");
            let Some(url) = w.url.as_ref().filter(|u| !u.expose().is_empty()) else {
                return Err(err(field, "event_recorder webhook output requires a url"));
            };
            let absolute = url::Url::parse(url.expose())
                .ok()
                .is_some_and(|u| u.has_host() && u.host_str().is_some_and(|h| !h.is_empty()));
            if !absolute {
                return Err(err(
                    field,
                    "event_recorder webhook output requires an absolute http(s) url",
                ));
            }
            if w.batch_max_events < 0 || w.batch_max_bytes < 0 {
                return Err(err(
                    field,
                    "event_recorder webhook batch settings cannot be negative",
                ));
            }
            if !w.batch
                && (w.batch_max_events != 0
                    || w.batch_max_bytes != 0
                    || !w.batch_flush_interval.0.is_zero())
            {
                return Err(err(
                    field,
                    "event_recorder webhook batch settings require batch: true",
                ));
            }
            if let Some(h) = &w.http_config {
                h.validate()
                    .map_err(|m| crate::commoncfg::invalid(format!("{field}.http_config"), m))?;
            }
        }
        if !self.kafka_outputs.is_empty() {
            return Err(err(
                "event_recorder.kafka_outputs".into(),
                "the kafka event recorder output is not supported by Herald (use file_outputs, webhook_outputs or stdout_outputs)",
            ));
        }
        Ok(())
    }

    pub(crate) fn total_outputs(&self) -> usize {
        self.file_outputs.len() + self.webhook_outputs.len() + self.stdout_outputs.len()
    }
}
