//! The Telegram integration against a fake Bot API server: what Herald
//! posts compared with Alertmanager 0.33.1 on the same configs and alerts
//! (firing and resolved, HTML and Markdown modes, the over-long message
//! cases, files and `global:` defaults), then how Bot API answers are
//! classified (flood control waited for, refusals not retried, server
//! errors retried) and that the bot token stays out of the log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// `firing()`'s alerts without `startsAt`, so that each server stamps its
/// own arrival time: both servers start after the alerts are made, and an
/// alert older than `group_wait` makes Alertmanager flush its group before
/// the rest of the request is in it.
#[cfg(feature = "system-tests")]
fn unstamped(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().into_iter().flatten() {
        a.as_object_mut().map(|o| o.remove("startsAt"));
    }
    alerts
}
const TOKEN: &str = "4839574812:AAFD39kkdpWt3ywyRZergyOLMaJhac60qc";

/// Telegram's answer to a `sendMessage` that worked.
fn sent(ex: &Exchange, seen: &[Exchange]) -> Reply {
    let chat: i64 = ex.body["chat_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply::json(
        200,
        json!({"ok": true, "result": {
            "message_id": seen.len() + 1,
            "date": 1764600000,
            "chat": {"id": chat, "type": "supergroup", "title": "ops"},
            "text": ex.body["text"],
        }}),
    )
}

fn route() -> &'static str {
    r#"
