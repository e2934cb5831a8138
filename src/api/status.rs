//! `/api/v2/status`, `/api/v2/receivers` and `/-/reload`.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{error_response, json_response, ApiState};
use crate::matcher::parse_matcher;
use crate::model::format_rfc3339_millis;
use crate::query::match_filter_labels;

#[derive(Serialize)]
struct ClusterStatus {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    peers: Vec<PeerStatus>,
    status: &'static str,
}

#[derive(Serialize)]
struct PeerStatus {
    address: String,
    name: String,
}

#[derive(Serialize)]
struct ConfigBody {
    original: String,
}

#[derive(Serialize)]
struct VersionInfo {
    branch: &'static str,
    #[serde(rename = "buildDate")]
    build_date: &'static str,
    #[serde(rename = "buildUser")]
    build_user: &'static str,
    #[serde(rename = "goVersion")]
    go_version: &'static str,
    revision: String,
    version: &'static str,
}

#[derive(Serialize)]
struct Status {
    cluster: ClusterStatus,
    config: ConfigBody,
    uptime: String,
    #[serde(rename = "versionInfo")]
    version_info: VersionInfo,
}

/// A node without `--cluster.peer` reports what Alertmanager reports with
/// clustering disabled.
fn cluster_status(app: &crate::app::App) -> ClusterStatus {
    match app.settings.cluster.as_ref().and_then(|c| c.peer()) {
        Some(p) => ClusterStatus {
            name: p.name().to_string(),
            peers: p
                .peers()
                .into_iter()
                .map(|i| PeerStatus {
                    address: i.address,
                    name: i.name,
                })
                .collect(),
            status: if p.ready() { "ready" } else { "settling" },
        },
        None if app.settings.cluster.is_some() => ClusterStatus {
            name: String::new(),
            peers: Vec::new(),
            status: "settling",
        },
        None => ClusterStatus {
            name: String::new(),
            peers: Vec::new(),
            status: "disabled",
        },
    }
}

pub(crate) async fn get_status(State(s): State<ApiState>) -> Response {
    let rt = s.app.runtime();
    let body = Status {
        cluster: cluster_status(&s.app),
        config: ConfigBody {
            original: rt.config.to_yaml(),
        },
        uptime: format_rfc3339_millis(s.app.started),
        version_info: VersionInfo {
            branch: option_env!("HERALD_BRANCH").unwrap_or("unknown"),
            build_date: option_env!("HERALD_BUILD_DATE").unwrap_or("unknown"),
            build_user: option_env!("HERALD_BUILD_USER").unwrap_or("unknown"),
            go_version: "none (herald, rust)",
            // amtool warns when major.minor differs from its own: report the
            // release Herald implements, and Herald's build as the revision.
            revision: crate::herald_revision(),
            version: crate::ALERTMANAGER_VERSION,
        },
    };
    json_response(StatusCode::OK, &body)
}

pub(crate) async fn get_receivers(State(s): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    #[derive(Serialize)]
    struct Receiver<'a> {
        labels: BTreeMap<String, String>,
        name: &'a str,
    }
    let mut matchers = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if k == "receiver_matchers" {
            match parse_matcher(&v, "api") {
                Ok(m) => matchers.push(m),
                Err(e) => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        &format!("failed to parse receiver_matchers param: {e}"),
                    )
                }
            }
        }
    }
    let rt = s.app.runtime();
    let list: Vec<Receiver> = rt
        .config
        .config
        .receivers
        .iter()
        .map(|r| Receiver {
            labels: r.api_labels(),
            name: &r.name,
        })
        .filter(|r| matchers.is_empty() || match_filter_labels(&matchers, &r.labels))
        .collect();
    json_response(StatusCode::OK, &list)
}

pub(crate) async fn reload(State(s): State<ApiState>) -> Response {
    match s.app.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}
