//! `sns_configs` against Alertmanager 0.33.1 and against moto, the AWS
//! mock (`moto[server]`, installed by scripts/test.sh into
//! target/venv-moto), which checks every request's SigV4 signature once
//! its IAM is switched on: the wire of Publish compared with 0.33.1's
//! (parameters byte for byte, the signed headers' shape), the messages
//! moto records for both, a FIFO topic, truncation, STS AssumeRole, the
//! credential sources of pods and instances, a bad signature. The retry
//! classification of AWS's errors needs neither and runs in every tier.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;

const T: Duration = Duration::from_secs(30);

const PUBLISHED: &str = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>3f1c-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>"#;

fn published() -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: PUBLISHED.into(),
    }
}

fn aws_error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ),
    }
}

/// A config with one receiver of the given `sns_configs` entries (YAML,
/// indented for the list). The group waits 5s: the alerts' `startsAt` is
/// taken before both servers start, and an alert older than `group_wait`
/// makes Alertmanager flush the group before the rest of the request is in.
#[cfg(feature = "system-tests")]
fn config(entries: &str) -> String {
    config_every("1s", entries)
}

/// `config` with another `group_interval`: an hour keeps a failed flush
/// from being tried again while a test counts attempts.
fn config_every(group_interval: &str, entries: &str) -> String {
    format!(
        r#"
route:
  receiver: sns
  group_by: [alertname, team]
  group_wait: 5s
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: sns
    sns_configs:
{entries}"#
    )
}

fn form(ex: &Exchange) -> BTreeMap<String, String> {
    ex.form_pairs().into_iter().collect()
}

/// Herald alone against a fake SNS: 5xx and AWS's throttling code are
/// retried, a 429's `Retry-After` is waited, any other 4xx is permanent,
/// and the status page hides the secret key.
#[tokio::test(flavor = "multi_thread")]
async fn aws_errors_are_retried_by_status_and_code() {
    let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let t2 = times.clone();
    let svc = FakeService::with(Arc::new(move |ex, seen| {
        t2.lock().unwrap().push(Instant::now());
        if form(ex)
            .get("Subject")
            .is_some_and(|s| s.contains("Broken"))
        {
            return aws_error(400, "InvalidParameter", "Invalid parameter: TopicArn");
        }
        match seen.len() {
            0 => aws_error(503, "ServiceUnavailable", "try later"),
            1 => aws_error(400, "Throttling", "Rate exceeded"),
            2 => aws_error(429, "TooManyRequests", "slow down").with_header("Retry-After", "2"),
            _ => published(),
        }
    }))
    .await;
    let cfg = config_every(
        "1h",
        &format!(
            r#"      - api_url: '{}'
        sigv4: {{region: us-east-1, access_key: AKIAHERALDTEST, secret_key: do-not-show-me}}
        topic_arn: arn:aws:sns:us-east-1:123456789012:alerts
        subject: '{{{{ .GroupLabels.alertname }}}}'
"#,
            svc.url("")
        ),
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("Flaky", &["a"])).await;
    svc.wait(4, T).await;
    let at = times.lock().unwrap().clone();
    assert!(
        at[3].duration_since(at[2]) >= Duration::from_secs(2),
        "the 429's Retry-After was not waited: {:?}",
        at.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>(),
    );
    let failed = |reason: &str| {
        format!(r#"alertmanager_notifications_failed_total{{integration="sns",reason="{reason}"}}"#)
    };
    // Three failed attempts, one flush that succeeded in the end.
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="sns"}"#,
        3.0,
    )
    .await;
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="sns"}"#,
        4.0,
    )
    .await;
    assert_eq!(counter(&h.base, &failed("clientError")).await, 0.0);

    // A permanent 400: one attempt only, however long we wait for more.
    post_alerts(&h.base, &firing("Broken", &["a"])).await;
    wait_counter(&h.base, &failed("clientError"), 1.0).await;
    let broken = || {
        svc.requests()
            .iter()
            .filter(|e| form(e)["Subject"] == "Broken")
            .count()
    };
    assert_eq!(broken(), 1);
    // The flush is over (the failure is counted once per flush), so no
    // retry of it can still be under way.
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("secret_key: <secret>"), "{original}");
    assert!(!original.contains("do-not-show-me"));
    assert_eq!(broken(), 1);
}