route:
  receiver: tg
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
"#
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let chat_file = dir.path().join("chat");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::write(&chat_file, "-1001004\n").unwrap();
    // Two alerts of 2100 characters each: over Telegram's 4096.
    let long = format!("{{{{ range .Alerts }}}}{}{{{{ end }}}}", "ü".repeat(2100));
    let cfg = |base: &str| {
        format!(
            r#"
global:
  telegram_api_url: '{api}'
  telegram_bot_token: '{TOKEN}'
{route}
receivers:
  - name: tg
    telegram_configs:
      # Everything left to its default (HTML), the API URL with a slash.
      - api_url: '{base}'
        bot_token: '{TOKEN}'
        chat_id: 1001
      - api_url: '{base}'
        bot_token_file: '{token}'
        chat_id: 1002
        message_thread_id: 7
        disable_notifications: true
        parse_mode: MarkdownV2
        message: '{long}'
      # HTML over the limit: the fallback text.
      - api_url: '{base}'
        bot_token: '{TOKEN}'
        chat_id: 1003
        message: '{long}'
      # Globals for the URL and the token, no parse mode at all.
      - chat_id_file: '{chat}'
        parse_mode: ''
        send_resolved: true
        message: '{{{{ .Status }}}} <b>{{{{ .CommonLabels.alertname }}}}</b> & {{{{ len .Alerts }}}}'
"#,
            api = base.trim_end_matches('/'),
            route = route(),
            token = token_file.display(),
            chat = chat_file.display(),
        )
    };
    let alerts = unstamped(firing("DiskFull", &["db1", "db2"]));
    let (mut ours, mut theirs) = differential(cfg, Arc::new(sent), &alerts, 4, 8).await;
    assert_eq!(ours.len(), 8, "{ours:#?}");
    assert_eq!(theirs.len(), 8, "{theirs:#?}");
    // Each config's two messages in order; configs in any order.
    let chat = |e: &Exchange| e.body["chat_id"].as_str().unwrap_or("").to_string();
    ours.sort_by_key(chat);
    theirs.sort_by_key(chat);
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(
            normalize(&o.body, &[]),
            normalize(&t.body, &[]),
            "{}",
            o.line()
        );
    }
    // Sorted by chat: "-1001004" (globals), 1001, 1002, 1003.
    assert_eq!(ours[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(ours[2].path, format!("//bot{TOKEN}/sendMessage"));
    let text = |i: usize| ours[i].body["text"].as_str().unwrap_or("").to_string();
    assert_eq!(text(0), "firing <b>DiskFull</b> & 2");
    assert_eq!(text(1), "resolved <b>DiskFull</b> & 2");
    // HTML mode escapes the alert data.
    assert!(
        text(2).contains("Disk &lt;95%&gt; full &amp;"),
        "{}",
        text(2)
    );
    assert_eq!(text(4).chars().count(), 4096);
    assert!(text(4).ends_with('…'));
    assert_eq!(ours[4].body["message_thread_id"], "7");
    assert!(text(6).starts_with("Alertmanager notification could not be sent"));
}

fn config(extra: &str, base: &str) -> String {
    format!(
        r#"{route}
receivers:
  - name: tg
    telegram_configs:
      - api_url: '{base}'
        bot_token: '{TOKEN}'
        chat_id: 42
{extra}"#,
        route = route()
    )
}

const FAILED_CLIENT: &str =
    r#"alertmanager_notifications_failed_total{integration="telegram",reason="clientError"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn flood_control_is_waited_for() {
    use std::time::Instant;
    let times = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let t2 = times.clone();
    let tg = FakeService::with(Arc::new(move |ex: &Exchange, seen: &[Exchange]| {
        t2.lock().unwrap().push(Instant::now());
        if seen.is_empty() {
            Reply::json(
                429,
                json!({"ok": false, "error_code": 429,
                       "description": "Too Many Requests: retry after 2",
                       "parameters": {"retry_after": 2}}),
            )
        } else {
            sent(ex, seen)
        }
    }))
    .await;
    let h = start_herald(&config("", &tg.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let got = tg.wait(2, T).await;
    assert_eq!(got[0].body, got[1].body);
    let at = times.lock().unwrap().clone();
    let gap = at[1] - at[0];
    // Backoff alone would retry after well under a second.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    let log = h.log.lock().unwrap().clone();
    assert!(log.contains("Too Many Requests"), "{log}");
    assert!(!log.contains(TOKEN), "the bot token leaked into the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_not_retried_server_errors_are() {
    // A chat the bot is not in: Telegram's 400, final.
    let tg = FakeService::start(Reply::json(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    ))
    .await;
    let h = start_herald(&config("", &tg.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(&h.base, FAILED_CLIENT, 1.0).await;
    assert_eq!(tg.count(), 1, "a refusal must not be retried");
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("telegram: Bad Request: chat not found (400)"),
        "{log}"
    );
    drop(h);

    // Telegram's own 500 (and then success): retried within the flush.
    let tg = FakeService::with(Arc::new(|ex: &Exchange, seen: &[Exchange]| {
        if seen.len() < 2 {
            Reply::json(
                500,
                json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
            )
        } else {
            sent(ex, seen)
        }
    }))
    .await;
    let h = start_herald(&config("", &tg.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    tg.wait(3, T).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_total{integration="telegram"}"#,
        1.0,
    )
    .await;
    assert_eq!(counter(&h.base, FAILED_CLIENT).await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_not_in_transport_errors() {
    // Nothing listens there: the error names the URL, without the token.
    let port = free_port();
    let h = start_herald(&config("", &format!("http://127.0.0.1:{port}")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let log = wait_for("a failed attempt in the log", T, || {
        let log = h.log.lock().unwrap().clone();
        log.contains("bot<redacted>/sendMessage").then_some(log)
    })
    .await;
    assert!(!log.contains(TOKEN), "the bot token leaked: {log}");
    // And the status page shows no token either.
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap_or("");
    assert!(!original.contains(TOKEN), "{original}");
    assert!(original.contains("bot_token: <secret>"), "{original}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_id_file_that_appears_late_is_retried() {
    // A secret mounted after Herald started: the attempts fail until the
    // file is there, then the same flush delivers.
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("chat");
    let tg = FakeService::with(Arc::new(sent)).await;
    let cfg = format!(
        r#"{route}
receivers:
  - name: tg
    telegram_configs:
      - api_url: '{base}'
        bot_token: '{TOKEN}'
        chat_id_file: '{file}'
"#,
        route = route(),
        base = tg.url(""),
        file = chat.display(),
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_for("a failed attempt in the log", T, || {
        h.log
            .lock()
            .unwrap()
            .contains("could not read")
            .then_some(())
    })
    .await;
    assert_eq!(tg.count(), 0);
    std::fs::write(&chat, "-42\n").unwrap();
    let got = tg.wait(1, T).await;
    assert_eq!(got[0].body["chat_id"], "-42");
}
