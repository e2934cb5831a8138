//! The Amazon SNS integration (`notify/sns`): one `Publish` of the SNS
//! Query API per notification, a form POST signed with SigV4, to a topic
//! (FIFO topics get the group's key hash as message group and
//! deduplication id), a phone number (SMS, 1600 bytes at most) or a
//! mobile endpoint. Alertmanager goes through the AWS SDK; Herald sends
//! the same request itself, so only the signer is AWS's code.
//!
//! Retries follow the status of AWS's answer (5xx, and AWS's throttling
//! codes whatever their status), with Herald's `Retry-After` rule.

mod aws;
mod config;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use config::{Sigv4Config, SnsConfig};

use super::http::{redact, send, transport_error, Client};
use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::commoncfg::HttpClientConfig;
use crate::model::Alert;
use crate::template::{Templates, Value};
use aws::Keys;

/// SNS refuses a message above 256 KiB.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// ... and an SMS above 1600 bytes.
const MAX_SMS_BYTES: usize = 1600;

/// Assumed-role keys are renewed this long before they expire (the SDK's
/// credential cache does the same, with up to 5 minutes).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

pub struct Sns {
    conf: SnsConfig,
    client: Client,
    templates: Arc<Templates>,
    external_url: String,
    /// The keys of the last AssumeRole and the base access key they were
    /// asked with, reused until shortly before they expire. Go asks STS on
    /// every notification; once per role session is enough.
    assumed: Mutex<Option<(String, Keys)>>,
    /// For the container and instance metadata endpoints: link-local, so
    /// never through a proxy, and quick to give up where there is none.
    metadata: reqwest::Client,
}

impl Sns {
    fn new(
        conf: &SnsConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Sns, BuildError> {
        let mut http = conf.http_config.clone().unwrap_or_default();
        if conf.use_aws_http_client {
            // The SDK's own client takes only the TLS and proxy settings.
            http = HttpClientConfig {
                tls_config: http.tls_config,
                proxy_url: http.proxy_url,
                no_proxy: http.no_proxy,
                proxy_from_environment: http.proxy_from_environment,
                proxy_connect_header: http.proxy_connect_header,
                ..HttpClientConfig::default()
            };
        }
        Ok(Sns {
            conf: conf.clone(),
            client: Client::new(&http, None)?,
            templates,
            external_url: external_url.to_string(),
            assumed: Mutex::new(None),
            metadata: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| BuildError::HttpClient(super::http::ClientError::Build(e)))?,
        })
    }