// Needs Alertmanager 0.33.1 and moto: the system tier only.
#[cfg(feature = "system-tests")]
mod system {
    use std::collections::BTreeSet;
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use sha2::Digest;

    use super::common::fake::*;
    use super::common::*;
    use super::{config, config_every, form, published, T};

    /// Go's `notify.Key.Hash` of the group `{alertname, team}` at the root
    /// route: what FIFO topics get as message group and deduplication id.
    fn group_hash(alertname: &str) -> String {
        let key = format!("{{}}:{{alertname=\"{alertname}\", team=\"db\"}}");
        sha2::Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The parts of a SigV4 `Authorization` header that must agree between
    /// two senders: algorithm, access key, date, region, service, terminator,
    /// and the signed headers.
    fn auth_shape(ex: &Exchange) -> (Vec<String>, BTreeSet<String>, usize) {
        let auth = ex.header("authorization").expect("an Authorization header");
        let (alg, rest) = auth.split_once(' ').unwrap();
        let part = |name: &str| {
            rest.split(", ")
                .find_map(|p| p.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {auth}"))
                .to_string()
        };
        let mut scope: Vec<String> = vec![alg.to_string()];
        scope.extend(part("Credential=").split('/').map(str::to_string));
        let signed = part("SignedHeaders=")
            .split(';')
            .map(str::to_string)
            .collect();
        (scope, signed, part("Signature=").len())
    }

    /// Publish as Herald sends it and as 0.33.1 (through the AWS SDK) sends
    /// it, for a FIFO topic with templated attributes and subject and the
    /// default message: the same parameters, byte for byte, and signatures of
    /// the same shape.
    #[tokio::test(flavor = "multi_thread")]
    async fn publish_matches_alertmanager() {
        let cfg = |base: &str| {
            config(&format!(
                r#"      - api_url: '{base}'
        sigv4: {{region: eu-west-1, access_key: AKIAHERALDTEST, secret_key: s3cr3t}}
        topic_arn: 'arn:aws:sns:eu-west-1:123456789012:{{{{ .GroupLabels.team }}}}-alerts.fifo'
        subject: '[{{{{ .Status | toUpper }}}}] {{{{ .GroupLabels.alertname }}}}'
        attributes:
          severity: '{{{{ .CommonLabels.severity }}}}'
          '{{{{ .GroupLabels.team }}}}_count': '{{{{ len .Alerts }}}}'
          plain: 'a b&c=d'
"#
            ))
        };
        let alerts = firing("DiskFull", &["db1", "db2"]);
        let (ours, theirs) = differential(cfg, Arc::new(|_, _| published()), &alerts, 1, 2).await;
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(t.line(), "POST /", "0.33.1's request {i}");
            assert_eq!(o.line(), t.line());
            assert_eq!(
                o.header("content-type"),
                t.header("content-type"),
                "request {i}"
            );
            assert_eq!(form(o), form(t), "request {i}: parameters differ");
            assert_eq!(
                String::from_utf8_lossy(&o.raw),
                String::from_utf8_lossy(&t.raw),
                "request {i}: body bytes differ"
            );
            let (o_scope, o_signed, o_sig) = auth_shape(o);
            let (t_scope, t_signed, t_sig) = auth_shape(t);
            assert_eq!(o_scope, t_scope, "request {i}: credential scope");
            assert_eq!(o_scope[0], "AWS4-HMAC-SHA256");
            assert_eq!(&o_scope[3..], ["eu-west-1", "sns", "aws4_request"]);
            assert_eq!((o_sig, t_sig), (64, 64));
            // The SDK signs its own headers too (amz-sdk-*); the ones that
            // carry the request must be signed by both.
            for h in ["content-type", "host", "x-amz-date"] {
                assert!(
                    o_signed.contains(h) && t_signed.contains(h),
                    "{h}: {o_signed:?} / {t_signed:?}"
                );
            }
            for ex in [o, t] {
                let date = ex.header("x-amz-date").unwrap();
                assert!(
                    date.len() == 16 && date.ends_with('Z') && &date[8..9] == "T",
                    "{date}"
                );
                assert_eq!(ex.header("x-amz-security-token"), None);
            }
        }
        let firing = form(&ours[0]);
        assert_eq!(firing["Action"], "Publish");
        assert_eq!(
            firing["TopicArn"],
            "arn:aws:sns:eu-west-1:123456789012:db-alerts.fifo"
        );
        assert_eq!(firing["MessageGroupId"], group_hash("DiskFull"));
        assert_eq!(firing["MessageDeduplicationId"], group_hash("DiskFull"));
        assert_eq!(firing["Subject"], "[FIRING] DiskFull");
        assert!(
            firing["Message"].contains("Alerts Firing:"),
            "{}",
            firing["Message"]
        );
        assert_eq!(form(&ours[1])["Subject"], "[RESOLVED] DiskFull");
    }

    /// SMS (cut at 1600 bytes, flagged `truncated`) and a mobile endpoint
    /// (`target_arn`), side by side in one receiver.
    #[tokio::test(flavor = "multi_thread")]
    async fn sms_and_target_arn_match_alertmanager() {
        let long = "é".repeat(1000);
        let cfg = |base: &str| {
            config(&format!(
                r#"      - api_url: '{base}'
        sigv4: {{region: us-east-1, access_key: AKIAHERALDTEST, secret_key: s3cr3t}}
        phone_number: '+1555{{{{ len .Alerts }}}}550100'
        message: '{{{{ .Status }}}}x {long}'
      - api_url: '{base}'
        send_resolved: false
        sigv4: {{region: us-east-1, access_key: AKIAHERALDTEST, secret_key: s3cr3t}}
        target_arn: arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1
        subject: ''
        attributes: {{k: v}}
"#
            ))
        };
        let alerts = firing("Load", &["web1"]);
        let (ours, theirs) = differential(cfg, Arc::new(|_, _| published()), &alerts, 2, 3).await;
        let split = |log: &[Exchange]| {
            let (sms, other): (Vec<_>, Vec<_>) = log
                .iter()
                .map(form)
                .partition(|p| p.contains_key("PhoneNumber"));
            (sms, other)
        };
        let (o_sms, o_target) = split(&ours);
        let (t_sms, t_target) = split(&theirs);
        assert_eq!(
            (t_sms.len(), t_target.len()),
            (2, 1),
            "0.33.1 sent {theirs:?}"
        );
        assert_eq!(o_sms, t_sms);
        assert_eq!(o_target, t_target);
        let sms = &o_sms[0];
        assert_eq!(sms["PhoneNumber"], "+15551550100");
        assert_eq!(sms["Message"].len(), 1600);
        assert_eq!(sms["MessageAttributes.entry.1.Name"], "truncated");
        assert_eq!(sms["MessageAttributes.entry.1.Value.StringValue"], "true");
        assert!(!o_target[0].contains_key("Subject"));
        assert_eq!(
            o_target[0]["TargetArn"],
            "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1"
        );
    }

    // ---------------------------------------------------------------- moto

    /// moto_server from target/venv-moto (scripts/test.sh), or
    /// `HERALD_MOTO_SERVER`.
    fn moto_bin() -> PathBuf {
        let p = std::env::var_os("HERALD_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv-moto/bin/moto_server")
            });
        assert!(
            p.exists(),
            "{} is missing: run scripts/test.sh, which installs moto[server] into target/venv-moto",
            p.display()
        );
        p
    }

    /// What the setup script made in moto: an IAM user with a key allowed
    /// everything, topics, and a role the user may assume.
    struct Moto {
        child: Child,
        url: String,
        access_key: String,
        secret_key: String,
        role_arn: String,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Runs with moto's own boto3 while moto still takes unsigned requests,
    /// then switches moto's IAM on (`reset-auth 0`): from then on every
    /// request must be signed by a key moto knows.
    const SETUP: &str = r#"
import json, sys, boto3, requests
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
user = iam.create_user(UserName="alerting")["User"]
key = iam.create_access_key(UserName="alerting")["AccessKey"]
allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
iam.put_user_policy(UserName="alerting", PolicyName="all", PolicyDocument=json.dumps(allow))
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="publisher", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
iam.put_role_policy(RoleName="publisher", PolicyName="all", PolicyDocument=json.dumps(allow))
sns = boto3.client("sns", **kw)
for name in sys.argv[2:]:
    attrs = {"FifoTopic": "true"} if name.endswith(".fifo") else {}
    sns.create_topic(Name=name, Attributes=attrs)
requests.post(url + "/moto-api/reset-auth", data="0").raise_for_status()
print(json.dumps({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"], "role_arn": role["Arn"]}))
"#;

    async fn start_moto(topics: &[&str]) -> Moto {
        let bin = moto_bin();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto {
            child,
            url: url.clone(),
            access_key: String::new(),
            secret_key: String::new(),
            role_arn: String::new(),
        };
        let probe = format!("{url}/moto-api/data.json");
        wait_until("moto to answer", T, || {
            let probe = probe.clone();
            async move {
                reqwest::get(&probe)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
        let python = bin.with_file_name("python3");
        let out = tokio::process::Command::new(python)
            .arg("-c")
            .arg(SETUP)
            .arg(&url)
            .args(topics)
            .output()
            .await
            .expect("run the moto setup");
        assert!(
            out.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        moto.access_key = v["access_key"].as_str().unwrap().into();
        moto.secret_key = v["secret_key"].as_str().unwrap().into();
        moto.role_arn = v["role_arn"].as_str().unwrap().into();
        moto
    }

    impl Moto {
        async fn data(&self) -> Value {
            get_json(&format!("{}/moto-api/data.json", self.url)).await
        }

        /// What moto recorded as published to `topic`: [id, message, subject,
        /// attributes, group id] each.
        async fn published(&self, topic: &str, n: usize) -> Vec<Value> {
            let suffix = format!(":{topic}");
            wait_until(&format!("{n} messages on topic {topic}"), T, || async {
                let data = self.data().await;
                let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
                let sent = topics
                    .iter()
                    .find(|t| t["arn"].as_str().is_some_and(|a| a.ends_with(&suffix)))
                    .map(|t| {
                        t["sent_notifications"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                (sent.len() >= n).then_some(sent)
            })
            .await
        }

        fn sigv4(&self, extra: &str) -> String {
            format!(
                "{{region: us-east-1, access_key: {}, secret_key: '{}'{extra}}}",
                self.access_key, self.secret_key
            )
        }
    }

    fn topic(name: &str) -> String {
        format!("arn:aws:sns:us-east-1:123456789012:{name}")
    }

    /// moto checks each signature against the key it issued: Herald's and
    /// 0.33.1's publications to a plain topic, a FIFO topic and a topic that
    /// gets a 300 KiB message all go through, and moto records the same
    /// messages for both.
    #[tokio::test(flavor = "multi_thread")]
    async fn moto_accepts_the_signatures_and_records_the_same_messages() {
        let moto = start_moto(&[
            "herald",
            "herald.fifo",
            "herald-big",
            "am",
            "am.fifo",
            "am-big",
        ])
        .await;
        let big = "x".repeat(300 * 1024);
        let cfg = |who: &str| {
            let sigv4 = moto.sigv4("");
            let url = &moto.url;
            config(&format!(
                r#"      - api_url: '{url}'
        sigv4: {sigv4}
        topic_arn: '{plain}'
        attributes: {{severity: '{{{{ .CommonLabels.severity }}}}'}}
      - api_url: '{url}'
        sigv4: {sigv4}
        topic_arn: '{fifo}'
      - api_url: '{url}'
        sigv4: {sigv4}
        topic_arn: '{bigt}'
        message: '{big}'
      - api_url: '{url}'
        sigv4: {sigv4}
        phone_number: '{phone}'
"#,
                phone = if who == "herald" {
                    "+15555550101"
                } else {
                    "+15555550102"
                },
                plain = topic(who),
                fifo = topic(&format!("{who}.fifo")),
                bigt = topic(&format!("{who}-big")),
            ))
        };
        let h = start_herald(&cfg("herald"), &[]).await;
        let am = start_alertmanager(&cfg("am")).await;
        let alerts = firing("DiskFull", &["db1", "db2"]);
        post_alerts(&h.base, &alerts).await;
        post_alerts(&am.base, &alerts).await;
        for suffix in ["", ".fifo", "-big"] {
            let ours = moto.published(&format!("herald{suffix}"), 1).await;
            let theirs = moto.published(&format!("am{suffix}"), 1).await;
            // The message id is moto's; the rest is what was sent.
            let strip = |v: &Value| v.as_array().unwrap()[1..].to_vec();
            assert_eq!(strip(&ours[0]), strip(&theirs[0]), "topic {suffix:?}");
        }
        let fifo = moto.published("herald.fifo", 1).await;
        assert_eq!(fifo[0][4], Value::String(group_hash("DiskFull")));
        let plain = moto.published("herald", 1).await;
        assert_eq!(plain[0][3]["severity"]["Value"], "critical");
        assert_eq!(plain[0][2], "[FIRING:2] DiskFull db (critical)");
        let big = moto.published("herald-big", 1).await;
        assert_eq!(big[0][1].as_str().unwrap().len(), 256 * 1024);
        assert_eq!(big[0][3]["truncated"]["Value"], "true");
        // SMS: moto keeps the phone number and the message.
        let sms = |phone: &'static str| {
            let moto = &moto;
            async move {
                wait_until(&format!("an SMS to {phone}"), T, || async {
                    let data = moto.data().await;
                    data["sns"]["SMS"].as_array().and_then(|all| {
                        all.iter()
                            .find(|m| m["phone_number"] == phone)
                            .map(|m| m["message"].clone())
                    })
                })
                .await
            }
        };
        let ours = sms("+15555550101").await;
        assert_eq!(ours, sms("+15555550102").await);
        assert!(ours.as_str().unwrap().contains("Alerts Firing:"), "{ours}");
        drop((h, am));
    }

    /// A wrong secret key: moto refuses the signature (403), a permanent
    /// authError, tried once.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_bad_signature_is_a_permanent_auth_error() {
        let moto = start_moto(&["herald"]).await;
        let cfg = config_every("1h", &format!(
        "      - api_url: '{}'\n        sigv4: {{region: us-east-1, access_key: {}, secret_key: wrong}}\n        topic_arn: '{}'\n",
        moto.url,
        moto.access_key,
        topic("herald")
    ));
        let h = start_herald(&cfg, &[]).await;
        post_alerts(&h.base, &firing("DiskFull", &["db1"])).await;
        wait_counter(
            &h.base,
            r#"alertmanager_notifications_failed_total{integration="sns",reason="authError"}"#,
            1.0,
        )
        .await;
        let log = h.log.lock().unwrap().clone();
        assert!(log.contains("unexpected status code 403"), "{log}");
        assert!(
            !log.contains("wrong"),
            "the secret key is in the log: {log}"
        );
        let sent = counter(
            &h.base,
            r#"alertmanager_notifications_total{integration="sns"}"#,
        )
        .await;
        assert_eq!(sent, 1.0);
        assert!(moto.data().await["sns"]["Topic"][0]["sent_notifications"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    /// A process with extra environment (the STS endpoint): the shared
    /// starters take none. Herald's address comes from its log, as in
    /// `start_herald_at`.
    fn spawn_with_env(
        bin: &Path,
        args: &[String],
        envs: &[(&str, &str)],
    ) -> (Child, Arc<Mutex<String>>) {
        let mut child = Command::new(bin)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        (child, log)
    }

    struct Proc(Child);

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Both with `role_arn` (and 0.34's `external_id`), STS reached through
    /// `AWS_ENDPOINT_URL_STS` (the SDK's variable, which Herald reads too):
    /// each assumes the role with its user's key and publishes with the
    /// temporary keys and their session token, which moto checks. 0.33.1
    /// drops `external_id`; Herald passes it, as 0.34 does.
    #[tokio::test(flavor = "multi_thread")]
    async fn assume_role_through_sts() {
        let moto = start_moto(&["herald", "am"]).await;
        let dir = tempfile::tempdir().unwrap();
        let envs = [("AWS_ENDPOINT_URL_STS", moto.url.as_str())];
        let mut procs = Vec::new();
        let mut bases = Vec::new();
        for who in ["herald", "am"] {
            let sigv4 = moto.sigv4(&format!(
                ", role_arn: '{}', external_id: ext-1",
                moto.role_arn
            ));
            let cfg = config(&format!(
                "      - api_url: '{}'\n        sigv4: {sigv4}\n        topic_arn: '{}'\n",
                moto.url,
                topic(who)
            ));
            let root = dir.path().join(who);
            std::fs::create_dir_all(&root).unwrap();
            let file = root.join("config.yml");
            std::fs::write(&file, cfg).unwrap();
            let port = free_port();
            let mut args = vec![
                format!("--config.file={}", file.display()),
                format!("--storage.path={}", root.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            let bin = if who == "herald" {
                PathBuf::from(herald_bin())
            } else {
                args.push("--cluster.listen-address=".into());
                am_current_bin("alertmanager")
            };
            let (child, _log) = spawn_with_env(&bin, &args, &envs);
            procs.push(Proc(child));
            let base = format!("http://127.0.0.1:{port}");
            wait_ready(&base).await;
            post_alerts(&base, &firing("DiskFull", &["db1"])).await;
            bases.push(base);
        }
        let ours = moto.published("herald", 1).await;
        let theirs = moto.published("am", 1).await;
        assert_eq!(
            ours[0].as_array().unwrap()[1..],
            theirs[0].as_array().unwrap()[1..]
        );
        let data = moto.data().await;
        let roles = data["sts"]["AssumedRole"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let by = |prefix: &str| {
            roles
                .iter()
                .find(|r| {
                    r["session_name"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(prefix))
                })
                .cloned()
                .unwrap_or_else(|| panic!("no session {prefix}* in {roles:?}"))
        };
        assert_eq!(by("herald-")["external_id"], "ext-1");
        assert_eq!(by("aws-go-sdk-")["external_id"], Value::Null);
        drop(procs);
    }

    /// One fake answering as the AWS services credentials come from (STS,
    /// a container endpoint, IMDSv2) and as SNS.
    fn aws_world(ex: &Exchange, _: &[Exchange]) -> Reply {
        let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let creds = |key: &str, token: &str| {
            Reply::json(
                200,
                serde_json::json!({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key,
                "SecretAccessKey": "temporary-secret", "Token": token, "Expiration": expires}),
            )
        };
        let params = form(ex);
        match (ex.method.as_str(), ex.path.as_str()) {
        // IMDS names the token's lifetime; without it the SDK falls back
        // to IMDSv1.
        ("PUT", "/latest/api/token") => Reply::text(200, "imds-token")
            .with_header("x-aws-ec2-metadata-token-ttl-seconds", "300"),
        ("GET", "/latest/meta-data/iam/security-credentials/") => Reply::text(200, "alerting-role\n"),
        ("GET", "/latest/meta-data/iam/security-credentials/alerting-role") => {
            creds("ASIAIMDS", "imds-session")
        }
        ("GET", "/creds") => creds("ASIACONTAINER", "container-session"),
        ("POST", "/") if params.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity") => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: format!(
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult>\
                 <Credentials><AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>temporary-secret</SecretAccessKey>\
                 <SessionToken>web-session</SessionToken><Expiration>{expires}</Expiration></Credentials>\
                 <SubjectFromWebIdentityToken>system:serviceaccount:mon:am</SubjectFromWebIdentityToken>\
                 <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/web/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\
                 </AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
            ),
        },
        ("POST", "/") if params.get("Action").map(String::as_str) == Some("AssumeRole") => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                 <Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>temporary-secret</SecretAccessKey>\
                 <SessionToken>role-session</SessionToken><Expiration>{expires}</Expiration></Credentials>\
                 <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/publisher/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\
                 </AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
            ),
        },
        ("POST", "/") => published(),
        _ => Reply::status(404),
    }
    }

    /// Herald and 0.33.1, each with `env(<its fake's URL>)` and no keys in
    /// the config, publishing one notification: both request logs once each
    /// has published.
    async fn with_environment(
        sigv4: &str,
        env: impl Fn(&str) -> Vec<(String, String)>,
    ) -> (Vec<Exchange>, Vec<Exchange>) {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = Vec::new();
        let mut procs = Vec::new();
        for who in ["herald", "am"] {
            let fake = FakeService::with(Arc::new(aws_world)).await;
            let base_url = fake.url("");
            let cfg = config(&format!(
                "      - api_url: '{base_url}'\n        sigv4: {sigv4}\n        topic_arn: '{}'\n",
                topic("alerts")
            ));
            let root = dir.path().join(who);
            std::fs::create_dir_all(&root).unwrap();
            let file = root.join("config.yml");
            std::fs::write(&file, cfg).unwrap();
            let port = free_port();
            let mut args = vec![
                format!("--config.file={}", file.display()),
                format!("--storage.path={}", root.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            let bin = if who == "herald" {
                PathBuf::from(herald_bin())
            } else {
                args.push("--cluster.listen-address=".into());
                am_current_bin("alertmanager")
            };
            // No shared files: only what the scenario sets counts.
            let none = root.join("none").display().to_string();
            let mut vars = vec![
                ("AWS_CONFIG_FILE".to_string(), none.clone()),
                ("AWS_SHARED_CREDENTIALS_FILE".to_string(), none),
            ];
            for (k, v) in env(base_url.trim_end_matches('/')) {
                vars.retain(|(name, _)| *name != k);
                vars.push((k, v));
            }
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (child, _) = spawn_with_env(&bin, &args, &vars);
            procs.push(Proc(child));
            let base = format!("http://127.0.0.1:{port}");
            wait_ready(&base).await;
            post_alerts(&base, &firing("DiskFull", &["db1"])).await;
            logs.push(fake);
        }
        let mut out = Vec::new();
        for fake in &logs {
            let me = fake.clone();
            out.push(
                wait_for("a Publish", T, move || {
                    let seen = me.requests();
                    seen.iter()
                        .any(|e| form(e).get("Action").map(String::as_str) == Some("Publish"))
                        .then_some(seen)
                })
                .await,
            );
        }
        drop(procs);
        let theirs = out.pop().unwrap();
        (out.pop().unwrap(), theirs)
    }

    /// The Publish of a log and the access key and session token it was
    /// signed with.
    fn publish_signer(log: &[Exchange]) -> (String, Option<String>) {
        let p = log
            .iter()
            .find(|e| form(e).get("Action").map(String::as_str) == Some("Publish"))
            .unwrap();
        let (scope, signed, _) = auth_shape(p);
        assert!(signed.contains("x-amz-security-token"), "{signed:?}");
        (
            scope[1].clone(),
            p.header("x-amz-security-token").map(str::to_string),
        )
    }

    /// The credential sources of a pod or an instance, each as the AWS SDK
    /// in 0.33.1 uses it: a web identity token (EKS IRSA), a container
    /// endpoint (ECS, EKS Pod Identity) and IMDSv2; the same calls, and the
    /// Publish signed with the keys they gave.
    #[tokio::test(flavor = "multi_thread")]
    async fn credentials_from_the_environment_match_alertmanager() {
        let token = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(token.path(), "header.payload.sig\n").unwrap();
        let token_path = token.path().display().to_string();
        let (ours, theirs) = with_environment("{region: us-east-1}", |url| {
            vec![
                ("AWS_WEB_IDENTITY_TOKEN_FILE".into(), token_path.clone()),
                (
                    "AWS_ROLE_ARN".into(),
                    "arn:aws:iam::123456789012:role/web".into(),
                ),
                ("AWS_ROLE_SESSION_NAME".into(), "alerting".into()),
                ("AWS_ENDPOINT_URL_STS".into(), url.into()),
            ]
        })
        .await;
        let sts = |log: &[Exchange]| {
            log.iter()
                .map(form)
                .find(|p| p.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity"))
                .unwrap_or_else(|| panic!("no AssumeRoleWithWebIdentity in {log:?}"))
        };
        assert_eq!(sts(&ours), sts(&theirs));
        assert_eq!(sts(&ours)["WebIdentityToken"], "header.payload.sig\n");
        assert_eq!(publish_signer(&ours), publish_signer(&theirs));
        assert_eq!(
            publish_signer(&ours),
            ("ASIAWEB".into(), Some("web-session".into()))
        );

        let (ours, theirs) = with_environment("{region: us-east-1}", |url| {
            vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                    format!("{url}/creds"),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
                    "pod-token".into(),
                ),
            ]
        })
        .await;
        let calls = |log: &[Exchange]| {
            log.iter()
                .filter(|e| e.path != "/")
                .map(|e| (e.line(), e.header("authorization").map(str::to_string)))
                .collect::<Vec<_>>()
        };
        assert_eq!(calls(&ours), calls(&theirs));
        assert_eq!(
            calls(&ours),
            [("GET /creds".to_string(), Some("pod-token".to_string()))]
        );
        assert_eq!(publish_signer(&ours), publish_signer(&theirs));
        assert_eq!(publish_signer(&ours).0, "ASIACONTAINER");

        let (ours, theirs) = with_environment("{region: us-east-1}", |url| {
            vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), url.into())]
        })
        .await;
        let imds = |log: &[Exchange]| {
            log.iter()
                .filter(|e| e.path.starts_with("/latest/"))
                .map(|e| {
                    (
                        e.line(),
                        e.header("x-aws-ec2-metadata-token").map(str::to_string),
                        e.header("x-aws-ec2-metadata-token-ttl-seconds")
                            .map(str::to_string),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(imds(&ours), imds(&theirs));
        assert_eq!(imds(&ours).len(), 3, "{:?}", imds(&ours));
        assert_eq!(publish_signer(&ours), publish_signer(&theirs));
        assert_eq!(
            publish_signer(&ours),
            ("ASIAIMDS".into(), Some("imds-session".into()))
        );

        // A profile that assumes a role with the keys of another one.
        let files = tempfile::tempdir().unwrap();
        let cfg_file = files.path().join("config");
        std::fs::write(
            &cfg_file,
            "[profile ops]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/publisher\n\
             source_profile = base\nexternal_id = ext-2\nrole_session_name = alerting\n\
             [profile base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret\n",
        )
        .unwrap();
        let cfg_path = cfg_file.display().to_string();
        let (ours, theirs) = with_environment("{profile: ops}", |url| {
            vec![
                ("AWS_CONFIG_FILE".into(), cfg_path.clone()),
                ("AWS_ENDPOINT_URL_STS".into(), url.into()),
            ]
        })
        .await;
        let assume = |log: &[Exchange]| {
            let e = log
                .iter()
                .find(|e| form(e).get("Action").map(String::as_str) == Some("AssumeRole"))
                .unwrap_or_else(|| panic!("no AssumeRole in {log:?}"));
            (form(e), auth_shape(e).0[1].clone())
        };
        assert_eq!(assume(&ours), assume(&theirs));
        assert_eq!(assume(&ours).1, "AKIABASE");
        assert_eq!(assume(&ours).0["ExternalId"], "ext-2");
        assert_eq!(publish_signer(&ours), publish_signer(&theirs));
        assert_eq!(
            publish_signer(&ours),
            ("ASIAROLE".into(), Some("role-session".into()))
        );
    }
}
