//! What every HTTP integration shares (Alertmanager's `notify/util.go` and
//! prometheus/common's HTTP client): the client an `http_config` describes,
//! its credentials, how an answer's status becomes a retry decision and a
//! failure `reason`, `Retry-After`, and rune truncation. An integration that
//! POSTs JSON needs nothing else from the transport.

use std::time::Duration;

use crate::commoncfg::HttpClientConfig;

use super::{FailureReason, NotifyError};

/// `User-Agent` of every outgoing request. Alertmanager sends
/// `Alertmanager/<version>`; receivers that key on the product name keep
/// working.
pub fn user_agent() -> String {
    format!("Alertmanager/{}", env!("CARGO_PKG_VERSION"))
}

/// Why the client an `http_config` describes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("proxy_url: {0}")]
    Proxy(reqwest::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("http client: {0}")]
    Build(reqwest::Error),
}

/// A credential given inline or in a file read at each notification (so a
/// rotated secret takes effect without a reload).
pub(crate) enum Credential {
    Inline(String),
    File(String),
}

impl Credential {
    pub(crate) fn from(inline: Option<&str>, file: Option<&String>) -> Option<Credential> {
        match (inline, file) {
            (Some(s), _) => Some(Credential::Inline(s.to_string())),
            (None, Some(f)) => Some(Credential::File(f.clone())),
            (None, None) => None,
        }
    }

    pub(crate) fn read(&self) -> Result<String, NotifyError> {
        match self {
            Credential::Inline(s) => Ok(s.clone()),
            Credential::File(f) => read_secret_file(f),
        }
    }
}

fn read_secret_file(path: &str) -> Result<String, NotifyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| NotifyError::new(false, FailureReason::Other, format!("reading {path}: {e}")))
}

/// An HTTP client with the credentials of its `http_config`: what each
/// HTTP integration holds.
pub(crate) struct Client {
    client: reqwest::Client,
    http: HttpClientConfig,
}

impl Client {
    /// The client `cfg` describes; `timeout` bounds each request (the
    /// integration's own `timeout` key, where it has one).
    pub(crate) fn new(
        cfg: &HttpClientConfig,
        timeout: Option<Duration>,
    ) -> Result<Client, ClientError> {
        let mut b = reqwest::Client::builder().user_agent(user_agent());
        b = b.redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
        if let Some(t) = timeout.filter(|t| !t.is_zero()) {
            b = b.timeout(t);
        }
        if let Some(p) = &cfg.proxy_url {
            let mut proxy = reqwest::Proxy::all(p).map_err(ClientError::Proxy)?;
            if let Some(np) = &cfg.no_proxy {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(np));
            }
            b = b.proxy(proxy);
        } else if cfg.proxy_from_environment != Some(true) {
            b = b.no_proxy();
        }
        if let Some(tls) = &cfg.tls_config {
            // One rustls configuration for every TLS client Herald has, so
            // `server_name` and the version bounds hold here too.
            let tls = crate::tls::client_config(tls, std::path::Path::new(""), "tls_config")?;
            b = b.tls_backend_preconfigured(tls);
        }
        Ok(Client {
            client: b.build().map_err(ClientError::Build)?,
            http: cfg.clone(),
        })
    }

    /// A POST of a JSON body to `url`, with the `http_config` credentials.
    pub(crate) fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, NotifyError> {
        let req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        authorize(req, &self.http)
    }
}

/// Sends a notifier's request inside an HTTP client span, with the trace
/// context in `traceparent` so the receiver can join the trace (Go wraps
/// every notifier's transport in otelhttp for this).
pub(crate) async fn send(
    mut req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    if !crate::otel::enabled() {
        return req.send().await;
    }
    let span = crate::otel::start(
        "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        "HTTP POST",
        opentelemetry::trace::SpanKind::Client,
        &opentelemetry::Context::current(),
        || vec![opentelemetry::KeyValue::new("http.request.method", "POST")],
    );
    for (k, v) in crate::otel::inject(span.context()) {
        req = req.header(k, v);
    }
    let result = req.send().await;
    match &result {
        Ok(resp) => {
            let code = resp.status().as_u16();
            span.set_attribute(opentelemetry::KeyValue::new(
                "http.response.status_code",
                i64::from(code),
            ));
            if code >= 400 {
                span.error(format!("HTTP {code}"));
            }
        }
        Err(e) => span.error(e.to_string()),
    }
    span.end();
    result
}