    /// The `Publish` parameters, in Go's order of checks; a template error
    /// is retried (as Alertmanager does) and names the field.
    fn publish_params(
        &self,
        group_key: &str,
        data: &Value,
    ) -> Result<BTreeMap<String, String>, NotifyError> {
        let c = &self.conf;
        let t = |field: &str, text: &str| {
            self.templates.execute_text(text, data).map_err(|e| {
                NotifyError::new(
                    true,
                    FailureReason::ClientError,
                    format!("execute '{field}' template: {e}"),
                )
            })
        };
        let mut attributes = BTreeMap::new();
        for (k, v) in &c.attributes {
            attributes.insert(t("attributes", k)?, t("attributes", v)?);
        }
        let mut p = BTreeMap::new();
        let mut limit = MAX_MESSAGE_BYTES;
        if !c.topic_arn.is_empty() {
            let topic = t("topic_arn", &c.topic_arn)?;
            if topic.ends_with(".fifo") {
                let id = super::group_key_hash(group_key);
                p.insert("MessageDeduplicationId".to_string(), id.clone());
                p.insert("MessageGroupId".to_string(), id);
            }
            p.insert("TopicArn".to_string(), topic);
        }
        if !c.phone_number.is_empty() {
            p.insert("PhoneNumber".into(), t("phone_number", &c.phone_number)?);
            limit = MAX_SMS_BYTES;
        }
        if !c.target_arn.is_empty() {
            p.insert("TargetArn".into(), t("target_arn", &c.target_arn)?);
        }
        let (message, truncated) = truncate_bytes(t("message", &c.message)?, limit);
        if truncated {
            attributes.insert("truncated".into(), "true".into());
        }
        p.insert("Message".into(), message);
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            let at = format!("MessageAttributes.entry.{}", i + 1);
            p.insert(format!("{at}.Name"), name);
            p.insert(format!("{at}.Value.DataType"), "String".into());
            p.insert(format!("{at}.Value.StringValue"), value);
        }
        if !c.subject.is_empty() {
            p.insert("Subject".into(), t("subject", &c.subject)?);
        }
        p.insert("Action".into(), "Publish".into());
        p.insert("Version".into(), "2010-03-31".into());
        Ok(p)
    }

    /// The keys to sign the Publish with: the base ones, or those of the
    /// configured role assumed with them.
    async fn keys(&self, region: &str, profile: &aws::Profile) -> Result<Keys, NotifyError> {
        let s = &self.conf.sigv4;
        let lookup = aws::Lookup {
            sts: &self.client,
            metadata: &self.metadata,
            region,
        };
        let base = aws::base_keys(
            &s.access_key,
            s.secret_key(),
            !s.profile.is_empty(),
            profile,
            &lookup,
        )
        .await?;
        if s.role_arn.is_empty() {
            return Ok(base);
        }
        let cached = self
            .assumed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((from, keys)) = cached {
            let fresh = keys
                .expires
                .is_some_and(|e| e > SystemTime::now() + RENEW_BEFORE);
            if from == base.access_key && fresh {
                return Ok(keys);
            }
        }
        let keys = aws::assume_role(&lookup, &base, &s.role_arn, &s.external_id).await?;
        *self.assumed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((base.access_key.clone(), keys.clone()));
        Ok(keys)
    }
}

