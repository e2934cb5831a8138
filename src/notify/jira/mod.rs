//! The Jira integration (`notify/jira`): one issue per alert group, found
//! again by its label `ALERT{<group key hash>}`. A flush searches for the
//! group's issue, creates it (POST `issue`) or updates it (PUT
//! `issue/{key}`), then resolves it when the group is resolved or reopens
//! it when the group fires again soon after the issue was resolved
//! (`resolve_transition`, `reopen_transition`, by name through
//! `issue/{key}/transitions`).
//!
//! API v2 (Data Center) takes the description as text; v3 (an `api_url`
//! ending in `/3`, Jira Cloud) takes an Atlassian Document Format document,
//! which the description template must render as JSON, as in Alertmanager.

mod config;
mod payload;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;

pub(crate) use config::check_api_url;
pub use config::{JiraConfig, JiraField};

use super::http::{check_status, redact, truncate_runes, Client};
use super::registry::BuildError;
use super::{group_key_hash, FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::model::gostr::go_quote;
use crate::model::Alert;
use crate::template::{Templates, Value};
use payload::Field;

/// Jira's limits, which Alertmanager truncates to rather than be refused.
const MAX_SUMMARY_RUNES: usize = 255;
const MAX_DESCRIPTION_RUNES: usize = 32767;

/// Jira answers 429 when it throttles: worth retrying, after `Retry-After`.
const RETRY_CODES: &[u16] = &[429];

pub struct Jira {
    conf: JiraConfig,
    api: url::Url,
    client: Client,
    templates: Arc<Templates>,
    external_url: String,
}

/// The part of a found issue that decides a transition.
#[derive(Deserialize)]
struct Found {
    #[serde(default)]
    key: String,
    #[serde(default)]
    fields: Option<FoundFields>,
}

#[derive(Deserialize)]
struct FoundFields {
    #[serde(default)]
    status: Option<FoundStatus>,
}

#[derive(Deserialize)]
struct FoundStatus {
    #[serde(default, rename = "statusCategory")]
    category: Option<Category>,
}

#[derive(Deserialize)]
struct Category {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    issues: Option<Vec<Found>>,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Option<Vec<Transition>>,
}

#[derive(Deserialize)]
struct Transition {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

fn fatal(message: String) -> NotifyError {
    NotifyError::new(false, FailureReason::Other, message)
}

/// Prefixes an error's message, keeping its retry decision and reason.
fn context(prefix: &str) -> impl FnOnce(NotifyError) -> NotifyError + '_ {
    move |mut e| {
        e.message = format!("{prefix}: {}", e.message);
        e
    }
}

impl Jira {
    fn new(
        conf: &JiraConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Jira, BuildError> {
        let raw = conf
            .api_url
            .as_deref()
            .ok_or(BuildError::Missing("jira config without api_url"))?;
        let api = url::Url::parse(raw).map_err(|_| BuildError::Missing("jira api_url invalid"))?;
        let http = conf.http_config.clone().unwrap_or_default();
        Ok(Jira {
            conf: conf.clone(),
            api,
            client: Client::new(&http, None)?,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// Whether the API takes ADF descriptions: Go decides by the URL's
    /// path (`/rest/api/3`), not by `api_type`.
    fn is_v3(&self) -> bool {
        self.api.path().trim_end_matches('/').ends_with("/3")
    }

    /// The search endpoint: Jira Cloud retired `/search` for
    /// `/rest/api/3/search/jql`, which Data Center does not have; `auto`
    /// takes a host under atlassian.net for Cloud.
    fn search_url(&self) -> String {
        let host = match self.api.port() {
            Some(p) => format!("{}:{p}", self.api.host_str().unwrap_or("")),
            None => self.api.host_str().unwrap_or("").to_string(),
        };
        let cloud = match self.conf.api_type.as_str() {
            "datacenter" => false,
            "cloud" => true,
            _ => host.ends_with("atlassian.net"),
        };
        if cloud {
            payload::join_path(&self.api, "/search/jql").replacen("/rest/api/2/", "/rest/api/3/", 1)
        } else {
            payload::join_path(&self.api, "/search")
        }
    }

    /// One API call; the answer's body on a 2xx. A non-2xx fails with
    /// Go's `unexpected status code N: <body>` (5xx and 429 retried);
    /// a request without an answer is retried too.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NotifyError> {
        let op = {
            let m = method.as_str();
            format!("{}{}", &m[..1], m[1..].to_ascii_lowercase())
        };
        let req = self
            .client
            .request(method, url, body, Some("application/json"))
            .await?
            .header(reqwest::header::ACCEPT_LANGUAGE, "en");
        let resp = super::http::send(req).await.map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("{op} {}: {}", go_quote(&redact(url)), e.without_url()),
            )
        })?;
        let status = check_status(&resp, RETRY_CODES);
        let body = resp.bytes().await.map_err(|e| {
            NotifyError::new(true, FailureReason::Other, e.without_url().to_string())
        })?;
        if let Err(mut e) = status {
            if !body.is_empty() {
                e.message = format!("{}: {}", e.message, String::from_utf8_lossy(&body));
            }
            return Err(e);
        }
        Ok(body.to_vec())
    }

    fn text(&self, text: &str, data: &Value) -> Result<String, String> {
        self.templates
            .execute_text(text, data)
            .map_err(|e| e.to_string())
    }

    /// The group's issue, if the search finds one: the first of at most
    /// two, open ones first, then the most recently resolved.
    async fn search(
        &self,
        ctx: &NotifyCtx,
        data: &Value,
        label: &str,
        firing: bool,
    ) -> Result<Option<Found>, NotifyError> {
        let project = self
            .text(&self.conf.project, data)
            .map_err(|e| fatal(format!("invalid project template or value: {e}")))?;
        let c = &self.conf;
        let jql = payload::jql(
            &c.wont_fix_resolution,
            firing,
            &c.reopen_transition,
            c.reopen_duration.0.as_secs() / 60,
            &project,
            label,
        );
        tracing::debug!(key = %ctx.group_key, jql = %jql, "search for recent issues");
        let body = self
            .call(
                Method::POST,
                &self.search_url(),
                Some(payload::search_body(&jql)),
            )
            .await
            .map_err(context("HTTP request to JIRA API"))?;
        let result: SearchResult =
            serde_json::from_slice(&body).map_err(|e| fatal(e.to_string()))?;
        let mut issues = result.issues.unwrap_or_default();
        if issues.len() > 1 {
            tracing::warn!(key = %ctx.group_key, selected_issue = %issues[0].key,
                "more than one issue matched, selecting the most recently resolved");
        }
        Ok((!issues.is_empty()).then(|| issues.swap_remove(0)))
    }

    /// The issue's fields as Go's `prepareIssueRequestBody` builds them;
    /// an update leaves out the summary and description whose
    /// `enable_update` is false.
    fn fields(
        &self,
        ctx: &NotifyCtx,
        data: &Value,
        label: &str,
        update: bool,
    ) -> Result<BTreeMap<String, Field>, NotifyError> {
        let c = &self.conf;
        let t = |what: &str, text: &str| {
            self.text(text, data)
                .map_err(|e| fatal(format!("{what} template: {e}")))
        };
        let summary = t("summary", &c.summary.template)?;
        let project = t("project", &c.project)?;
        let issue_type = t("issue_type", &c.issue_type)?;
        let mut custom = BTreeMap::new();
        for (k, v) in &c.fields {
            let mut render = |s: &str| t("fields", s);
            custom.insert(k.clone(), payload::render_field(v, &mut render)?);
        }
        let (summary, truncated) = truncate_runes(summary, MAX_SUMMARY_RUNES);
        if truncated {
            tracing::warn!(key = %ctx.group_key, max_runes = MAX_SUMMARY_RUNES, "Truncated summary");
        }
        let (description, truncated) = truncate_runes(
            t("description", &c.description.template)?,
            MAX_DESCRIPTION_RUNES,
        );
        if truncated {
            tracing::warn!(key = %ctx.group_key, max_runes = MAX_DESCRIPTION_RUNES, "Truncated description");
        }
        let description = if self.is_v3() {
            let d = description.trim();
            if d.is_empty() {
                None
            } else if serde_json::from_str::<serde::de::IgnoredAny>(d).is_err() {
                return Err(fatal(
                    "description template: invalid JSON for API v3".into(),
                ));
            } else {
                Some(Field::Raw(payload::compact(d)))
            }
        } else {
            (!description.is_empty()).then(|| Field::Json(description.into()))
        };
        let mut labels = Vec::with_capacity(c.labels.len() + 1);
        for (i, l) in c.labels.iter().enumerate() {
            labels.push(t(&format!("labels[{i}]"), l)?);
        }
        labels.push(label.to_string());
        labels.sort();
        let priority = t("priority", &c.priority)?;

        let mut fields = BTreeMap::new();
        if !update || c.summary.updates() {
            fields.insert("summary".into(), Field::Json(summary.into()));
        }
        if let Some(d) = description.filter(|_| !update || c.description.updates()) {
            fields.insert("description".into(), d);
        }
        let name = |n: String| {
            if n.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "name": n })
            }
        };
        fields.insert("issuetype".into(), Field::Json(name(issue_type)));
        fields.insert("labels".into(), Field::Json(labels.into()));
        if !priority.is_empty() {
            fields.insert("priority".into(), Field::Json(name(priority)));
        }
        fields.insert(
            "project".into(),
            Field::Json(serde_json::json!({ "key": project })),
        );
        // Custom fields win over the standard ones of the same name.
        for (k, v) in custom {
            fields.insert(k, Field::Json(v));
        }
        Ok(fields)
    }

    /// Resolves an open issue of a resolved group, reopens a resolved
    /// issue of a firing group; nothing when the transition is not
    /// configured or the issue is already where it should be.
    async fn transition(&self, issue: &Found, firing: bool) -> Result<(), NotifyError> {
        let Some(category) = issue
            .fields
            .as_ref()
            .and_then(|f| f.status.as_ref())
            .map(|s| s.category.as_ref().map_or("", |c| c.key.as_str()))
        else {
            return Ok(());
        };
        if issue.key.is_empty() {
            return Ok(());
        }
        let done = category == "done";
        let name = match (firing, done) {
            (true, true) => &self.conf.reopen_transition,
            (false, false) => &self.conf.resolve_transition,
            _ => return Ok(()),
        };
        if name.is_empty() {
            return Ok(());
        }
        let url = payload::join_path(&self.api, &format!("issue/{}/transitions", issue.key));
        let body = self.call(Method::GET, &url, None).await?;
        let list: Transitions = serde_json::from_slice(&body).map_err(|e| fatal(e.to_string()))?;
        let id = list
            .transitions
            .unwrap_or_default()
            .into_iter()
            .find(|t| &t.name == name)
            .map(|t| t.id)
            .ok_or_else(|| {
                fatal(format!(
                    "can't find transition {name} for issue {}",
                    issue.key
                ))
            })?;
        tracing::debug!(issue_key = %issue.key, transition = %name, "transitions jira issue");
        self.call(Method::POST, &url, Some(payload::transition_body(&id)))
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Notifier for Jira {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let label = format!("ALERT{{{}}}", group_key_hash(&ctx.group_key));
        let firing = alerts.iter().any(|a| !a.resolved_at(ctx.now));
        let existing = self
            .search(ctx, &data, &label, firing)
            .await
            .map_err(context("failed to look up existing issues"))?;
        let (method, path) = match &existing {
            // A resolved group never opens an issue.
            None if !firing => return Ok(()),
            None => (Method::POST, "issue".to_string()),
            Some(issue) => (Method::PUT, format!("issue/{}", issue.key)),
        };
        let fields = self.fields(ctx, &data, &label, existing.is_some())?;
        let url = payload::join_path(&self.api, &path);
        let what = format!("failed to {method} request to {}", go_quote(&path));
        self.call(method, &url, Some(payload::issue_body(&fields)))
            .await
            .map_err(context(&what))?;
        match &existing {
            Some(issue) => self.transition(issue, firing).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jira(api_url: &str, api_type: &str) -> Jira {
        let conf: JiraConfig = serde_saphyr::from_str(&format!(
            "api_url: '{api_url}'\napi_type: {api_type}\nproject: P\nissue_type: B\n"
        ))
        .unwrap();
        Jira::new(&conf, Arc::new(Templates::alertmanager()), "http://am").unwrap()
    }

    #[test]
    fn the_search_endpoint_and_adf_follow_go() {
        for (url, kind, search, v3) in [
            (
                "https://x.atlassian.net/rest/api/2",
                "auto",
                "https://x.atlassian.net/rest/api/3/search/jql",
                false,
            ),
            (
                "https://x.atlassian.net/rest/api/3/",
                "datacenter",
                "https://x.atlassian.net/rest/api/3/search",
                true,
            ),
            (
                "https://jira.example.com/rest/api/2",
                "auto",
                "https://jira.example.com/rest/api/2/search",
                false,
            ),
            (
                "https://jira.example.com/rest/api/2",
                "cloud",
                "https://jira.example.com/rest/api/3/search/jql",
                false,
            ),
        ] {
            let j = jira(url, kind);
            assert_eq!(j.search_url(), search, "{url} {kind}");
            assert_eq!(j.is_v3(), v3, "{url}");
        }
    }
}
