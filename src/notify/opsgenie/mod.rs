//! The Opsgenie integration (`notify/opsgenie`): the Alert API v2. A firing
//! group creates (or, Opsgenie deduplicating by alias, adds to) the alert
//! whose alias is the group key's hash; `update_alerts` also rewrites its
//! message and description; a resolved group closes it.
//!
//! Opsgenie rate-limits with 429, which is retried no sooner than its
//! `Retry-After` (Alertmanager retries it at once).

mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::Serialize;

pub use config::{OpsgenieConfig, OpsgenieResponder};

use super::http::{check_status, redact, truncate_runes, Client, Credential};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::Alert;
use crate::template::{Data, Templates, Value};

/// Opsgenie refuses longer messages (130 characters, counted in runes).
const MAX_MESSAGE_RUNES: usize = 130;

/// How much of a refusing answer's body goes into the error.
const MAX_ERROR_BODY: usize = 1024;

pub struct Opsgenie {
    conf: OpsgenieConfig,
    client: Client,
    /// `api_url`, its path ending in `/`.
    base: url::Url,
    key: Credential,
    templates: Arc<Templates>,
    external_url: String,
}

/// `POST v2/alerts`, fields in Go's order and with its `omitempty`s.
#[derive(Serialize)]
struct Create {
    alias: String,
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    details: BTreeMap<String, String>,
    source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    responders: Vec<Responder>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    priority: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    entity: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
}

#[derive(Serialize, PartialEq, Default)]
struct Responder {
    #[serde(skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
struct Close {
    source: String,
}

#[derive(Serialize)]
struct UpdateMessage<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
}

#[derive(Serialize)]
struct UpdateDescription<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
}

/// Go's `safeSplit`: the whole text trimmed, then split, empty parts
/// dropped (the parts themselves keep their spaces).
fn safe_split(s: &str, sep: char) -> Vec<String> {
    s.trim()
        .split(sep)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// JSON as Go's `json.Encoder` writes it: a newline at the end.
fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut body = crate::gojson::to_vec(v);
    body.push(b'\n');
    body
}

/// One request of a notification.
struct Call {
    method: Method,
    url: url::Url,
    body: Vec<u8>,
}

