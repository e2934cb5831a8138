//! The web UI: the server-side HTML of every page (escaping, filter errors,
//! CSRF, form validation, links Alertmanager puts into notifications), and
//! the browser test (`tests/ui/browser.mjs`: playwright-core driving
//! Debian's Chromium, with the real amtool), whose screenshots are saved
//! in `target/ui-screenshots/`.

mod common;

// System tier: :process::Command;:.
#[cfg(feature = "system-tests")]
use std::process::Command;

use common::*;
use std::time::Duration;

use serde_json::json;

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
receivers:
  - name: team
  - name: pager
"#;

async fn seed(base: &str) {
    let (code, body) = post_alerts(
        base,
        &json!([
            {"labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db1"},
             "annotations": {"summary": "<script>alert('x')</script> & more", "runbook": "https://wiki.example.com/disk?a=1&b=2"},
             "generatorURL": "http://prometheus:9090/graph?g0.expr=up"},
            {"labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db2"}},
            {"labels": {"alertname": "Slow", "severity": "warning", "instance": "web1\"><b>x</b>"}},
            {"labels": {"alertname": "HighLoad", "severity": "warning", "instance": "web2"}},
        ]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

async fn page(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = reqwest::get(url).await.unwrap();
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    (code, r.text().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_escape_values_and_report_bad_filters() {
    let h = start_herald(CONFIG, &["--web.route-prefix=/am"]).await;
    let base = format!("{}/am", h.base);
    seed(&base).await;

    let (code, html, headers) = page(&format!("{base}/alerts")).await;
    assert_eq!(code, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(!html.contains("<script>alert"), "annotation not escaped");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more"),
        "{html}"
    );
    assert!(!html.contains("<b>x</b>"), "label value not escaped");
    assert!(html.contains("4 alerts in 3 groups"), "{html}");
    assert!(
        html.contains(r#"href="/am/static/herald.css""#),
        "links carry the route prefix"
    );
    assert!(
        html.contains("href=\"https://wiki.example.com/disk?a&#x3D;1&amp;b&#x3D;2\""),
        "annotation links"
    );

    // Filter syntax errors are shown, as the API words them.
    let (code, html, _) = page(&format!("{base}/alerts?filter=alertname%3D%22")).await;
    assert_eq!(code, 200);
    assert!(
        html.contains("Bad filter: matcher value contains unescaped double quote"),
        "{html}"
    );
    let (_, html, _) = page(&format!("{base}/alerts?filter=%7Bfoo%7E%22x%22%7D")).await;
    assert!(html.contains("Bad filter"), "{html}");
    // The same filter syntax as the API and amtool.
    let (_, html, _) = page(&format!(
        "{base}/alerts?filter={}",
        url_enc(r#"alertname=~"Disk.*", instance!="db2""#)
    ))
    .await;
    assert!(html.contains("1 alerts in 1 groups"), "{html}");
    let (_, html, _) = page(&format!("{base}/alerts?receiver=team")).await;
    assert!(html.contains("2 alerts in 2 groups"), "{html}");

    // Silences list and status page.
    let (code, html, _) = page(&format!("{base}/silences?filter=%3D%3D")).await;
    assert_eq!(code, 200);
    assert!(html.contains("Bad filter"), "{html}");
    let (code, html, _) = page(&format!(
        "{base}/status?labels={}",
        url_enc(r#"severity="critical""#)
    ))
    .await;
    assert_eq!(code, 200);
    assert!(html.contains("Receivers: <strong>pager</strong>"), "{html}");
    assert!(html.contains("(default route)"), "{html}");
    let (_, html, _) = page(&format!(
        "{base}/status?labels={}",
        url_enc(r#"severity=~"x""#)
    ))
    .await;
    assert!(html.contains("no operators"), "{html}");

    // Alertmanager's notification links: the form is pre-filled from ?filter=.
    let (code, html, _) = page(&format!(
        "{base}/silences/new?filter={}",
        url_enc(r#"{alertname="Disk<Full>",instance=~"db.*"}"#)
    ))
    .await;
    assert_eq!(code, 200);
    assert!(
        html.contains(r#"name="m0_value" value="Disk&lt;Full&gt;""#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="=~" selected>"#), "{html}");
    // The index page forwards #/ links with a script, and links on without.
    let (_, html, _) = page(&format!("{base}/")).await;
    assert!(
        html.contains("location.hash") && html.contains(r#"var base = "/am";"#),
        "{html}"
    );
    let (code, _, _) = page(&format!(
        "{base}/silences/00000000-0000-0000-0000-000000000000"
    ))
    .await;
    assert_eq!(code, 404);

    // A silence full of markup shows as text on the list, its page and
    // its edit form.
    let id = create_silence(
        &base,
        "alertname",
        "<img src=x onerror=alert(1)>",
        "<b>mallory</b>",
        "</textarea><script>alert(2)</script>",
    )
    .await;
    for path in [
        "/silences".to_string(),
        format!("/silences/{id}"),
        format!("/silences/new?id={id}"),
    ] {
        let (code, html, _) = page(&format!("{base}{path}")).await;
        assert_eq!(code, 200, "{path}");
        for raw in [
            "<img src=x",
            "<b>mallory",
            "<script>alert(2)",
            "</textarea><script>",
        ] {
            assert!(!html.contains(raw), "{path} shows {raw} unescaped");
        }
        assert!(
            html.contains("&lt;b&gt;mallory&lt;&#x2F;b&gt;")
                || html.contains("&lt;b&gt;mallory&lt;/b&gt;"),
            "{path}: {html}"
        );
    }
}

fn url_enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A client keeping cookies, as a browser does.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The new-silence form as `c` gets it (its cookie set for the token).
async fn new_silence_form(c: &reqwest::Client, base: &str) -> String {
    c.get(format!("{base}/silences/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn token(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_need_the_csrf_token_and_validate_fields() {
    let h = start_herald(CONFIG, &[]).await;
    seed(&h.base).await;
    let c = browser();
    let form = new_silence_form(&c, &h.base).await;
    let csrf = token(&form);
    let post = |fields: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = format!("{}/silences/new", h.base);
        async move {
            let r = c.post(url).form(&fields).send().await.unwrap();
            let code = r.status().as_u16();
            let loc = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            (code, loc, r.text().await.unwrap())
        }
    };
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let good = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("m0_name", "alertname".into()),
            ("m0_op", "=".into()),
            ("m0_value", "DiskFull".into()),
            ("starts_at", now.clone()),
            ("duration", "1h".into()),
            ("created_by", "tester".into()),
            ("comment", "maintenance".into()),
            ("action", "save".into()),
        ];
        for (k, v) in extra {
            f.retain(|(n, _)| *n != k);
            f.push((k, v));
        }
        f
    };
    // Without the token, or with another browser's: refused, nothing made.
    let (code, _, _) = post(good(vec![("csrf", "0".repeat(64))])).await;
    assert_eq!(code, 403);
    let other = reqwest::Client::new()
        .post(format!("{}/silences/new", h.base))
        .form(&good(vec![]))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 403, "a token without its cookie");
    assert!(get_json(&format!("{}/api/v2/silences", h.base))
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // Errors are shown beside their fields, the input kept.
    let (code, _, html) = post(good(vec![
        ("m0_op", "=~".into()),
        ("m0_value", "(".into()),
        ("comment", String::new()),
        ("duration", "soon".into()),
    ]))
    .await;
    assert_eq!(code, 400);
    assert!(html.contains("Some matchers are not valid"), "{html}");
    assert!(html.contains("Bad duration"), "{html}");
    assert!(html.contains("Say why"), "{html}");
    assert!(
        html.contains(r#"name="created_by" value="tester""#),
        "{html}"
    );
    let (code, _, html) = post(good(vec![
        ("duration", String::new()),
        ("ends_at", "2001-01-01T00:00:00".into()),
    ]))
    .await;
    assert_eq!(code, 400);
    assert!(
        html.contains("start time must be before end time"),
        "{html}"
    );

    // Preview, then create; the creator is remembered.
    let (code, _, html) = post(good(vec![("action", "preview".into())])).await;
    assert_eq!(code, 200);
    assert!(html.contains("would mute now (2)"), "{html}");
    let (code, loc, _) = post(good(vec![])).await;
    assert_eq!(code, 303);
    let id = loc.unwrap().rsplit('/').next().unwrap().to_string();
    let api = get_json(&format!("{}/api/v2/silence/{id}", h.base)).await;
    assert_eq!(api["createdBy"], "tester");
    let form = new_silence_form(&c, &h.base).await;
    assert!(form.contains(r#"name="created_by" value="tester""#));

    // Editing the comment keeps the id; changing a matcher makes a new one.
    // The edit form shows the stored start (the server moved it to the
    // moment of creation), as a browser would send it back.
    let stored: jiff::Timestamp = api["startsAt"].as_str().unwrap().parse().unwrap();
    let start = stored.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let (code, loc, _) = post(good(vec![
        ("id", id.clone()),
        ("comment", "longer".into()),
        ("starts_at", start),
    ]))
    .await;
    assert_eq!(code, 303);
    assert!(loc.unwrap().ends_with(&id));
    let (code, loc, _) = post(good(vec![("id", id.clone()), ("m0_value", "Slow".into())])).await;
    assert_eq!(code, 303);
    let new_id = loc.unwrap().rsplit('/').next().unwrap().to_string();
    assert_ne!(new_id, id);
    assert_eq!(
        get_json(&format!("{}/api/v2/silence/{id}", h.base)).await["status"]["state"],
        "expired"
    );

    // Expire needs the token too.
    let r = c
        .post(format!("{}/silences/{new_id}/expire", h.base))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(format!("{}/silences/{new_id}/expire", h.base))
        .form(&[("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        get_json(&format!("{}/api/v2/silence/{new_id}", h.base)).await["status"]["state"],
        "expired"
    );
}

/// The browser test. It needs Debian's chromium and `npm install` in
/// tests/ui, which scripts/test.sh does.
// System tier: node with playwright-core and Chromium.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn browser_silences_an_alert_and_expires_it() {
    // The team's alerts are really sent, so the notifications page has a
    // history to show.
    let hook = Webhook::start().await;
    let config = CONFIG
        .replace(
            "  - name: team\n",
            &format!(
                "  - name: team\n    webhook_configs: [{{url: '{}'}}]\n",
                hook.url("/team")
            ),
        )
        .replace(
            "  group_by: [alertname]\n",
            "  group_by: [alertname]\n  group_wait: 1s\n",
        );
    assert_ne!(config, CONFIG);
    let h = start_herald(&config, &[]).await;
    seed(&h.base).await;
    hook.nth(2, Duration::from_secs(30)).await;
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/browser.mjs");
    let base = h.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(&base)
            .arg(&shots)
            .output()
            .expect("node: run scripts/test.sh")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("the alert is active again"), "{stdout}");
}

/// Past 500 silences the list is paged: each page holds its share, in
/// order, every silence on exactly one page, and the pager links on.
#[tokio::test(flavor = "multi_thread")]
async fn the_silences_list_is_paged() {
    let h = start_herald(CONFIG, &[]).await;
    let client = reqwest::Client::new();
    let now = jiff::Timestamp::now();
    let posts = (0..501).map(|i| {
        // Ends a minute apart: the list shows the soonest to end first.
        let end = now
            .checked_add(jiff::SignedDuration::from_mins(60 + i))
            .unwrap();
        let body = json!({"matchers": [{"name": "instance", "value": format!("host-{i}"), "isRegex": false}],
            "startsAt": now.to_string(), "endsAt": end.to_string(), "createdBy": "t", "comment": "c"});
        let (client, url) = (client.clone(), format!("{}/api/v2/silences", h.base));
        async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            assert!(r.status().is_success());
        }
    });
    futures_util::future::join_all(posts).await;
    let hosts = |html: &str| -> Vec<String> {
        html.split("&quot;host-")
            .skip(1)
            .map(|s| s.split('&').next().unwrap().to_string())
            .collect()
    };
    let (code, first, _) = page(&format!("{}/silences", h.base)).await;
    assert_eq!(code, 200);
    assert!(first.contains("active (501)"), "the tab counts them all");
    assert!(first.contains("Silences 1–500 of 501"), "{first}");
    assert!(
        first.contains(
            "href=\"/silences?state&#x3D;active&amp;filter&#x3D;&amp;page&#x3D;2\" rel=\"next\""
        ),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""));
    let (_, second, _) = page(&format!("{}/silences?state=active&page=2", h.base)).await;
    assert!(second.contains("Silences 501–501 of 501"), "{second}");
    assert!(second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));
    let (_, past, _) = page(&format!("{}/silences?page=9", h.base)).await;
    assert_eq!(
        hosts(&past),
        hosts(&second),
        "a page past the end is the last"
    );
    let mut all = hosts(&first);
    all.extend(hosts(&second));
    let want: Vec<String> = (0..501).map(|i| i.to_string()).collect();
    assert_eq!(all, want);
}

/// The form's rows as the script leaves them (numbers with gaps after a
/// removal) are all read, and a name typed quoted, as the UTF-8 matcher
/// syntax writes it, is that name. The silences list then says how many
/// alerts each silence mutes, with a link to them.
#[tokio::test(flavor = "multi_thread")]
async fn rows_with_gaps_and_quoted_names_make_one_silence_whose_mutes_are_counted() {
    let h = start_herald(CONFIG, &[]).await;
    seed(&h.base).await;
    let (code, body) = post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "Quoted", "service name": "checkout", "instance": "q1"}},
                {"labels": {"alertname": "Quoted", "service name": "checkout", "instance": "q2"}},
                {"labels": {"alertname": "Quoted", "service name": "cart", "instance": "q3"}}]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let c = browser();
    let form = new_silence_form(&c, &h.base).await;
    assert_eq!(
        form.matches("class=\"matcher-row\"").count(),
        3,
        "three spare rows without the script"
    );
    assert!(form.contains("/static/herald.js"));
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let fields: Vec<(&str, String)> = vec![
        ("csrf", token(&form)),
        ("m0_name", "alertname".into()),
        ("m0_op", "=".into()),
        ("m0_value", "Quoted".into()),
        // m1 and m2 were removed in the page; m3 was added.
        ("m3_name", "\"service name\"".into()),
        ("m3_op", "=".into()),
        ("m3_value", "checkout".into()),
        ("starts_at", now),
        ("duration", "1h".into()),
        ("created_by", "tester".into()),
        ("comment", "gaps".into()),
        ("action", "save".into()),
    ];
    let r = c
        .post(format!("{}/silences/new", h.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let id = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let sil = get_json(&format!("{}/api/v2/silence/{id}", h.base)).await;
    assert_eq!(
        sil["matchers"],
        json!([{"name": "alertname", "value": "Quoted", "isRegex": false, "isEqual": true},
               {"name": "service name", "value": "checkout", "isRegex": false, "isEqual": true}])
    );
    let (code, list, _) = page(&format!("{}/silences", h.base)).await;
    assert_eq!(code, 200);
    assert!(list.contains("Mutes 2 alerts now"), "{list}");
    let link = list
        .split("class=\"muting\"><a href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link to the muted alerts")
        .replace("&amp;", "&")
        .replace("&#x3D;", "=");
    let (code, alerts, _) = page(&format!("{}{link}", h.base)).await;
    assert_eq!(code, 200);
    assert_eq!(
        alerts.matches("class=\"alert state-suppressed\"").count(),
        2,
        "{alerts}"
    );
    let (_, detail, _) = page(&format!("{}/silences/{id}", h.base)).await;
    assert!(detail.contains("Alerts it silences now (2)"), "{detail}");
    let (code, js, headers) = page(&format!("{}/static/herald.js", h.base)).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "text/javascript");
    assert!(js.contains("Add matcher"));
}

/// The notifications page lists what was sent and what was held back, with
/// the API's filters; the alerts page says when a group was last notified
/// and links to its history.
#[tokio::test(flavor = "multi_thread")]
async fn the_notifications_page_shows_the_history_and_the_alerts_page_links_it() {
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\n  routes:\n    - matchers: ['alertname=\"Later\"']\n      group_wait: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{}'}}]\n  - name: other\n",
        hook.url("/h")
    );
    let h = start_herald(&config, &[]).await;
    let silence = create_silence(&h.base, "alertname", "Quiet", "t", "hush").await;
    let (code, body) = post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "Loud", "instance": "a<b>"}},
                {"labels": {"alertname": "Quiet", "instance": "q"}}]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    hook.nth(1, Duration::from_secs(20)).await;
    let url = format!("{}/api/herald/v1/notifications?outcome=silenced", h.base);
    wait_until(
        "the silenced flush recorded",
        Duration::from_secs(20),
        || {
            let url = url.clone();
            async move {
                let v = get_json(&url).await;
                (!v["notifications"].as_array()?.is_empty()).then_some(())
            }
        },
    )
    .await;

    let (code, html, _) = page(&format!("{}/notifications", h.base)).await;
    assert_eq!(code, 200);
    assert!(
        html.contains("aria-current=\"page\">Notifications"),
        "{html}"
    );
    assert_eq!(html.matches("class=\"notification ").count(), 2, "{html}");
    assert!(html.contains("<span class=\"badge\">sent</span>"), "{html}");
    assert!(
        html.contains("<span class=\"badge\">silenced</span>"),
        "{html}"
    );
    assert!(html.contains("instance=\"a&lt;b&gt;\""), "escaped: {html}");
    let (_, sent, _) = page(&format!("{}/notifications?outcome=success", h.base)).await;
    assert_eq!(sent.matches("class=\"notification ").count(), 1);
    assert!(sent.contains("alertname=\"Loud\""));
    let (_, none, _) = page(&format!(
        "{}/notifications?receiver=other&filter=alertname%3D%22Loud%22",
        h.base
    ))
    .await;
    assert!(none.contains("No notification matches."), "{none}");
    let (code, bad, _) = page(&format!("{}/notifications?filter=%7Bnope", h.base)).await;
    assert_eq!(code, 200);
    assert!(bad.contains("Bad alert filter"), "{bad}");
    let _ = silence;

    let (_, alerts, _) = page(&format!("{}/alerts", h.base)).await;
    assert!(alerts.contains("Last notified"), "{alerts}");
    assert!(
        alerts.contains("/notifications?group&#x3D;alertname%3D%22Loud%22&amp;receiver&#x3D;hook"),
        "{alerts}"
    );
    let (_, silenced, _) = page(&format!(
        "{}/alerts?silenced=true&filter=alertname%3D%22Quiet%22",
        h.base
    ))
    .await;
    assert!(silenced.contains("Not notified yet"), "{silenced}");
    post_alerts(&h.base, &json!([{"labels": {"alertname": "Later"}}])).await;
    let (_, later, _) = page(&format!("{}/alerts?filter=alertname%3D%22Later%22", h.base)).await;
    assert!(
        later.contains(
            "Not notified yet: waiting for its first flush (<code>group_wait</code>), in <time"
        ),
        "{later}"
    );
    assert!(
        later.contains(">59m</time>") || later.contains(">1h 0m</time>"),
        "{later}"
    );
}
