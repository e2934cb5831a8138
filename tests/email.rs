//! The e-mail integration against a real SMTP server (aiosmtpd, started by
//! the tests): plain with AUTH, STARTTLS and implicit TLS with generated
//! certificates, retries on transient SMTP errors, and permanent template
//! errors counted in the metrics. Messages are decoded by Python's own MIME
//! implementation.

// Needs python3 with aiosmtpd, openssl and Debian's Alertmanager: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn alert(name: &str, instance: &str) -> Value {
    json!({"labels": {"alertname": name, "instance": instance, "severity": "critical"},
           "annotations": {"summary": "Disk <95%> full & rising"},
           "generatorURL": "http://prometheus:9090/graph?g0.expr=up"})
}

fn route(receiver_yaml: &str, global: &str) -> String {
    format!(
        r#"
global:
  smtp_from: 'Herald Alerts <alerts@example.com>'
  smtp_hello: herald.test
{global}
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
{receiver_yaml}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_smtp_with_auth_delivers_headers_and_both_parts() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), "plain", None, Some(("herald", "s3cret")), 0);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret").unwrap();
    let cfg = route(
        &format!(
            r#"      - to: 'ops@example.com, Oncall <oncall@example.com>'
        smarthost: 127.0.0.1:{port}
        require_tls: false
        auth_username: herald
        auth_password_file: {pw}
        send_resolved: true
        headers:
          x-team: '{{{{ .CommonLabels.severity | toUpper }}}} — Größe'
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}}: {{{{ .Annotations.summary }}}}{{{{ end }}}}'
"#,
            port = smtp.port,
            pw = pw.display()
        ),
        "",
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("DiskFull", "db1")])).await;
    let m = smtp.nth(1, T).await;
    assert_eq!(m["auth"], "herald");
    assert_eq!(m["auth_mechanism"], "PLAIN");
    assert_eq!(m["tls"], false);
    assert_eq!(m["helo"], "herald.test");
    assert_eq!(m["mail_from"], "alerts@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "oncall@example.com"])
    );
    let hd = &m["headers"];
    assert_eq!(hd["Subject"], "[FIRING:1] DiskFull (db1 critical)", "{hd}");
    assert_eq!(hd["From"], "Herald Alerts <alerts@example.com>");
    assert!(hd["To"].as_str().unwrap().contains("oncall@example.com"));
    assert_eq!(hd["X-Team"], "CRITICAL — Größe");
    assert!(hd["Message-ID"].as_str().unwrap().starts_with('<'), "{hd}");
    assert!(hd["Date"].as_str().is_some(), "{hd}");
    assert_eq!(hd["MIME-Version"], "1.0");
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[0]["cte"], "quoted-printable");
    assert_eq!(parts[0]["body"], "db1: Disk <95%> full & rising");
    assert_eq!(parts[1]["content_type"], "text/html");
    let html = parts[1]["body"].as_str().unwrap();
    assert!(
        html.contains("Disk &lt;95%&gt; full &amp; rising"),
        "{html}"
    );
    assert!(html.contains("instance = db1"), "{html}");

    // Resolving the alert sends the resolved message (send_resolved: true).
    let mut a = alert("DiskFull", "db1");
    a["endsAt"] = json!(jiff::Timestamp::now().to_string());
    post_alerts(&h.base, &json!([a])).await;
    let m = smtp.nth(2, T).await;
    assert_eq!(
        m["headers"]["Subject"],
        "[RESOLVED] DiskFull (db1 critical)"
    );
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notifications_total{integration="email"}"#
        )
        .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    // This server offers AUTH LOGIN only (the plain test above uses PLAIN).
    let starttls = SmtpServer::start_with(
        dir.path(),
        "starttls",
        Some(&certs),
        Some(("u", "p")),
        0,
        &["--exclude-mechanism", "PLAIN"],
    );
    let implicit = SmtpServer::start(dir.path(), "implicit", Some(&certs), None, 0);
    let cfg = route(
        &format!(
            r#"      - to: a@example.com
        smarthost: 127.0.0.1:{s}
        auth_username: u
        auth_password: p
        tls_config: {{ca_file: {ca}}}
      - to: b@example.com
        smarthost: 127.0.0.1:{i}
        force_implicit_tls: true
        tls_config: {{insecure_skip_verify: true}}
"#,
            s = starttls.port,
            i = implicit.port,
            ca = certs.ca.display()
        ),
        "",
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let m = starttls.nth(1, T).await;
    assert_eq!(m["tls"], true);
    assert_eq!(m["auth"], "u");
    assert_eq!(m["auth_mechanism"], "LOGIN");
    assert_eq!(m["rcpt_tos"], json!(["a@example.com"]));
    // The default body is HTML only, as in Alertmanager.
    assert_eq!(m["parts"].as_array().unwrap().len(), 1);
    assert_eq!(m["parts"][0]["content_type"], "text/html");
    let m = implicit.nth(1, T).await;
    assert_eq!(m["tls"], true);
    assert_eq!(m["rcpt_tos"], json!(["b@example.com"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_are_retried_and_tls_requirements_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = SmtpServer::start(dir.path(), "plain", None, None, 2);
    let plain = SmtpServer::start(dir.path(), "plain", None, None, 0);
    let cfg = route(
        &format!(
            r#"      - to: a@example.com
        smarthost: 127.0.0.1:{f}
        require_tls: false
"#,
            f = flaky.port
        ),
        "",
    );
    // A second receiver insists on STARTTLS, which the plain server lacks.
    let cfg = cfg.replace(
        "receivers:\n",
        &format!(
            "  routes:\n    - receiver: strict\n      matchers: [alertname=Strict]\nreceivers:\n  - name: strict\n    email_configs:\n      - to: s@example.com\n        smarthost: 127.0.0.1:{}\n",
            plain.port
        ),
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1"), alert("Strict", "i1")])).await;
    let m = flaky.nth(1, T).await;
    assert_eq!(m["rcpt_tos"], json!(["a@example.com"]));
    let failed = wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="email"}"#,
        3.0,
    )
    .await;
    assert!(failed >= 3.0, "two 451s and at least one STARTTLS refusal");
    assert!(plain.messages().is_empty(), "sent without the required TLS");
    assert_eq!(flaky.messages().len(), 1, "retries must not duplicate");
}

/// A relay that offers no AUTH gets the mail unauthenticated even with
/// `auth_username` set, as Alertmanager sends it (a local Postfix relay
/// behind a global `smtp_auth_username`).
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_without_auth_gets_the_mail_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let relay = SmtpServer::start(dir.path(), "plain", None, None, 0);
    let cfg = route(
        &format!(
            "      - to: ops@example.com\n        smarthost: 127.0.0.1:{}\n        require_tls: false\n",
            relay.port
        ),
        "  smtp_auth_username: herald\n  smtp_auth_password: s3cret\n",
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("Relay", "i1")])).await;
    let m = relay.nth(1, T).await;
    assert_eq!(m["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(
        m["auth"],
        Value::Null,
        "no AUTH was offered, none was tried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn template_errors_fail_without_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path(), "plain", None, None, 0);
    let cfg = route(
        &format!(
            r#"      - to: a@example.com
        smarthost: 127.0.0.1:{p}
        require_tls: false
        html: '{{{{ .NoSuchField }}}}'
"#,
            p = smtp.port
        ),
        "",
    )
    // One flush only: the next would try (and fail) again.
    .replace("group_interval: 1s", "group_interval: 1h");
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="email",reason="other"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_total{integration="email"}"#
        )
        .await,
        1.0,
        "a template error is not retried: {}",
        get_text(&format!("{}/metrics", h.base))
            .await
            .lines()
            .filter(|l| l.contains("email"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(smtp.messages().is_empty());
}

/// The same e-mail config and alerts through Herald and the real
/// Alertmanager 0.25, each with its own SMTP server: the envelope, the
/// headers (Date and Message-Id aside), the text part and a user-written
/// HTML part decode to the same values. (The default HTML body is Herald's
/// own design; see docs/compatibility.md.)
#[tokio::test(flavor = "multi_thread")]
async fn messages_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let ours = SmtpServer::start(dir.path(), "plain", None, None, 0);
    let theirs = SmtpServer::start(dir.path(), "plain", None, None, 0);
    let cfg = |port: u16| {
        format!(
            r#"
global:
  smtp_from: 'Alerts <alerts@example.com>'
  smtp_smarthost: 127.0.0.1:{port}
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
      - to: 'ops@example.com, b@example.com'
        send_resolved: true
        headers:
          Subject: '{{{{ template "email.default.subject" . }}}} – Größe'
          X-Severity: '{{{{ .CommonLabels.severity }}}}'
          Reply-To: 'noreply@example.com'
        text: |
          {{{{ range .Alerts }}}}{{{{ .Status }}}} {{{{ .Labels.alertname }}}} on {{{{ .Labels.instance }}}}
          {{{{ range .Annotations.SortedPairs }}}}  {{{{ .Name }}}}: {{{{ .Value }}}}
          {{{{ end }}}}{{{{ end }}}}
        html: '<h1>{{{{ .Status }}}}</h1>{{{{ range .Alerts }}}}<p><a href="{{{{ .GeneratorURL }}}}">{{{{ .Labels.instance }}}}</a> {{{{ .Annotations.summary }}}}</p>{{{{ end }}}}'
"#
        )
    };
    let h = start_herald(&cfg(ours.port), &[]).await;
    let am = start_alertmanager(&cfg(theirs.port)).await;
    let alerts = json!([alert("DiskFull", "db1"), alert("DiskFull", "db2<>")]);
    post_alerts(&h.base, &alerts).await;
    post_alerts(&am.base, &alerts).await;
    let comparable = |m: Value| {
        let mut m = m;
        let hd = m["headers"].as_object_mut().unwrap();
        hd.retain(|k, _| {
            !matches!(
                k.as_str(),
                "Date" | "Message-Id" | "Message-ID" | "Content-Type"
            )
        });
        m["parts"].as_array_mut().unwrap().iter_mut().for_each(|p| {
            // Line ends and soft breaks are the encoders' business.
            let b = p["body"].as_str().unwrap().replace("\r\n", "\n");
            p["body"] = json!(b.trim_end());
        });
        let obj = m.as_object_mut().unwrap();
        obj.remove("helo");
        obj.remove("data");
        m
    };
    let (o, t) = (ours.nth(1, T).await, theirs.nth(1, T).await);
    assert_eq!(comparable(o), comparable(t));
    let mut resolved = alerts.clone();
    for a in resolved.as_array_mut().unwrap() {
        a["endsAt"] = json!("2024-05-01T11:00:00Z");
    }
    post_alerts(&h.base, &resolved).await;
    post_alerts(&am.base, &resolved).await;
    let (o, t) = (ours.nth(2, T).await, theirs.nth(2, T).await);
    assert!(o["headers"]["Subject"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED] DiskFull"));
    assert_eq!(comparable(o), comparable(t));
}

/// CRAM-MD5 with `auth_secret_file` (taken in the server's order, before
/// PLAIN and LOGIN, when a secret is set) and the threading headers, each
/// against Alertmanager 0.33.1 on the same input: the same mechanism, the
/// same user and the same `References`/`In-Reply-To`.
#[tokio::test(flavor = "multi_thread")]
async fn cram_md5_and_threading_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "tanstaaf").unwrap();
    let extra = ["--secret", "tanstaaf"];
    let ours = SmtpServer::start_with(
        dir.path(),
        "plain",
        None,
        Some(("herald", "wrong")),
        0,
        &extra,
    );
    let theirs = SmtpServer::start_with(
        dir.path(),
        "plain",
        None,
        Some(("herald", "wrong")),
        0,
        &extra,
    );
    let cfg = |port: u16, by: &str| {
        format!(
            r#"
global:
  smtp_from: 'Alerts <alerts@example.com>'
  smtp_smarthost: 127.0.0.1:{port}
  smtp_require_tls: false
  smtp_auth_secret_file: {secret}
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
      - to: ops@example.com
        auth_username: herald
        threading:
          enabled: true
          thread_by_date: {by}
"#,
            secret = secret.display()
        )
    };
    let h = start_herald(&cfg(ours.port, "daily"), &[]).await;
    let am = start_alertmanager(&cfg(theirs.port, "daily")).await;
    let alerts = json!([alert("DiskFull", "db1")]);
    post_alerts(&h.base, &alerts).await;
    post_alerts(&am.base, &alerts).await;
    let (o, t) = (ours.nth(1, T).await, theirs.nth(1, T).await);
    assert_eq!(t["auth_mechanism"], "CRAM-MD5", "{t}");
    assert_eq!(o["auth_mechanism"], t["auth_mechanism"]);
    assert_eq!(o["auth"], "herald");
    let day = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d")
        .to_string();
    let refs = o["headers"]["References"].as_str().unwrap().to_string();
    assert!(
        refs.starts_with("<alert-") && refs.ends_with(&format!("-{day}@alertmanager>")),
        "{refs}"
    );
    assert_eq!(refs.len(), "<alert--@alertmanager>".len() + 16 + day.len());
    for h in ["References", "In-Reply-To"] {
        assert_eq!(o["headers"][h], t["headers"][h], "{h}");
    }

    // `none`: one thread per group whatever the day.
    let ours = SmtpServer::start_with(dir.path(), "plain", None, Some(("herald", "x")), 0, &extra);
    let h = start_herald(&cfg(ours.port, "none"), &[]).await;
    post_alerts(&h.base, &alerts).await;
    let o = ours.nth(1, T).await;
    let root = refs.replace(&format!("-{day}@"), "-@");
    assert_eq!(o["headers"]["In-Reply-To"], json!(root));
}

/// A wrong secret is refused by the server: the flush fails (and is
/// retried, as any SMTP error) and nothing is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_cram_md5_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start_with(
        dir.path(),
        "plain",
        None,
        Some(("herald", "pw")),
        0,
        &["--secret", "right"],
    );
    let cfg = route(
        &format!(
            r#"      - to: ops@example.com
        smarthost: 127.0.0.1:{}
        require_tls: false
        auth_username: herald
        auth_secret: wrong
"#,
            smtp.port
        ),
        "",
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("DiskFull", "db1")])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="email"}"#,
        1.0,
    )
    .await;
    assert!(!smtp.dir.join("1.json").exists());
}
