//! Every integration's secrets stay secret: one receiver with all eighteen
//! integrations, each credential a unique marker, against services that
//! fail (so every error path runs and is logged at debug level). No marker
//! may appear in Herald's log or in `/api/v2/status`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::{FakeService, Reply};
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// The receiver, `{P}` the failing service's address; every `SECRET…`
/// string is a credential (a token, a key, a password, or a URL that is one).
const RECEIVER: &str = r#"
    discord_configs: [{webhook_url: 'http://{P}/discord/SECRETdiscord'}]
    email_configs: [{to: a@example.com, from: h@example.com, smarthost: '{SMTP}', auth_username: u, auth_password: SECRETemail, require_tls: false}]
    incidentio_configs: [{url: 'http://{P}/incidentio', alert_source_token: SECRETincidentio}]
    pagerduty_configs: [{routing_key: SECRETpagerduty, url: 'http://{P}/v2/enqueue'}]
    slack_configs: [{api_url: 'http://{P}/slack/SECRETslack'}]
    webhook_configs: [{url: 'http://{P}/webhook/SECRETwebhook'}]
    opsgenie_configs: [{api_key: SECRETopsgenie, api_url: 'http://{P}/'}]
    wechat_configs: [{api_secret: SECRETwechat, corp_id: c, to_user: u, agent_id: '1', api_url: 'http://{P}/wechat/'}]
    pushover_configs: [{user_key: SECRETpushoveruser, token: SECRETpushovertoken, http_config: {proxy_url: 'http://{P}/'}}]
    victorops_configs: [{api_key: SECRETvictorops, routing_key: r, api_url: 'http://{P}/victorops/'}]
    sns_configs: [{api_url: 'http://{P}/sns', topic_arn: 'arn:aws:sns:us-east-1:123456789012:t', sigv4: {region: us-east-1, access_key: AKIDEXAMPLE, secret_key: SECRETsns}}]
    telegram_configs: [{bot_token: SECRETtelegram, chat_id: 1, api_url: 'http://{P}/telegram'}]
    webex_configs: [{room_id: r, api_url: 'http://{P}/webex', http_config: {authorization: {credentials: SECRETwebex}}}]
    msteams_configs: [{webhook_url: 'http://{P}/msteams/SECRETmsteams'}]
    msteamsv2_configs: [{webhook_url: 'http://{P}/msteamsv2/SECRETmsteamsvtwo'}]
    jira_configs: [{api_url: 'http://{P}/jira', project: OPS, issue_type: Bug, http_config: {basic_auth: {username: u, password: SECRETjira}}}]
    rocketchat_configs: [{token_id: SECRETrocketid, token: SECRETrockettoken, channel: '#a', api_url: 'http://{P}/rocketchat/'}]
    mattermost_configs: [{webhook_url: 'http://{P}/mattermost/SECRETmattermost'}]
"#;

const KINDS: [&str; 18] = [
    "discord",
    "email",
    "incidentio",
    "pagerduty",
    "slack",
    "webhook",
    "opsgenie",
    "wechat",
    "pushover",
    "victorops",
    "sns",
    "telegram",
    "webex",
    "msteams",
    "msteamsv2",
    "jira",
    "rocketchat",
    "mattermost",
];

/// Failed attempts of one integration
/// (`alertmanager_notification_requests_failed_total`; the notification
/// itself keeps retrying until its deadline).
async fn failures(base: &str, kind: &str) -> f64 {
    let prefix = format!("alertmanager_notification_requests_failed_total{{integration=\"{kind}\"");
    get_text(&format!("{base}/metrics"))
        .await
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_of_any_integration_reaches_the_log_or_the_status() {
    // Every service answers 500 with a body of its own (which errors may
    // quote, as Alertmanager's do): the secrets are only in the config.
    let svc = FakeService::with(Arc::new(|_, _| Reply::text(500, "internal error"))).await;
    // Nothing listens there: the e-mail attempt fails to connect.
    let smtp = format!("127.0.0.1:{}", free_port());
    let receiver = RECEIVER
        .replace("{P}", &svc.addr.to_string())
        .replace("{SMTP}", &smtp);
    let cfg = format!(
        "route:\n  receiver: all\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\nreceivers:\n  - name: all\n{receiver}"
    );
    let h = start_herald(&cfg, &["--log.level=debug"]).await;
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "Leak"}, "annotations": {"summary": "s"}}]),
    )
    .await;
    for kind in KINDS {
        let base = h.base.clone();
        wait_until(&format!("a failed {kind} notification"), T, move || {
            let base = base.clone();
            async move { (failures(&base, kind).await >= 1.0).then_some(()) }
        })
        .await;
    }
    let status = get_text(&format!("{}/api/v2/status", h.base)).await;
    let log = h.log.lock().unwrap().clone();
    for kind in KINDS {
        assert!(
            log.contains(&format!("integration={kind}")) || log.contains(kind),
            "{kind}: its failure is not in the log, so the check below proves nothing:\n{log}"
        );
    }
    let mut leaks = Vec::new();
    for marker in RECEIVER
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.starts_with("SECRET"))
    {
        if log.contains(marker) {
            leaks.push(format!("log: {marker}"));
        }
        if status.contains(marker) {
            leaks.push(format!("status: {marker}"));
        }
    }
    assert!(leaks.is_empty(), "secrets shown: {leaks:?}\n\nlog:\n{log}");
}