/// Go's truncation: at most `limit` bytes, cut at a character boundary
/// (Go cuts inside a character and sends the broken bytes).
fn truncate_bytes(mut s: String, limit: usize) -> (String, bool) {
    if s.len() <= limit {
        return (s, false);
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

#[async_trait::async_trait]
impl Notifier for Sns {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let s = &self.conf.sigv4;
        let profile = aws::load_profile(&s.profile).await;
        let api_url = self
            .templates
            .execute_text(&self.conf.api_url, &data)
            .map_err(|e| {
                NotifyError::new(
                    true,
                    FailureReason::ClientError,
                    format!("execute 'api_url' template: {e}"),
                )
            })?;
        let region = aws::region(&s.region, &profile)?;
        let endpoint = if api_url.is_empty() {
            aws::endpoint("sns", &region)
        } else {
            api_url
        };
        let shown = redact(&endpoint);
        let url = url::Url::parse(&endpoint).map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("invalid SNS endpoint {shown:?}: {e}"),
            )
        })?;
        let params = self.publish_params(&ctx.group_key, &data)?;
        let keys = self.keys(&region, &profile).await?;
        let body = aws::form(&params).into_bytes();
        let signed = aws::sign_headers(&keys, "sns", &region, &url, &body, SystemTime::now())?;
        let mut req = self
            .client
            .request(
                reqwest::Method::POST,
                url.as_str(),
                Some(body),
                Some(aws::FORM),
            )
            .await?;
        for (k, v) in signed {
            req = req.header(k, v);
        }
        let resp = send(req).await.map_err(|e| transport_error(&shown, e))?;
        let answer = aws::read_answer(resp).await?;
        tracing::debug!(
            message_id = aws::xml_text(&answer, "MessageId").unwrap_or_default(),
            sequence_number = aws::xml_text(&answer, "SequenceNumber").unwrap_or_default(),
            "SNS message successfully published"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notifier of `yaml`, with a plain subject unless it sets one (the
    /// default names a template these tests do not load).
    fn sns(yaml: &str) -> Sns {
        let mut conf: SnsConfig = serde_saphyr::from_str(yaml).unwrap();
        if !yaml.contains("subject:") {
            conf.subject = "s".into();
        }
        Sns::new(&conf, Arc::new(Templates::with_builtins()), "").unwrap()
    }

    fn data() -> Value {
        let mut m = BTreeMap::new();
        m.insert("Status".to_string(), Value::Str("firing".into()));
        Value::Map(Arc::new(m))
    }

    #[test]
    fn a_topic_publish_has_gos_parameters() {
        let s = sns(
            "topic_arn: arn:aws:sns:us-east-1:1:alerts\nsubject: 's {{ .Status }}'\nmessage: m\n\
             attributes: {'k{{ .Status }}': 'v {{ .Status }}', a: b}",
        );
        let p = s.publish_params("{}:{a=\"b\"}", &data()).unwrap();
        let got: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Action", "Publish"),
                ("Message", "m"),
                ("MessageAttributes.entry.1.Name", "a"),
                ("MessageAttributes.entry.1.Value.DataType", "String"),
                ("MessageAttributes.entry.1.Value.StringValue", "b"),
                ("MessageAttributes.entry.2.Name", "kfiring"),
                ("MessageAttributes.entry.2.Value.DataType", "String"),
                ("MessageAttributes.entry.2.Value.StringValue", "v firing"),
                ("Subject", "s firing"),
                ("TopicArn", "arn:aws:sns:us-east-1:1:alerts"),
                ("Version", "2010-03-31"),
            ]
        );
        assert_eq!(
            aws::form(&p),
            "Action=Publish&Message=m&MessageAttributes.entry.1.Name=a&\
             MessageAttributes.entry.1.Value.DataType=String&\
             MessageAttributes.entry.1.Value.StringValue=b&\
             MessageAttributes.entry.2.Name=kfiring&\
             MessageAttributes.entry.2.Value.DataType=String&\
             MessageAttributes.entry.2.Value.StringValue=v+firing&Subject=s+firing&\
             TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Aalerts&Version=2010-03-31"
        );
    }

    #[test]
    fn fifo_topics_get_the_group_key_hash() {
        let s = sns("topic_arn: arn:aws:sns:us-east-1:1:alerts.fifo\nmessage: m");
        let p = s.publish_params("{}:{a=\"b\"}", &data()).unwrap();
        let hash = super::super::group_key_hash("{}:{a=\"b\"}");
        assert_eq!(hash.len(), 64);
        assert_eq!(p["MessageGroupId"], hash);
        assert_eq!(p["MessageDeduplicationId"], hash);
        let p = sns("topic_arn: arn:aws:sns:us-east-1:1:alerts\nmessage: m")
            .publish_params("{}:{}", &data())
            .unwrap();
        assert!(!p.contains_key("MessageGroupId"));
    }

    #[test]
    fn messages_are_cut_to_the_limits_and_flagged() {
        let long = "x".repeat(MAX_MESSAGE_BYTES + 10);
        let s = sns(&format!("target_arn: arn:t\nmessage: {long}"));
        let p = s.publish_params("k", &data()).unwrap();
        assert_eq!(p["Message"].len(), MAX_MESSAGE_BYTES);
        assert_eq!(p["MessageAttributes.entry.1.Name"], "truncated");
        assert_eq!(p["MessageAttributes.entry.1.Value.StringValue"], "true");
        assert_eq!(p["TargetArn"], "arn:t");
        // An SMS is cut at 1600 bytes, never inside a character.
        let s = sns(&format!(
            "phone_number: '+15555550100'\nmessage: a{}",
            "é".repeat(900)
        ));
        let p = s.publish_params("k", &data()).unwrap();
        assert_eq!(p["Message"].len(), 1599);
        assert_eq!(p["PhoneNumber"], "+15555550100");
        // Exactly at the limit nothing is flagged.
        let s = sns(&format!("phone_number: '1'\nmessage: {}", "y".repeat(1600)));
        let p = s.publish_params("k", &data()).unwrap();
        assert!(!p.contains_key("MessageAttributes.entry.1.Name"));
        assert_eq!(truncate_bytes("abc".into(), 3), ("abc".into(), false));
    }

    #[test]
    fn a_template_error_names_the_field_and_is_retried() {
        let s = sns("topic_arn: arn:t\nsubject: '{{ .Nope.Deeper }}'\nmessage: m");
        let e = s.publish_params("k", &Value::Nil).unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.reason, FailureReason::ClientError);
        assert!(
            e.message.starts_with("execute 'subject' template"),
            "{}",
            e.message
        );
    }

    #[test]
    fn destinations_follow_gos_odd_rule() {
        use crate::notify::IntegrationConfig;
        let check = |yaml: &str| {
            let mut c: SnsConfig = serde_saphyr::from_str(yaml).unwrap();
            c.apply_global(&GlobalConfig::default(), "sns").map(|_| ())
        };
        let msg = "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config";
        assert_eq!(check("message: m").unwrap_err().message, msg);
        assert_eq!(
            check("topic_arn: a\ntarget_arn: b").unwrap_err().message,
            msg
        );
        assert!(check("phone_number: '1'").is_ok());
        assert!(check("topic_arn: a\ntarget_arn: b\nphone_number: '1'").is_ok());
        assert_eq!(
            check("topic_arn: a\nsigv4: {access_key: k}").unwrap_err().message,
            "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config"
        );
        assert_eq!(
            check("topic_arn: a\nsigv4: {external_id: x}")
                .unwrap_err()
                .message,
            "external_id can only be used with role_arn"
        );
    }

    use super::super::GlobalConfig;

    #[tokio::test]
    async fn shared_files_profiles() {
        let mut p = aws::Profile::default();
        aws::parse_profile(
            "[default]\nregion = eu-west-1\n[profile ops]\nregion=us-east-2\naws_access_key_id = A\n",
            "ops",
            true,
            &mut p,
        );
        aws::parse_profile(
            "[ops]\naws_access_key_id=B\naws_secret_access_key = S\n[other]\naws_access_key_id=C\n",
            "ops",
            false,
            &mut p,
        );
        assert_eq!(p.region().as_deref(), Some("us-east-2"));
        let client = Client::new(&HttpClientConfig::default(), None).unwrap();
        let metadata = reqwest::Client::new();
        let lookup = aws::Lookup {
            sts: &client,
            metadata: &metadata,
            region: "us-east-2",
        };
        // A profile the config names wins over the environment.
        let k = aws::base_keys("", "", true, &p, &lookup).await.unwrap();
        assert_eq!((k.access_key.as_str(), k.secret_key.as_str()), ("B", "S"));
        // Keys in the config win over anything else.
        let k = aws::base_keys("K", "T", true, &p, &lookup).await.unwrap();
        assert_eq!(k.access_key, "K");
    }

    #[test]
    fn regional_endpoints_and_secret_free_debug() {
        if std::env::var_os("AWS_ENDPOINT_URL_SNS").is_none()
            && std::env::var_os("AWS_ENDPOINT_URL").is_none()
        {
            assert_eq!(
                aws::endpoint("sns", "eu-west-1"),
                "https://sns.eu-west-1.amazonaws.com/"
            );
            assert_eq!(
                aws::endpoint("sns", "cn-north-1"),
                "https://sns.cn-north-1.amazonaws.com.cn/"
            );
        }
        let keys = Keys {
            access_key: "AKID".into(),
            secret_key: "very-secret".into(),
            session_token: Some("session-secret".into()),
            expires: None,
        };
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("AKID") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn aws_errors_read_from_xml() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code>\
                   <Message>Invalid parameter: a &amp; b &#x3C;</Message></Error></ErrorResponse>";
        assert_eq!(
            aws::xml_text(xml, "Message").as_deref(),
            Some("Invalid parameter: a & b <")
        );
        assert_eq!(
            aws::xml_text(xml, "Code").as_deref(),
            Some("InvalidParameter")
        );
        assert!(aws::is_throttling("Throttling"));
        assert!(!aws::is_throttling("InvalidParameter"));
    }

    #[test]
    fn signing_adds_the_sigv4_headers() {
        let keys = Keys {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
            expires: None,
        };
        let url = url::Url::parse("http://127.0.0.1:4566/").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let h = aws::sign_headers(&keys, "sns", "us-east-1", &url, b"Action=Publish", at).unwrap();
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(get("x-amz-security-token"), Some("tok"));
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sns/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
    }
}
