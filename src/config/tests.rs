use super::*;

fn err(yaml: &str) -> String {
    match Config::load(yaml) {
        Ok(_) => panic!("config must be refused:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = r#"
route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: http://localhost:5001/
"#;

#[test]
fn loads_minimal_config_with_defaults() {
    let c = Config::load(BASE).unwrap();
    let g = c.global();
    assert_eq!(g.resolve_timeout.to_string(), "5m");
    assert!(g.smtp_require_tls);
    let w = &c.config.receivers[0].webhook_configs[0];
    assert!(w.send_resolved, "webhooks send resolved by default");
    assert!(
        w.http_config.as_ref().unwrap().follow_redirects,
        "global http_config is copied"
    );
}

#[test]
fn unknown_and_duplicate_keys_are_refused() {
    let e = err("route:\n  receiver: team\n  grup_by: [a]\nreceivers:\n  - name: team\n");
    assert!(e.contains("grup_by"), "{e}");
    let e = err("route:\n  receiver: team\n  receiver: other\nreceivers:\n  - name: team\n");
    assert!(e.to_lowercase().contains("duplicate"), "{e}");
}

#[test]
fn anchors_and_merge_keys_work() {
    let yaml = r#"
x-hook: &hook
  url: http://localhost:5001/
  send_resolved: false
route:
  receiver: a
receivers:
  - name: a
    webhook_configs:
      - <<: *hook
        max_alerts: 3
"#;
    // Alertmanager itself refuses unknown top-level keys such as `x-hook`.
    assert!(Config::load(yaml).is_err());
    let yaml = r#"
route:
  receiver: a
  routes:
    - &r
      receiver: a
      matchers: ['x="1"']
    - <<: *r
      matchers: ['x="2"']
receivers:
  - name: a
    webhook_configs:
      - url: http://localhost:5001/
        send_resolved: yes
"#;
    let c = Config::load(yaml).unwrap();
    let routes = c.root_route().routes.as_ref().unwrap();
    assert_eq!(
        routes[1].matchers.as_ref().unwrap().to_string(),
        r#"{x="2"}"#
    );
    assert!(c.config.receivers[0].webhook_configs[0].send_resolved);
}

#[test]
fn alertmanager_validation_rules() {
    assert!(err("receivers:\n  - name: a\n").contains("no route provided"));
    assert!(err("route: {}\nreceivers:\n  - name: a\n")
        .contains("root route must specify a default receiver"));
    assert!(err("route:\n  receiver: b\nreceivers:\n  - name: a\n")
        .contains(r#"undefined receiver "b" used in route"#));
    let e =
        err("route:\n  receiver: a\n  routes:\n    - receiver: nope\nreceivers:\n  - name: a\n");
    assert!(e.starts_with("route.routes[0].receiver"), "{e}");
    assert!(
        err("route:\n  receiver: a\n  matchers: ['x=1']\nreceivers:\n  - name: a\n")
            .contains("root route must not have any matchers")
    );
    assert!(
        err("route:\n  receiver: a\n  continue: true\nreceivers:\n  - name: a\n")
            .contains("cannot have continue in root route")
    );
    assert!(
        err("route:\n  receiver: a\n  group_by: ['...', 'x']\nreceivers:\n  - name: a\n")
            .contains("wildcard group_by")
    );
    assert!(
        err("route:\n  receiver: a\n  group_by: [x, x]\nreceivers:\n  - name: a\n")
            .contains(r#"duplicated label "x""#)
    );
    assert!(
        err("route:\n  receiver: a\n  group_by: ['']\nreceivers:\n  - name: a\n")
            .contains("invalid label name")
    );
    assert!(
        err("route:\n  receiver: a\n  group_interval: 0s\nreceivers:\n  - name: a\n")
            .contains("group_interval cannot be zero")
    );
    assert!(
        err("route:\n  receiver: a\n  repeat_interval: 1.5h\nreceivers:\n  - name: a\n")
            .contains("1.5h")
    );
    assert!(
        err("route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n")
            .contains("is not unique")
    );
    assert!(err("route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [night]\nreceivers:\n  - name: a\n")
        .contains(r#"undefined time interval "night""#));
    assert!(err(
        "route:\n  receiver: a\n  routes:\n    - match_re: {x: '(' }\nreceivers:\n  - name: a\n"
    )
    .contains("route"));
    let e = err("route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: ftp://x/\n");
    assert!(
        e.contains("receivers[0].webhook_configs[0].url") && e.contains("scheme"),
        "{e}"
    );
    assert!(err("route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - max_alerts: 1\n").contains("url"));
}

#[test]
fn email_configs_take_global_defaults_and_are_checked() {
    let base = "route:\n  receiver: a\nreceivers:\n  - name: a\n    email_configs:\n";
    let e = err(&format!("{base}      - to: x@example.com\n"));
    assert!(
        e.contains("email_configs[0].smarthost") && e.contains("no global SMTP smarthost set"),
        "{e}"
    );
    let e = err(&format!(
        "global:\n  smtp_smarthost: mail:25\n{base}      - to: x@example.com\n"
    ));
    assert!(e.contains("no global SMTP from set"), "{e}");
    let e = err(&format!(
        "{base}      - from: a@b\n        smarthost: m:25\n"
    ));
    assert!(e.contains("missing to address"), "{e}");
    let e = err(&format!(
        "{base}      - to: x@y\n        from: a@b\n        smarthost: m\n"
    ));
    assert!(e.contains("missing port"), "{e}");
    let e = err(&format!("{base}      - to: x@y\n        from: a@b\n        smarthost: m:25\n        headers:\n          subject: a\n          Subject: b\n"));
    assert!(e.contains("duplicate header \"Subject\""), "{e}");
    // CRAM-MD5: a global secret is inherited; a secret beside a secret
    // file in `global` is refused, as in Alertmanager.
    let c = Config::load(&format!("global:\n  smtp_auth_secret: s\n  smtp_smarthost: m:25\n  smtp_from: a@b\n{base}      - to: x@y\n")).unwrap();
    let ec = &c.config.receivers[0].email_configs[0];
    assert_eq!(ec.auth_secret.as_ref().map(|s| s.expose()), Some("s"));
    let e = err(&format!("global:\n  smtp_auth_secret: s\n  smtp_auth_secret_file: /f\n  smtp_smarthost: m:25\n  smtp_from: a@b\n{base}      - to: x@y\n"));
    assert!(
        e.contains("at most one of smtp_auth_secret & smtp_auth_secret_file"),
        "{e}"
    );
    let c = Config::load(&format!("global:\n  smtp_smarthost: mail.example.com:587\n  smtp_from: am@example.com\n  smtp_auth_username: u\n  smtp_auth_password: p\n  smtp_require_tls: false\n{base}      - to: [a@x, b@y]\n        headers:\n          x-team: ops\n")).unwrap();
    let ec = &c.config.receivers[0].email_configs[0];
    assert_eq!(ec.to.as_ref().unwrap().0, "a@x, b@y");
    assert_eq!(
        ec.smarthost.as_ref().unwrap().to_string(),
        "mail.example.com:587"
    );
    assert_eq!(ec.from.as_deref(), Some("am@example.com"));
    assert_eq!(ec.hello.as_deref(), Some("localhost"));
    assert_eq!(ec.auth_password.as_ref().unwrap().expose(), "p");
    assert_eq!(ec.require_tls, Some(false));
    assert!(!ec.send_resolved);
    assert_eq!(ec.headers["X-Team"], "ops");
    assert_eq!(ec.html, r#"{{ template "email.default.html" . }}"#);
    assert!(!c.to_yaml().contains(": p\n"), "password must be hidden");
}

#[test]
fn slack_configs_take_global_defaults_and_are_checked() {
    let base = "route:\n  receiver: a\nreceivers:\n  - name: a\n    slack_configs:\n";
    let e = err(&format!("{base}      - channel: '#x'\n"));
    assert!(e.contains("no global Slack API URL set"), "{e}");
    let e = err(&format!(
        "{base}      - api_url: https://hooks.slack.com/x\n        api_url_file: /f\n"
    ));
    assert!(e.contains("at most one of api_url & api_url_file"), "{e}");
    let e = err(&format!("{base}      - api_url: hooks.slack.com/SECRET\n"));
    assert!(
        e.contains("slack_configs[0].api_url") && !e.contains("SECRET"),
        "{e}"
    );
    let e = err(&format!(
        "{base}      - api_url: https://h/x\n        fields:\n          - title: t\n"
    ));
    assert!(e.contains("missing value in Slack field"), "{e}");
    let e = err(&format!("{base}      - api_url: https://h/x\n        actions:\n          - type: button\n            text: t\n"));
    assert!(e.contains("missing name or url in Slack action"), "{e}");
    let c = Config::load(&format!("global:\n  slack_api_url: https://hooks.slack.com/services/SECRET\n{base}      - channel: '#ops'\n      - app_token: xoxb-1\n")).unwrap();
    let sc = &c.config.receivers[0].slack_configs;
    assert_eq!(
        sc[0].api_url.as_ref().unwrap().expose(),
        "https://hooks.slack.com/services/SECRET"
    );
    assert_eq!(sc[0].title, r#"{{ template "slack.default.title" . }}"#);
    assert!(!sc[0].send_resolved);
    assert!(sc[1].api_url.is_none());
    assert_eq!(
        sc[1].app_url.as_deref(),
        Some("https://slack.com/api/chat.postMessage")
    );
    assert!(!c.to_yaml().contains("SECRET") && !c.to_yaml().contains("xoxb"));
}

#[test]
fn time_intervals_are_validated() {
    let ok = r#"
route:
  receiver: a
  routes:
    - receiver: a
      mute_time_intervals: [night]
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "00:00", end_time: "06:00"}]
        weekdays: ['monday:friday']
        days_of_month: ['-3:-1']
        months: ['january:march', '12']
        years: ['2024:2030']
receivers:
  - name: a
"#;
    Config::load(ok).unwrap();
    let bad = ok.replace("06:00", "25:00");
    assert!(err(&bad).contains("out of range"));
    let bad = ok.replace("monday:friday", "friday:monday");
    assert!(Config::load(&bad).is_err());
}

#[test]
fn secrets_are_hidden_when_serialised() {
    let yaml = r#"
global:
  slack_api_url: https://hooks.slack.com/services/SECRET
route:
  receiver: a
receivers:
  - name: a
    webhook_configs:
      - url: http://localhost:5001/
        http_config:
          basic_auth: {username: u, password: hunter2}
"#;
    let c = Config::load(yaml).unwrap();
    let out = c.to_yaml();
    assert!(!out.contains("hunter2") && !out.contains("SECRET"), "{out}");
    assert!(out.contains("<secret>"));
    // The re-serialised config loads again.
    Config::load(&out).unwrap();
}

#[test]
fn empty_values_are_zero_values_like_yaml_v2() {
    let yaml = "route:\n  receiver: a\n  routes:\n    - match: {code: 500, on: yes}\n      receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\ninhibit_rules:\ntemplates:\ntime_intervals:\n";
    let c = Config::load(yaml).unwrap();
    assert!(c.config.receivers[0].webhook_configs.is_empty());
    let m = c.root_route().routes.as_ref().unwrap()[0]
        .match_eq
        .clone()
        .unwrap();
    // Scalars into string fields keep their source text, as yaml.v2 does.
    assert_eq!(m["code"], "500");
    assert_eq!(m["on"], "yes");
}

#[test]
fn route_and_receiver_labels() {
    let c = Config::load(
        "route:\n  receiver: team\n  labels: {a: x}\n  routes:\n    - receiver: team\n      labels: {b: '{{ .Receiver }}'}\nreceivers:\n  - name: team\n    labels: {team: t, name: team}\n  - name: other\n    labels:\n",
    )
    .unwrap();
    assert_eq!(
        c.config.receivers[0].api_labels(),
        [
            ("name".to_string(), "team".to_string()),
            ("team".into(), "t".into())
        ]
        .into()
    );
    assert_eq!(
        c.config.receivers[1].api_labels(),
        [("name".to_string(), "other".to_string())].into()
    );
    // Route labels stay out of the re-serialised config (amtool 0.33).
    let yaml = c.to_yaml();
    assert!(
        !yaml.contains(".Receiver") && yaml.contains("team: t"),
        "{yaml}"
    );
    assert!(Config::load(&c.to_yaml()).is_ok());
    let e = err("route:\n  receiver: team\nreceivers:\n  - name: team\n    labels: {name: x}\n");
    assert!(
        e.contains(r#"receiver label "name" must match receiver name "team", got "x""#),
        "{e}"
    );
    // UTF-8 names are valid outside classic mode, the empty one never.
    let e = err("route:\n  receiver: team\n  labels: {'': x}\nreceivers:\n  - name: team\n");
    assert!(
        e.contains(r#"invalid label name "" in route labels"#),
        "{e}"
    );
    let e = err("route:\n  receiver: team\n  labels: {a: '{{ .X '}\nreceivers:\n  - name: team\n");
    assert!(e.contains(r#"route label "a""#), "{e}");
}

#[test]
fn empty_inhibit_rules_load_as_in_alertmanager() {
    for entry in ["- {}", "-", "- null", "- name: n"] {
        let c = Config::load(&format!(
            "route:\n  receiver: team\nreceivers:\n  - name: team\ninhibit_rules:\n  {entry}\n"
        ))
        .unwrap_or_else(|e| panic!("{entry}: {e}"));
        assert_eq!(c.config.inhibit_rules.len(), 1, "{entry}");
    }
}
