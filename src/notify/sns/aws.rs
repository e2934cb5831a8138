//! The little of the AWS SDK that publishing to SNS needs: where the
//! credentials and the region come from (the config, the environment, the
//! shared files, STS AssumeRole), the endpoints, SigV4 signing (AWS's own
//! `aws-sigv4`), and the XML of the Query API's answers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::super::{FailureReason, NotifyError};

/// Keys to sign a request with. Its `Debug` shows the access key only.
#[derive(Clone)]
pub(crate) struct Keys {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    /// When temporary keys (AssumeRole) run out.
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key", &self.access_key)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A failure to find credentials or a region: a setup problem the next
/// attempt may not have (a file being rotated), so retried as Go does.
fn setup_error(message: impl Into<String>) -> NotifyError {
    NotifyError::new(true, FailureReason::Other, message)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One profile of the shared `config` and `credentials` files: the keys
/// that matter here. Its values hold secrets, so its `Debug` shows the
/// name only.
#[derive(Default)]
pub(crate) struct Profile {
    name: String,
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Profile {
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn region(&self) -> Option<String> {
        self.get("region").map(str::to_string)
    }

    fn keys(&self) -> Option<Keys> {
        Some(Keys {
            access_key: self.get("aws_access_key_id")?.to_string(),
            secret_key: self.get("aws_secret_access_key")?.to_string(),
            session_token: self.get("aws_session_token").map(str::to_string),
            expires: None,
        })
    }
}

/// The section `name` of an INI file (`[name]`, or `[profile name]` in
/// the config file), later files' keys winning.
pub(crate) fn parse_profile(text: &str, name: &str, config_file: bool, into: &mut Profile) {
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let section = if config_file && section != "default" {
                match section.strip_prefix("profile") {
                    Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim(),
                    _ => "",
                }
            } else {
                section
            };
            inside = !section.is_empty() && section == name;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            into.values
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
}

fn home_file(var: &str, rel: &str) -> Option<String> {
    env(var).or_else(|| env("HOME").map(|h| format!("{h}/.aws/{rel}")))
}

/// The named profile (or `AWS_PROFILE`, or `default`) from
/// `AWS_CONFIG_FILE` (`~/.aws/config`) and `AWS_SHARED_CREDENTIALS_FILE`
/// (`~/.aws/credentials`), the latter winning. Missing files are no
/// profile, as for the SDK.
pub(crate) async fn load_profile(name: &str) -> Profile {
    let name = if name.is_empty() {
        env("AWS_PROFILE").unwrap_or_else(|| "default".into())
    } else {
        name.to_string()
    };
    let mut p = Profile {
        name: name.clone(),
        ..Profile::default()
    };
    for (var, rel, config_file) in [
        ("AWS_CONFIG_FILE", "config", true),
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials", false),
    ] {
        let Some(path) = home_file(var, rel) else {
            continue;
        };
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            parse_profile(&text, &name, config_file, &mut p);
        }
    }
    p
}

/// What finding the base credentials may use beyond the config: the
/// client for STS (`http_config`'s) and one for the link-local metadata
/// services (no proxy, short timeouts, as the SDK's own).
pub(crate) struct Lookup<'a> {
    pub sts: &'a super::super::http::Client,
    pub metadata: &'a reqwest::Client,
    pub region: &'a str,
}

/// The base credentials, in the AWS SDK's order: the config's keys; a
/// profile the config names; the `AWS_ACCESS_KEY_ID` environment; a web
/// identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`, EKS' IRSA); the profile
/// of `AWS_PROFILE` (or `default`); the container endpoint (ECS, EKS Pod
/// Identity); the EC2 instance metadata service.
pub(crate) async fn base_keys(
    access_key: &str,
    secret_key: &str,
    profile_named: bool,
    profile: &Profile,
    lookup: &Lookup<'_>,
) -> Result<Keys, NotifyError> {
    if !access_key.is_empty() {
        return Ok(Keys {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: None,
            expires: None,
        });
    }
    if !profile_named {
        if let (Some(a), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Keys {
                access_key: a,
                secret_key: s,
                session_token: env("AWS_SESSION_TOKEN"),
                expires: None,
            });
        }
        if let Some(file) = env("AWS_WEB_IDENTITY_TOKEN_FILE") {
            return web_identity(lookup, &file).await;
        }
    }
    if let Some(keys) = profile_keys(profile, lookup, 0).await? {
        return Ok(keys);
    }
    if let Some(path) = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        return container(lookup.metadata, &format!("http://169.254.170.2{path}")).await;
    }
    if let Some(url) = env("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        return container(lookup.metadata, &url).await;
    }
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(setup_error(
            "failed to retrieve AWS credentials: none in sigv4, the environment or the shared files, and EC2 instance metadata is disabled",
        ));
    }
    instance_metadata(lookup.metadata).await
}