/// Adds the credentials of `http_config` to a request.
fn authorize(
    mut req: reqwest::RequestBuilder,
    cfg: &HttpClientConfig,
) -> Result<reqwest::RequestBuilder, NotifyError> {
    if let Some(ba) = &cfg.basic_auth {
        let user = match (&ba.username, &ba.username_file) {
            (_, Some(f)) => read_secret_file(f)?,
            (Some(u), None) => u.clone(),
            (None, None) => String::new(),
        };
        let pass = match (&ba.password, &ba.password_file) {
            (_, Some(f)) => Some(read_secret_file(f)?),
            (Some(p), None) => Some(p.expose().to_string()),
            (None, None) => None,
        };
        req = req.basic_auth(user, pass);
    }
    let bearer = match (&cfg.bearer_token, &cfg.bearer_token_file) {
        (_, Some(f)) => Some(("Bearer".to_string(), read_secret_file(f)?)),
        (Some(t), None) => Some(("Bearer".to_string(), t.expose().to_string())),
        _ => None,
    };
    let authz = match &cfg.authorization {
        Some(a) => {
            let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
            match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => Some((kind, read_secret_file(f)?)),
                (Some(c), None) => Some((kind, c.expose().to_string())),
                (None, None) => None,
            }
        }
        None => None,
    };
    if let Some((kind, cred)) = bearer.or(authz) {
        req = req.header(reqwest::header::AUTHORIZATION, format!("{kind} {cred}"));
    }
    Ok(req)
}

/// A request that got no answer (connection refused, timeout, TLS): always
/// worth retrying. `shown_url` is what the error may show of the URL.
pub(crate) fn transport_error(shown_url: &str, e: reqwest::Error) -> NotifyError {
    NotifyError::new(
        true,
        FailureReason::Other,
        format!("Post \"{shown_url}\": {}", e.without_url()),
    )
}

/// Hides credentials in a URL before it goes into an error or a log.
pub(crate) fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) => {
            if p.password().is_some() {
                let _ = p.set_password(Some("xxxxx"));
            }
            p.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// Alertmanager's `notify.Retrier.Check`: 2xx succeeds; 5xx, and the
/// integration's own `retry_codes`, are retried; anything else fails this
/// flush. The failure reason follows the status (`authError` for 401/403,
/// `rateLimited` for 429, ...). On 429 and 503 the receiver's
/// `Retry-After` is kept, so the retry waits at least that long, whatever
/// the integration.
pub(crate) fn check_status(
    resp: &reqwest::Response,
    retry_codes: &[u16],
) -> Result<(), NotifyError> {
    let code = resp.status().as_u16();
    if (200..300).contains(&code) {
        return Ok(());
    }
    let mut e = NotifyError::new(
        (500..600).contains(&code) || retry_codes.contains(&code),
        FailureReason::from_status(code),
        format!("unexpected status code {code}"),
    );
    if code == 429 || code == 503 {
        e.retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
    }
    Err(e)
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    Some(Duration::try_from(at.duration_since(now)).unwrap_or_default())
}

/// Go's `TruncateInRunes`: at most `n` characters, the last one an
/// ellipsis when something was cut.
pub fn truncate_runes(s: String, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s, false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_truncated_in_runes() {
        assert_eq!(truncate_runes("abc".into(), 5), ("abc".into(), false));
        assert_eq!(truncate_runes("äöüäöü".into(), 4), ("äöü…".into(), true));
        assert_eq!(truncate_runes("abcdef".into(), 2), ("ab".into(), true));
    }

    fn answer(code: u16, retry_after: Option<&str>) -> reqwest::Response {
        let mut b = axum::http::Response::builder().status(code);
        if let Some(v) = retry_after {
            b = b.header("Retry-After", v);
        }
        reqwest::Response::from(b.body("").unwrap())
    }

    #[test]
    fn statuses_map_to_retries_and_reasons() {
        assert!(check_status(&answer(204, None), &[]).is_ok());
        // A 503 is retried no sooner than the receiver asked, whichever
        // integration gets it.
        let e = check_status(&answer(503, Some("7")), &[]).unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.reason, FailureReason::ServerError);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        // 429 is retried only by integrations that list it, and always
        // keeps its Retry-After.
        let e = check_status(&answer(429, Some("3")), &[]).unwrap_err();
        assert!(!e.retryable);
        assert_eq!(e.reason, FailureReason::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        assert!(
            check_status(&answer(429, None), &[429])
                .unwrap_err()
                .retryable
        );
        let e = check_status(&answer(401, Some("3")), &[]).unwrap_err();
        assert_eq!(
            (e.retryable, e.reason, e.retry_after),
            (false, FailureReason::AuthError, None)
        );
        let e = check_status(&answer(404, None), &[]).unwrap_err();
        assert_eq!(e.reason, FailureReason::ClientError);
        assert_eq!(e.message, "unexpected status code 404");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
