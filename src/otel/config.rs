//! `tracing:` as Alertmanager parses it (`tracing/config.go`), with
//! prometheus/common's `Headers` for `headers:`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::commoncfg::{FieldError, Secret, TlsConfig};
use crate::duration::PromDuration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    #[default]
    Grpc,
    Http,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Kept as written until `check`, so a wrong value gets Go's message.
    #[serde(rename = "client_type", default, skip_serializing)]
    pub client_type_raw: Option<String>,
    #[serde(skip_deserializing)]
    pub client_type: ClientType,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sampling_fraction: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, HeaderValues>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(default, skip_serializing_if = "zero_duration")]
    pub timeout: PromDuration,
}

fn is_zero(f: &f64) -> bool {
    *f == 0.0
}

fn zero_duration(d: &PromDuration) -> bool {
    d.0.is_zero()
}

/// One header of prometheus/common's `Headers`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValues {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl TracingConfig {
    /// `TracingConfig.UnmarshalYAML` and `TracingClientType.UnmarshalYAML`.
    pub fn check(&mut self) -> Result<(), FieldError> {
        let err = |m: String| crate::commoncfg::invalid("tracing", m);
        self.client_type = match self.client_type_raw.as_deref() {
            None | Some("grpc") => ClientType::Grpc,
            Some("http") => ClientType::Http,
            Some(other) => {
                return Err(err(format!(
                    "expected tracing client type to be to be http or grpc, but got {other}"
                )))
            }
        };
        if self.endpoint.is_empty() {
            return Err(err("tracing endpoint must be set".into()));
        }
        if !self.compression.is_empty() && self.compression != "gzip" {
            return Err(err(format!(
                "invalid compression type {} provided, valid options: gzip",
                self.compression
            )));
        }
        Ok(())
    }

    /// The first value of each header, as Alertmanager's `headersToMap`
    /// sends it; header files are refused as there.
    pub(crate) fn header_map(&self) -> Result<HashMap<String, String>, String> {
        let mut out = HashMap::new();
        for (name, h) in self.headers.iter().flatten() {
            if let Some(v) = h.values.first() {
                out.insert(name.clone(), v.clone());
            } else if let Some(s) = h.secrets.first() {
                out.insert(name.clone(), s.expose().to_string());
            } else if !h.files.is_empty() {
                return Err("header files are not supported for tracing configuration".into());
            }
        }
        Ok(out)
    }
}