/// How many `source_profile` hops a profile may take (the SDK refuses
/// only cycles; a chain this long is one in practice).
const MAX_SOURCE_PROFILES: u8 = 8;

/// The keys a shared-file profile gives: its static keys, or those of its
/// `source_profile` or its `credential_source` (`Environment`,
/// `Ec2InstanceMetadata`, `EcsContainer`); then, with a `role_arn`, that
/// role assumed with them (`external_id`, `role_session_name`,
/// `duration_seconds` of the profile). None: the profile names no
/// credentials, the chain goes on.
async fn profile_keys(
    profile: &Profile,
    lookup: &Lookup<'_>,
    depth: u8,
) -> Result<Option<Keys>, NotifyError> {
    let base = if let Some(source) = profile.get("source_profile") {
        if depth >= MAX_SOURCE_PROFILES {
            return Err(setup_error(format!(
                "profile {}: source_profile chain too long",
                profile.name
            )));
        }
        let keys = if source == profile.name {
            profile.keys()
        } else {
            let next = load_profile(source).await;
            Box::pin(profile_keys(&next, lookup, depth + 1)).await?
        };
        keys.ok_or_else(|| {
            setup_error(format!(
                "profile {}: source_profile {source} has no credentials",
                profile.name
            ))
        })?
    } else if let Some(keys) = profile.keys() {
        keys
    } else if let Some(source) = profile.get("credential_source") {
        match source {
            "Environment" => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => Keys {
                    access_key: a,
                    secret_key: s,
                    session_token: env("AWS_SESSION_TOKEN"),
                    expires: None,
                },
                _ => {
                    return Err(setup_error(format!(
                        "profile {}: credential_source Environment without AWS_ACCESS_KEY_ID",
                        profile.name
                    )))
                }
            },
            "Ec2InstanceMetadata" => instance_metadata(lookup.metadata).await?,
            "EcsContainer" => match env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
                Some(path) => {
                    container(lookup.metadata, &format!("http://169.254.170.2{path}")).await?
                }
                None => match env("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
                    Some(url) => container(lookup.metadata, &url).await?,
                    None => {
                        return Err(setup_error(format!(
                        "profile {}: credential_source EcsContainer without a container endpoint",
                        profile.name
                    )))
                    }
                },
            },
            other => {
                return Err(setup_error(format!(
                    "profile {}: unsupported credential_source {other}",
                    profile.name
                )))
            }
        }
    } else {
        return Ok(None);
    };
    let Some(role) = profile.get("role_arn") else {
        return Ok(Some(base));
    };
    // The SDK asks for longer sessions only, never below its default.
    let duration = profile
        .get("duration_seconds")
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|d| *d > ASSUME_DURATION.as_secs())
        .map(Duration::from_secs)
        .unwrap_or(ASSUME_DURATION);
    let session = profile.get("role_session_name").map(str::to_string);
    let keys = assume_role_as(
        lookup,
        &base,
        role,
        profile.get("external_id").unwrap_or(""),
        session,
        duration,
    )
    .await?;
    Ok(Some(keys))
}

/// STS AssumeRoleWithWebIdentity with the token in `file` for
/// `AWS_ROLE_ARN`: an unsigned call, the token is the credential.
async fn web_identity(lookup: &Lookup<'_>, file: &str) -> Result<Keys, NotifyError> {
    let token = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| setup_error(format!("failed to read web identity token {file}: {e}")))?;
    let role = env("AWS_ROLE_ARN")
        .ok_or_else(|| setup_error("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"))?;
    let mut params = BTreeMap::new();
    params.insert(
        "Action".to_string(),
        "AssumeRoleWithWebIdentity".to_string(),
    );
    params.insert("Version".into(), "2011-06-15".into());
    params.insert("RoleArn".into(), role);
    params.insert(
        "RoleSessionName".into(),
        env("AWS_ROLE_SESSION_NAME").unwrap_or_else(session_name),
    );
    // Verbatim, as the SDK sends it (Kubernetes' projected tokens have no
    // trailing newline anyway).
    params.insert("WebIdentityToken".into(), token);
    let text = sts_call(lookup, &params, None).await?;
    temporary_keys(&text, "AssumeRoleWithWebIdentity")
}