impl Opsgenie {
    fn new(
        conf: &OpsgenieConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Opsgenie, BuildError> {
        let http = conf.http_config.clone().unwrap_or_default();
        let client = Client::new(&http, None)?;
        let base = conf
            .api_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or(BuildError::Missing("opsgenie config without api_url"))?;
        let key = Credential::from(
            conf.api_key
                .as_ref()
                .map(|s| s.expose())
                .filter(|s| !s.is_empty()),
            conf.api_key_file.as_ref().filter(|s| !s.is_empty()),
        )
        .ok_or(BuildError::Missing("opsgenie config without api_key"))?;
        Ok(Opsgenie {
            conf: conf.clone(),
            client,
            base,
            key,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// `api_url` with `path` appended to its path; with `by_alias`, the
    /// query gets `identifierType=alias` (Go re-encodes it, keys sorted).
    fn endpoint(&self, path: &str, by_alias: bool) -> url::Url {
        let mut u = self.base.clone();
        u.set_path(&format!("{}{path}", self.base.path()));
        if by_alias {
            let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in self.base.query_pairs() {
                q.entry(k.into_owned()).or_default().push(v.into_owned());
            }
            q.insert("identifierType".into(), vec!["alias".into()]);
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, vs) in &q {
                for v in vs {
                    ser.append_pair(k, v);
                }
            }
            u.set_query(Some(&ser.finish()));
        }
        u
    }

    /// The requests of one notification, in the order Go sends them.
    /// `value` is `data` as templates see it.
    fn calls(&self, ctx: &NotifyCtx, data: &Data, value: &Value) -> Result<Vec<Call>, NotifyError> {
        let c = &self.conf;
        let t = |text: &str| {
            self.templates.execute_text(text, value).map_err(|e| {
                NotifyError::new(
                    false,
                    FailureReason::Other,
                    format!("templating error: {e}"),
                )
            })
        };
        let mut details: BTreeMap<String, String> = data
            .common_labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &c.details {
            details.insert(k.clone(), t(v)?);
        }
        let alias = super::group_key_hash(&ctx.group_key);
        if data.status == "resolved" {
            let body = encode(&Close {
                source: t(&c.source)?,
            });
            let url = self.endpoint(&format!("v2/alerts/{alias}/close"), true);
            return Ok(vec![Call {
                method: Method::POST,
                url,
                body,
            }]);
        }
        let (message, truncated) = truncate_runes(t(&c.message)?, MAX_MESSAGE_RUNES);
        if truncated {
            tracing::warn!(key = %ctx.group_key, max_runes = MAX_MESSAGE_RUNES, "Truncated message");
        }
        let mut responders = Vec::new();
        for r in &c.responders {
            let responder = Responder {
                id: t(&r.id)?,
                name: t(&r.name)?,
                username: t(&r.username)?,
                kind: t(&r.kind)?,
            };
            // A responder that renders empty (filled from labels an alert
            // does not have) is left out.
            if responder == Responder::default() {
                continue;
            }
            if responder.kind == "teams" {
                for team in safe_split(&responder.name, ',') {
                    responders.push(Responder {
                        // Go renders each name once more.
                        name: t(&team)?,
                        kind: "team".into(),
                        ..Responder::default()
                    });
                }
                continue;
            }
            responders.push(responder);
        }
        let create = Create {
            alias: alias.clone(),
            message,
            description: t(&c.description)?,
            details,
            source: t(&c.source)?,
            responders,
            tags: safe_split(&t(&c.tags)?, ','),
            note: t(&c.note)?,
            priority: t(&c.priority)?,
            entity: t(&c.entity)?,
            actions: safe_split(&t(&c.actions)?, ','),
        };
        let mut calls = vec![Call {
            method: Method::POST,
            url: self.endpoint("v2/alerts", false),
            body: encode(&create),
        }];
        if c.update_alerts {
            calls.push(Call {
                method: Method::PUT,
                url: self.endpoint(&format!("v2/alerts/{alias}/message"), true),
                body: encode(&UpdateMessage {
                    message: &create.message,
                }),
            });
            calls.push(Call {
                method: Method::PUT,
                url: self.endpoint(&format!("v2/alerts/{alias}/description"), true),
                body: encode(&UpdateDescription {
                    description: &create.description,
                }),
            });
        }
        Ok(calls)
    }

    /// The API key, read (from its file) and rendered as a template for
    /// each notification, as Go does. Never part of an error.
    async fn api_key(&self, value: &Value) -> Result<String, NotifyError> {
        let raw = self.key.read_async().await.map_err(|mut e| {
            // Go gives up on a key file it cannot read.
            e.retryable = false;
            e.message = format!("read key_file error: {}", e.message);
            e
        })?;
        let key = self.templates.execute_text(&raw, value).map_err(|_| {
            NotifyError::new(
                false,
                FailureReason::Other,
                "templating error: the api_key does not render",
            )
        })?;
        Ok(key.trim().to_string())
    }
}

/// Sets the `Authorization` header, replacing whatever `http_config`
/// put there: Go sets the GenieKey first and the `http_config`
/// credentials only fill an empty header.
fn with_authorization(
    req: reqwest::RequestBuilder,
    value: HeaderValue,
) -> Result<reqwest::RequestBuilder, NotifyError> {
    let (client, req) = req.build_split();
    let mut req = req.map_err(|e| {
        NotifyError::new(
            false,
            FailureReason::Other,
            format!("building the request: {}", e.without_url()),
        )
    })?;
    req.headers_mut().insert(AUTHORIZATION, value);
    Ok(reqwest::RequestBuilder::from_parts(client, req))
}

/// Go's `url.Error` text for a request that got no answer: always retried.
fn no_answer(method: &Method, url: &url::Url, e: reqwest::Error) -> NotifyError {
    let op = match *method {
        Method::PUT => "Put",
        _ => "Post",
    };
    NotifyError::new(
        true,
        FailureReason::Other,
        format!("{op} \"{}\": {}", redact(url.as_str()), e.without_url()),
    )
}

#[async_trait::async_trait]
impl Notifier for Opsgenie {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let mut data = Data::new(
            &ctx.receiver,
            &ctx.group_labels,
            alerts,
            ctx.now,
            &self.external_url,
        );
        data.notification_reason = ctx.reason.map(|r| r.as_str());
        data.route_labels = ctx.route_labels.clone();
        let value = data.to_value();
        let calls = self.calls(ctx, &data, &value)?;
        let key = self.api_key(&value).await?;
        let auth = HeaderValue::from_str(&format!("GenieKey {key}")).map_err(|_| {
            NotifyError::new(
                false,
                FailureReason::Other,
                "the api_key is not a valid header value",
            )
        })?;
        for call in calls {
            let req = self
                .client
                .request(
                    call.method.clone(),
                    call.url.as_str(),
                    Some(call.body),
                    Some("application/json"),
                )
                .await?;
            let req = with_authorization(req, auth.clone())?;
            let resp = super::http::send(req)
                .await
                .map_err(|e| no_answer(&call.method, &call.url, e))?;
            // Opsgenie's rate limit (429) is worth another try.
            if let Err(mut e) = check_status(&resp, &[429]) {
                let body = resp.bytes().await.unwrap_or_default();
                let details = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
                if !details.is_empty() {
                    e.message = format!("{}: {details}", e.message);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;

    fn ctx() -> NotifyCtx {
        NotifyCtx {
            group_key: "{}:{alertname=\"A\"}".into(),
            group_labels: LabelSet::from_strs([("alertname", "A")]),
            route_labels: Default::default(),
            receiver: "og".into(),
            now: jiff::Timestamp::now(),
            repeat_interval: std::time::Duration::from_secs(3600),
            deadline: tokio::time::Instant::now(),
            cancel: Default::default(),
            stopping: Default::default(),
            firing_hashes: vec![],
            resolved_hashes: vec![],
            reason: None,
            mute_time_intervals: vec![],
            active_time_intervals: vec![],
            marker: Default::default(),
            receiver_data: Default::default(),
            muted_resolved: Vec::new(),
            alertmanager_rules: false,
        }
    }

    fn notifier(yaml: &str) -> Opsgenie {
        let mut c: OpsgenieConfig = serde_saphyr::from_str(yaml).unwrap();
        let g = crate::notify::GlobalConfig {
            opsgenie_api_key: Some(crate::commoncfg::Secret::new("k")),
            ..Default::default()
        };
        use crate::notify::IntegrationConfig;
        c.apply_global(&g, "og").unwrap();
        let t = Arc::new(Templates::load(&[]).unwrap());
        Opsgenie::new(&c, t, "http://am.test").unwrap()
    }

    /// Two alerts of the group, firing unless `ended`.
    fn data(ctx: &NotifyCtx, ended: bool) -> Data {
        let alerts: Vec<Arc<Alert>> = ["i1", "i2"]
            .iter()
            .map(|i| {
                // Firing until far in the future, or ended long ago.
                let end = if ended { 1 } else { 4_000_000_000 };
                let mut a = crate::model::test_alert(0, end, 0, false);
                a.labels =
                    LabelSet::from_strs([("alertname", "A"), ("instance", i), ("team", "db")]);
                Arc::new(a)
            })
            .collect();
        Data::new(
            &ctx.receiver,
            &ctx.group_labels,
            &alerts,
            ctx.now,
            "http://am.test",
        )
    }

    #[test]
    fn firing_creates_with_truncated_message_and_expanded_teams() {
        let og = notifier(&format!(
            r#"
api_url: http://og.test/base?region=eu
message: '{{{{ .CommonLabels.alertname }}}} ü{}'
details: {{team: 'is {{{{ .CommonLabels.team }}}}'}}
responders:
  - {{name: ' a, {{{{ .CommonLabels.team }}}} ', type: teams}}
  - {{name: '{{{{ .CommonLabels.nope }}}}', type: '{{{{ .CommonLabels.nope }}}}'}}
  - {{id: x, type: User}}
update_alerts: true
"#,
            "x".repeat(200)
        ));
        let ctx = ctx();
        let d = data(&ctx, false);
        let calls = og.calls(&ctx, &d, &d.to_value()).unwrap();
        let alias = super::super::group_key_hash(&ctx.group_key);
        let lines: Vec<String> = calls
            .iter()
            .map(|c| format!("{} {}", c.method, c.url))
            .collect();
        assert_eq!(
            lines,
            [
                "POST http://og.test/base/v2/alerts?region=eu".to_string(),
                format!("PUT http://og.test/base/v2/alerts/{alias}/message?identifierType=alias&region=eu"),
                format!("PUT http://og.test/base/v2/alerts/{alias}/description?identifierType=alias&region=eu"),
            ]
        );
        let body: serde_json::Value = serde_json::from_slice(&calls[0].body).unwrap();
        let message = body["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), MAX_MESSAGE_RUNES);
        assert!(message.starts_with("A ü") && message.ends_with('…'));
        assert_eq!(body["alias"], alias);
        assert_eq!(
            body["details"],
            serde_json::json!({"alertname": "A", "team": "is db"})
        );
        assert_eq!(
            body["responders"],
            serde_json::json!([
                {"name": "a", "type": "team"},
                {"name": " db", "type": "team"},
                {"id": "x", "type": "User"}
            ])
        );
        assert!(body.get("tags").is_none() && body.get("note").is_none());
        let update: serde_json::Value = serde_json::from_slice(&calls[1].body).unwrap();
        assert_eq!(update, serde_json::json!({"message": message}));
    }

    #[test]
    fn resolved_closes_by_alias() {
        let og = notifier("{source: 'src {{ .Status }}', update_alerts: true}");
        let ctx = ctx();
        let d = data(&ctx, true);
        let calls = og.calls(&ctx, &d, &d.to_value()).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].method, Method::POST);
        assert_eq!(
            calls[0].url.as_str(),
            format!(
                "https://api.opsgenie.com/v2/alerts/{}/close?identifierType=alias",
                super::super::group_key_hash(&ctx.group_key)
            )
        );
        assert_eq!(calls[0].body, b"{\"source\":\"src resolved\"}\n");
    }

    #[test]
    fn a_template_error_is_permanent() {
        let og = notifier("{note: '{{ template \"nope\" . }}'}");
        let ctx = ctx();
        let d = data(&ctx, false);
        let e = og.calls(&ctx, &d, &d.to_value()).err().unwrap();
        assert!(!e.retryable);
        assert!(e.message.starts_with("templating error: "), "{}", e.message);
    }

    #[test]
    fn lists_split_like_go() {
        assert_eq!(safe_split(" a,b,, c ", ','), ["a", "b", " c"]);
        assert!(safe_split("  ", ',').is_empty());
    }
}