/// A JSON credentials answer (container endpoint, instance metadata).
fn json_keys(body: &str, from: &str) -> Result<Keys, NotifyError> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| setup_error(format!("{from}: not a credentials answer: {e}")))?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty());
    let (Some(a), Some(s)) = (get("AccessKeyId"), get("SecretAccessKey")) else {
        return Err(setup_error(format!(
            "{from}: no AccessKeyId/SecretAccessKey in the answer"
        )));
    };
    Ok(Keys {
        access_key: a.to_string(),
        secret_key: s.to_string(),
        session_token: get("Token").map(str::to_string),
        expires: get("Expiration").and_then(parse_time),
    })
}

fn parse_time(t: &str) -> Option<SystemTime> {
    let t = t.parse::<jiff::Timestamp>().ok()?;
    let secs = u64::try_from(t.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A metadata request's answer as text, its failure a setup error.
async fn metadata_text(req: reqwest::RequestBuilder, from: &str) -> Result<String, NotifyError> {
    let resp = req
        .send()
        .await
        .map_err(|e| setup_error(format!("{from}: {}", e.without_url())))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| setup_error(format!("{from}: {}", e.without_url())))?;
    if !status.is_success() {
        return Err(setup_error(format!(
            "{from}: unexpected status code {}",
            status.as_u16()
        )));
    }
    Ok(text)
}

/// The container credentials endpoint (ECS task roles, EKS Pod
/// Identity), with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` as its `Authorization`.
async fn container(client: &reqwest::Client, url: &str) -> Result<Keys, NotifyError> {
    let from = "container credentials endpoint";
    let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(f) => Some(tokio::fs::read_to_string(&f).await.map_err(|e| {
            setup_error(format!("failed to read authorization token from {f}: {e}"))
        })?),
        None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut req = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(t) = token {
        req = req.header(reqwest::header::AUTHORIZATION, t.trim());
    }
    json_keys(&metadata_text(req, from).await?, from)
}

/// The EC2 instance role through IMDSv2: a session token, the role's
/// name, its keys. `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it, as for
/// the SDK.
async fn instance_metadata(client: &reqwest::Client) -> Result<Keys, NotifyError> {
    let from = "EC2 instance metadata";
    let base =
        env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
    let base = base.trim_end_matches('/');
    let token = metadata_text(
        client
            .put(format!("{base}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "300"),
        from,
    )
    .await?;
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let names = metadata_text(
        client.get(&path).header("x-aws-ec2-metadata-token", &token),
        from,
    )
    .await?;
    let Some(role) = names.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err(setup_error(format!("{from}: no EC2 IMDS role found")));
    };
    let body = metadata_text(
        client
            .get(format!("{path}{role}"))
            .header("x-aws-ec2-metadata-token", &token),
        from,
    )
    .await?;
    json_keys(&body, from)
}

/// The region: the config's, `AWS_REGION`, `AWS_DEFAULT_REGION`, then
/// the profile's.
pub(crate) fn region(configured: &str, profile: &Profile) -> Result<String, NotifyError> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| profile.region())
        .ok_or_else(|| {
            setup_error("region not configured in sns.sigv4.region or in default credentials chain")
        })
}

/// A service's endpoint when the config names none: the SDK's
/// `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL`, else AWS's
/// regional one.
pub(crate) fn endpoint(service: &str, region: &str) -> String {
    env(&format!(
        "AWS_ENDPOINT_URL_{}",
        service.to_ascii_uppercase()
    ))
    .or_else(|| env("AWS_ENDPOINT_URL"))
    .unwrap_or_else(|| {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{service}.{region}.{suffix}/")
    })
}

/// Go's `url.Values.Encode` of the Query API's parameters: sorted by key,
/// `QueryEscape`d.
pub(crate) fn form(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// The headers that sign a form POST of `body` to `url` for `service` in
/// `region` (`X-Amz-Date`, `Authorization`, and `X-Amz-Security-Token`
/// for temporary keys). The host is signed as reqwest will send it.
pub(crate) fn sign_headers(
    keys: &Keys,
    service: &str,
    region: &str,
    url: &url::Url,
    body: &[u8],
    at: SystemTime,
) -> Result<Vec<(&'static str, String)>, NotifyError> {
    let fail = |e: String| NotifyError::new(false, FailureReason::Other, format!("sigv4: {e}"));
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    let identity: Identity = Credentials::new(
        keys.access_key.clone(),
        keys.secret_key.clone(),
        keys.session_token.clone(),
        keys.expires,
        "herald",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let headers = [("content-type", FORM), ("host", host.as_str())];
    let req = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| fail(e.to_string()))?;
    let (instructions, _) = sign(req, &params)
        .map_err(|e| fail(e.to_string()))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

/// The text of the first `<tag>` element of an XML answer, unescaped.
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(unescape(&xml[start..end]))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// AWS error codes that mean "slow down": the SDK retries them whatever
/// their HTTP status (often 400), and so does Herald.
pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// The body of an AWS answer, or, when it is not 2xx, the error as
/// Alertmanager's Retrier reports it: `unexpected status code <n>: <AWS
/// message>`, retried on 5xx and on throttling, the reason from the status.
/// A 429 counts as throttling whatever its code (Go's SDK looks only at
/// the code), so that its `Retry-After` is waited and retried.
pub(crate) async fn read_answer(resp: reqwest::Response) -> Result<String, NotifyError> {
    let status = super::super::http::check_status(&resp, &[429]);
    let body = resp.bytes().await;
    let text = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
    match status {
        Ok(()) => body.map(|_| text).map_err(|e| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("reading the answer: {}", e.without_url()),
            )
        }),
        Err(mut e) => {
            let code = xml_text(&text, "Code").unwrap_or_default();
            if is_throttling(&code) {
                e.retryable = true;
            }
            if let Some(m) = xml_text(&text, "Message").filter(|m| !m.is_empty()) {
                e.message = format!("{}: {m}", e.message);
            }
            Err(e)
        }
    }
}

/// The session name of an AssumeRole: unique per call, as the SDK's
/// `aws-go-sdk-<nanoseconds>`.
fn session_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("herald-{nanos}")
}

/// How long assumed credentials are asked for (the SDK's default).
const ASSUME_DURATION: Duration = Duration::from_secs(900);

/// A form POST to STS, signed with `keys` unless it is None
/// (AssumeRoleWithWebIdentity is not signed): the answer's XML.
async fn sts_call(
    lookup: &Lookup<'_>,
    params: &BTreeMap<String, String>,
    keys: Option<&Keys>,
) -> Result<String, NotifyError> {
    let sts = endpoint("sts", lookup.region);
    let url =
        url::Url::parse(&sts).map_err(|e| setup_error(format!("sts endpoint {sts:?}: {e}")))?;
    let body = form(params).into_bytes();
    let signed = match keys {
        Some(k) => sign_headers(k, "sts", lookup.region, &url, &body, SystemTime::now())?,
        None => Vec::new(),
    };
    let mut req = lookup
        .sts
        .request(reqwest::Method::POST, url.as_str(), Some(body), Some(FORM))
        .await?;
    for (k, v) in signed {
        req = req.header(k, v);
    }
    let resp = super::super::http::send(req)
        .await
        .map_err(|e| super::super::http::transport_error(&super::super::http::redact(&sts), e))?;
    read_answer(resp).await
}

/// The `Credentials` of an STS answer.
fn temporary_keys(text: &str, action: &str) -> Result<Keys, NotifyError> {
    let get = |tag: &str| {
        xml_text(text, tag).ok_or_else(|| {
            NotifyError::new(
                true,
                FailureReason::Other,
                format!("sts {action}: no {tag} in the answer"),
            )
        })
    };
    Ok(Keys {
        access_key: get("AccessKeyId")?,
        secret_key: get("SecretAccessKey")?,
        session_token: Some(get("SessionToken")?),
        expires: xml_text(text, "Expiration").as_deref().and_then(parse_time),
    })
}

/// STS AssumeRole for `role_arn`, signed with `base`: the temporary keys.
pub(crate) async fn assume_role(
    lookup: &Lookup<'_>,
    base: &Keys,
    role_arn: &str,
    external_id: &str,
) -> Result<Keys, NotifyError> {
    assume_role_as(lookup, base, role_arn, external_id, None, ASSUME_DURATION).await
}

/// `assume_role` with a session name (a fresh one when None) and a
/// lifetime.
async fn assume_role_as(
    lookup: &Lookup<'_>,
    base: &Keys,
    role_arn: &str,
    external_id: &str,
    session: Option<String>,
    duration: Duration,
) -> Result<Keys, NotifyError> {
    let mut params = BTreeMap::new();
    params.insert("Action".to_string(), "AssumeRole".to_string());
    params.insert("Version".into(), "2011-06-15".into());
    params.insert("RoleArn".into(), role_arn.to_string());
    params.insert(
        "RoleSessionName".into(),
        session.unwrap_or_else(session_name),
    );
    params.insert("DurationSeconds".into(), duration.as_secs().to_string());
    if !external_id.is_empty() {
        params.insert("ExternalId".into(), external_id.to_string());
    }
    let text = sts_call(lookup, &params, Some(base)).await?;
    temporary_keys(&text, "AssumeRole")
}
