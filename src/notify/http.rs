//! What every HTTP integration shares (Alertmanager's `notify/util.go` and
//! prometheus/common's HTTP client): the client an `http_config` describes,
//! its credentials, how an answer's status becomes a retry decision and a
//! failure `reason`, `Retry-After`, and rune truncation. An integration that
//! POSTs JSON needs nothing else from the transport.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use reqwest::header::{HeaderName, HeaderValue};

use crate::commoncfg::{HttpClientConfig, OAuth2, Secret};

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
    /// A `*_ref` key: Alertmanager has no secret manager to resolve it
    /// with, so it refuses the config when it builds the client, and so does
    /// Herald, with the same words. `what` is Go's name for the secret.
    #[error("unable to use {what}: cannot use secret ref without manager")]
    SecretRef { what: &'static str },
    /// An `http_headers` name or value that cannot be sent.
    #[error("http_headers: {0}")]
    Header(String),
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

    /// `read_async` of an optional credential.
    async fn read_opt(c: &Option<Credential>) -> Result<Option<String>, NotifyError> {
        match c {
            Some(c) => c.read_async().await.map(Some),
            None => Ok(None),
        }
    }

    /// `read` off the runtime's threads, for the credentials read inside
    /// the client on every request.
    pub(crate) async fn read_async(&self) -> Result<String, NotifyError> {
        match self {
            Credential::Inline(s) => Ok(s.clone()),
            Credential::File(f) => tokio::fs::read_to_string(f)
                .await
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    NotifyError::new(
                        true,
                        FailureReason::Other,
                        format!("unable to read file {f}: {e}"),
                    )
                }),
        }
    }
}

fn read_secret_file(path: &str) -> Result<String, NotifyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| NotifyError::new(false, FailureReason::Other, format!("reading {path}: {e}")))
}

/// A key that may be given inline, in a file or as a `*_ref`: `Err` for a
/// ref (see `ClientError::SecretRef`), the credential otherwise.
fn credential(
    inline: Option<&str>,
    file: Option<&String>,
    reference: Option<&String>,
    what: &'static str,
) -> Result<Option<Credential>, ClientError> {
    let inline = inline.filter(|s| !s.is_empty());
    let file = file.filter(|s| !s.is_empty());
    if inline.is_none() && file.is_none() && reference.is_some_and(|r| !r.is_empty()) {
        return Err(ClientError::SecretRef { what });
    }
    Ok(Credential::from(inline, file))
}

/// Where the value of an `http_headers` entry comes from.
enum HeaderValueSource {
    Fixed(HeaderValue),
    File(String),
}

/// The `Authorization` an `http_config` adds, with its credentials
/// resolved to inline values or files.
enum Auth {
    None,
    Basic {
        user: Option<Credential>,
        pass: Option<Credential>,
    },
    Scheme {
        kind: String,
        credentials: Option<Credential>,
    },
    OAuth2(Arc<TokenSource>),
}

/// An HTTP client with the credentials of its `http_config`: what each
/// HTTP integration holds.
pub(crate) struct Client {
    client: reqwest::Client,
    auth: Auth,
    headers: Vec<(HeaderName, HeaderValueSource)>,
}

/// A reqwest client with the transport settings (proxy, TLS) that
/// `http_config` and its `oauth2` section each have.
fn transport(
    proxy_url: Option<&String>,
    no_proxy: Option<&String>,
    proxy_from_environment: Option<bool>,
    proxy_connect_header: Option<&BTreeMap<String, Vec<Secret>>>,
    tls: Option<&crate::commoncfg::TlsConfig>,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let mut b = reqwest::Client::builder().user_agent(user_agent());
    let connect_headers = proxy_headers(proxy_connect_header)?;
    if let Some(p) = proxy_url {
        let mut proxy = reqwest::Proxy::all(p).map_err(ClientError::Proxy)?;
        if let Some(np) = no_proxy {
            proxy = proxy.no_proxy(reqwest::NoProxy::from_string(np));
        }
        if let Some(h) = connect_headers {
            proxy = proxy.headers(h);
        }
        b = b.proxy(proxy);
    } else if proxy_from_environment != Some(true) {
        b = b.no_proxy();
    } else if let Some(h) = connect_headers {
        // reqwest's own environment proxies take no extra headers: the
        // same variables Go's `http.ProxyFromEnvironment` reads, as proxies
        // that carry them.
        let env = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        for (url, https) in [
            (env(["HTTPS_PROXY", "https_proxy"]), true),
            (env(["HTTP_PROXY", "http_proxy"]), false),
        ] {
            let Some(url) = url else { continue };
            let proxy = if https {
                reqwest::Proxy::https(&url)
            } else {
                reqwest::Proxy::http(&url)
            };
            let proxy = proxy
                .map_err(ClientError::Proxy)?
                .no_proxy(reqwest::NoProxy::from_env())
                .headers(h.clone());
            b = b.proxy(proxy);
        }
    }
    if let Some(tls) = tls {
        if let Some(what) = tls.secret_ref() {
            return Err(ClientError::SecretRef { what });
        }
        // One rustls configuration for every TLS client Herald has, so
        // `server_name` and the version bounds hold here too.
        let tls = crate::tls::client_config(tls, std::path::Path::new(""), "tls_config")?;
        b = b.tls_backend_preconfigured(tls);
    }
    Ok(b)
}

impl Client {
    /// The client `cfg` describes; `timeout` bounds each request (the
    /// integration's own `timeout` key, where it has one).
    pub(crate) fn new(
        cfg: &HttpClientConfig,
        timeout: Option<Duration>,
    ) -> Result<Client, ClientError> {
        let mut b = transport(
            cfg.proxy_url.as_ref(),
            cfg.no_proxy.as_ref(),
            cfg.proxy_from_environment,
            cfg.proxy_connect_header.as_ref(),
            cfg.tls_config.as_ref(),
        )?;
        b = b.redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
        if let Some(t) = timeout.filter(|t| !t.is_zero()) {
            b = b.timeout(t);
        }
        let auth = auth(cfg)?;
        let mut headers = Vec::new();
        for (name, h) in &cfg.http_headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::Header(format!("invalid header name {name:?}")))?;
            let fixed = h.values.iter().map(String::as_str);
            for v in fixed.chain(h.secrets.iter().map(Secret::expose)) {
                let v = HeaderValue::from_str(v)
                    .map_err(|_| ClientError::Header(format!("invalid value of {name}")))?;
                headers.push((n.clone(), HeaderValueSource::Fixed(v)));
            }
            for f in &h.files {
                headers.push((n.clone(), HeaderValueSource::File(f.clone())));
            }
        }
        Ok(Client {
            client: b.build().map_err(ClientError::Build)?,
            auth,
            headers,
        })
    }

    /// A POST of a JSON body to `url`, with the `http_config` credentials
    /// and headers. It may wait for an OAuth2 token.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, NotifyError> {
        self.request(
            reqwest::Method::POST,
            url,
            Some(body),
            Some("application/json"),
        )
        .await
    }

    /// Any request with the `http_config` credentials and headers: the
    /// services that are not one POST (a token fetched with GET, an alert
    /// closed with PUT, a form-encoded or empty body) go through this.
    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, NotifyError> {
        let mut req = self.client.request(method, url);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        // Headers first: the credentials may not be overridden by them
        // (Authorization is reserved anyway).
        for (name, value) in &self.headers {
            let value = match value {
                HeaderValueSource::Fixed(v) => v.clone(),
                HeaderValueSource::File(f) => {
                    let text = tokio::fs::read_to_string(f).await.map_err(|e| {
                        NotifyError::new(
                            true,
                            FailureReason::Other,
                            format!("unable to read headers file {f}: {e}"),
                        )
                    })?;
                    HeaderValue::from_str(text.trim()).map_err(|_| {
                        NotifyError::new(
                            true,
                            FailureReason::Other,
                            format!("headers file {f}: not a valid header value"),
                        )
                    })?
                }
            };
            req = req.header(name.clone(), value);
        }
        self.authorize(req).await
    }

    /// Adds the credentials of `http_config` to a request.
    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, NotifyError> {
        Ok(match &self.auth {
            Auth::None => req,
            Auth::Basic { user, pass } => {
                let user = Credential::read_opt(user).await?.unwrap_or_default();
                req.basic_auth(user, Credential::read_opt(pass).await?)
            }
            Auth::Scheme { kind, credentials } => {
                let cred = Credential::read_opt(credentials).await?.unwrap_or_default();
                req.header(reqwest::header::AUTHORIZATION, format!("{kind} {cred}"))
            }
            Auth::OAuth2(source) => {
                let token = source.token().await?;
                req.header(
                    reqwest::header::AUTHORIZATION,
                    format!("{} {}", token.kind, token.access),
                )
            }
        })
    }
}

/// The credentials of `cfg`, checked in the order Go builds them, so the
/// first `*_ref` named is the one Go names.
fn auth(cfg: &HttpClientConfig) -> Result<Auth, ClientError> {
    let mut out = Auth::None;
    if let Some(a) = &cfg.authorization {
        let credentials = credential(
            a.credentials.as_ref().map(Secret::expose),
            a.credentials_file.as_ref(),
            a.credentials_ref.as_ref(),
            "credentials",
        )?;
        let kind = a
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .unwrap_or("Bearer");
        out = Auth::Scheme {
            kind: kind.to_string(),
            credentials,
        };
    }
    let bearer = credential(
        cfg.bearer_token.as_ref().map(Secret::expose),
        cfg.bearer_token_file.as_ref(),
        None,
        "bearer token",
    )?;
    if bearer.is_some() {
        out = Auth::Scheme {
            kind: "Bearer".into(),
            credentials: bearer,
        };
    }
    if let Some(ba) = &cfg.basic_auth {
        let user = credential(
            ba.username.as_deref(),
            ba.username_file.as_ref(),
            ba.username_ref.as_ref(),
            "username",
        )?;
        let pass = credential(
            ba.password.as_ref().map(Secret::expose),
            ba.password_file.as_ref(),
            ba.password_ref.as_ref(),
            "password",
        )?;
        out = Auth::Basic { user, pass };
    }
    if let Some(o) = &cfg.oauth2 {
        out = Auth::OAuth2(Arc::new(TokenSource::new(o)?));
    }
    Ok(out)
}

/// An OAuth2 access token and the scheme it is sent with.
#[derive(Clone, Debug)]
struct Token {
    access: String,
    kind: String,
    /// None: the server gave no lifetime, the token is used until the
    /// client secret changes.
    expiry: Option<Instant>,
}

/// golang.org/x/oauth2 treats a token as expired this long before its
/// expiry, so that it does not run out on the way.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);

/// Bounds one token request. Go sets none; a token endpoint that never
/// answers would otherwise hold up every notification of the integration.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(60);

impl Token {
    fn valid(&self, now: Instant) -> bool {
        self.expiry
            .is_none_or(|e| e.checked_sub(EXPIRY_DELTA).is_some_and(|e| e > now))
    }
}

type TokenFetch = Shared<BoxFuture<'static, Result<Token, Arc<str>>>>;

/// Where the token of a client stands: a fetch under way is shared, so
/// concurrent notifications wait for the same one.
enum TokenSlot {
    Empty,
    Ready(Token),
    Fetching(TokenFetch),
}

struct TokenState {
    /// The client secret the slot's token was fetched with; a rotated
    /// secret file drops the token, as Go rebuilds its token source.
    secret: Option<String>,
    slot: TokenSlot,
}

/// How the client authenticates to the token endpoint. Go's default
/// (`AuthStyleAutoDetect`) tries HTTP basic auth first, then the form
/// fields, and keeps what worked.
#[derive(Clone, Copy, PartialEq, Debug)]
enum AuthStyle {
    Unknown,
    Header,
    Params,
}

/// `proxy_connect_header`: sent to the proxy with every request through
/// it (the CONNECT of an HTTPS request included), as Go's transport does.
fn proxy_headers(
    h: Option<&BTreeMap<String, Vec<Secret>>>,
) -> Result<Option<reqwest::header::HeaderMap>, ClientError> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let mut map = reqwest::header::HeaderMap::new();
    for (name, values) in h {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ClientError::Header(format!("invalid proxy_connect_header name {name:?}"))
        })?;
        for v in values {
            let v = HeaderValue::from_str(v.expose()).map_err(|_| {
                ClientError::Header(format!("invalid value of proxy_connect_header {name}"))
            })?;
            map.append(n.clone(), v);
        }
    }
    Ok(Some(map))
}

/// What a token fetch needs, shared with the fetch futures.
struct TokenEndpoint {
    client: reqwest::Client,
    token_url: String,
    client_id: String,
    form: Vec<(String, String)>,
    style: std::sync::Mutex<AuthStyle>,
}

/// The client credentials grant of `oauth2`, with golang.org/x/oauth2's
/// caching: a token is reused until shortly before it expires, and one
/// fetch at a time runs per client.
pub(crate) struct TokenSource {
    secret: Option<Credential>,
    endpoint: Arc<TokenEndpoint>,
    state: std::sync::Mutex<TokenState>,
}

impl TokenSource {
    fn new(o: &OAuth2) -> Result<TokenSource, ClientError> {
        let secret = credential(
            o.client_secret.as_ref().map(Secret::expose),
            o.client_secret_file.as_ref(),
            o.client_secret_ref.as_ref(),
            "client secret",
        )?;
        let client = transport(
            o.proxy_url.as_ref(),
            o.no_proxy.as_ref(),
            o.proxy_from_environment,
            o.proxy_connect_header.as_ref(),
            o.tls_config.as_ref(),
        )?
        .timeout(TOKEN_TIMEOUT)
        .build()
        .map_err(ClientError::Build)?;
        // clientcredentials.Config.Token: the grant, the scopes, then the
        // endpoint parameters, which may replace only grant_type.
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if !o.scopes.is_empty() {
            form.push(("scope".into(), o.scopes.join(" ")));
        }
        for (k, v) in &o.endpoint_params {
            if k == "grant_type" {
                form[0].1 = v.clone();
            } else if k == "scope" && !o.scopes.is_empty() {
                // Go refuses this at the first fetch; the scopes win here.
                tracing::warn!("oauth2: endpoint_params.scope ignored: scopes is set");
            } else {
                form.push((k.clone(), v.clone()));
            }
        }
        Ok(TokenSource {
            secret,
            endpoint: Arc::new(TokenEndpoint {
                client,
                token_url: o.token_url.clone(),
                client_id: o.client_id.clone(),
                form,
                style: std::sync::Mutex::new(AuthStyle::Unknown),
            }),
            state: std::sync::Mutex::new(TokenState {
                secret: None,
                slot: TokenSlot::Empty,
            }),
        })
    }

    /// A valid token: the cached one, the one being fetched, or a new one.
    async fn token(&self) -> Result<Token, NotifyError> {
        let secret = match &self.secret {
            Some(c) => c.read_async().await.map_err(|e| {
                NotifyError::new(
                    true,
                    FailureReason::Other,
                    format!("unable to read oauth2 client secret: {e}"),
                )
            })?,
            None => String::new(),
        };
        let fetch = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.secret.as_deref() != Some(secret.as_str()) {
                st.secret = Some(secret.clone());
                st.slot = TokenSlot::Empty;
            }
            match &st.slot {
                TokenSlot::Ready(t) if t.valid(Instant::now()) => return Ok(t.clone()),
                TokenSlot::Fetching(f) => f.clone(),
                _ => {
                    let endpoint = self.endpoint.clone();
                    let f = async move { endpoint.fetch(&secret).await.map_err(Arc::from) }
                        .boxed()
                        .shared();
                    st.slot = TokenSlot::Fetching(f.clone());
                    f
                }
            }
        };
        let result = fetch.clone().await;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(&st.slot, TokenSlot::Fetching(f) if f.ptr_eq(&fetch)) {
            st.slot = match &result {
                Ok(t) => TokenSlot::Ready(t.clone()),
                Err(_) => TokenSlot::Empty,
            };
        }
        result.map_err(|e| NotifyError::new(true, FailureReason::Other, e.to_string()))
    }
}

impl TokenEndpoint {
    async fn fetch(&self, secret: &str) -> Result<Token, String> {
        let style = *self.style.lock().unwrap_or_else(|e| e.into_inner());
        match style {
            AuthStyle::Header | AuthStyle::Params => self.request(secret, style).await,
            AuthStyle::Unknown => {
                let (style, result) = match self.request(secret, AuthStyle::Header).await {
                    Ok(t) => (AuthStyle::Header, Ok(t)),
                    Err(_) => (
                        AuthStyle::Params,
                        self.request(secret, AuthStyle::Params).await,
                    ),
                };
                if result.is_ok() {
                    *self.style.lock().unwrap_or_else(|e| e.into_inner()) = style;
                }
                result
            }
        }
    }

    async fn request(&self, secret: &str, style: AuthStyle) -> Result<Token, String> {
        let mut form = self.form.clone();
        let mut req = self.client.post(&self.token_url);
        if style == AuthStyle::Header {
            req = req.basic_auth(query_escape(&self.client_id), Some(query_escape(secret)));
        } else {
            if !self.client_id.is_empty() {
                form.push(("client_id".into(), self.client_id.clone()));
            }
            if !secret.is_empty() {
                form.push(("client_secret".into(), secret.to_string()));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = req
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("oauth2: cannot fetch token: {}", e.without_url()))?;
        let status = resp.status();
        let form_encoded = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                matches!(v.trim(), "application/x-www-form-urlencoded" | "text/plain")
            });
        let text = resp
            .text()
            .await
            .map_err(|e| format!("oauth2: cannot fetch token: {}", e.without_url()))?;
        if !status.is_success() {
            return Err(format!(
                "oauth2: cannot fetch token: {status}\nResponse: {}",
                text.chars().take(1024).collect::<String>()
            ));
        }
        parse_token(&text, form_encoded, Instant::now())
    }
}

/// A token endpoint's answer: JSON (RFC 6749), or form-encoded as some
/// old servers send it.
fn parse_token(text: &str, form_encoded: bool, now: Instant) -> Result<Token, String> {
    let (access, kind, expires_in) = if form_encoded {
        let mut access = String::new();
        let mut kind = String::new();
        let mut expires = None;
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            match k.as_ref() {
                "access_token" => access = v.into_owned(),
                "token_type" => kind = v.into_owned(),
                "expires_in" => expires = v.parse::<i64>().ok(),
                _ => {}
            }
        }
        (access, kind, expires)
    } else {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("oauth2: cannot parse json: {e}"))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let expires = v.get("expires_in").and_then(|x| {
            x.as_i64()
                .or_else(|| x.as_f64().map(|f| f as i64))
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        });
        (s("access_token"), s("token_type"), expires)
    };
    if access.is_empty() {
        return Err("oauth2: server response missing access_token".into());
    }
    // Token.Type: the scheme as the server named it, in its usual spelling.
    let kind = match kind.to_ascii_lowercase().as_str() {
        "" | "bearer" => "Bearer".to_string(),
        "mac" => "MAC".to_string(),
        "basic" => "Basic".to_string(),
        _ => kind,
    };
    let expiry = expires_in
        .filter(|s| *s != 0)
        .map(|s| now + Duration::from_secs(s.max(0).unsigned_abs()));
    Ok(Token {
        access,
        kind,
        expiry,
    })
}

/// Go's `url.Values.Encode`: the pairs sorted by key (a key's values in
/// their order), each escaped as `url.QueryEscape` does, for the services
/// that take their parameters in a query string or a form.
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = pairs.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.QueryEscape`: what golang.org/x/oauth2 escapes the client id
/// and secret with before basic auth, and the form encoding of the body.
pub(crate) fn query_escape(s: &str) -> String {
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

/// Sends a notifier's request inside an HTTP client span, with the trace
/// context in `traceparent` so the receiver can join the trace (Go wraps
/// every notifier's transport in otelhttp for this).
pub(crate) async fn send(
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    if !crate::otel::enabled() {
        return req.send().await;
    }
    // Built first so the span is named for the request's own method
    // (Opsgenie's PUTs, Jira's GETs), as otelhttp names it.
    let (client, built) = req.build_split();
    let mut request = built?;
    let method = request.method().as_str().to_string();
    let span = crate::otel::start_named(
        "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        format!("HTTP {method}"),
        opentelemetry::trace::SpanKind::Client,
        &opentelemetry::Context::current(),
        || {
            vec![opentelemetry::KeyValue::new(
                "http.request.method",
                method.clone(),
            )]
        },
    );
    for (k, v) in crate::otel::inject(span.context()) {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(&v),
        ) {
            request.headers_mut().insert(k, v);
        }
    }
    let result = client.execute(request).await;
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
/// `rateLimited` for 429, ...). A 429 or 503 with `Retry-After` is
/// retried, no sooner than it asks, whatever the integration: Herald's
/// rule, where Alertmanager drops the notification on most integrations'
/// 429.
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
        // A service that says when to come back is asking to be retried,
        // whatever the integration's own codes (Go gives up on a 429 in
        // most integrations, dropping the notification).
        e.retryable |= e.retry_after.is_some();
    }
    Err(e)
}

/// `check_status` with the answer's body in the error, as Go's Retrier
/// puts it there (`unexpected status code 400: <body>`) for the
/// integrations that read no body of their own. Cut at 1024 characters so a
/// service's HTML error page does not flood the log.
pub(crate) async fn check_status_with_body(
    resp: reqwest::Response,
    retry_codes: &[u16],
) -> Result<(), NotifyError> {
    let Err(mut e) = check_status(&resp, retry_codes) else {
        return Ok(());
    };
    let body = resp.bytes().await.unwrap_or_default();
    let details: String = String::from_utf8_lossy(&body).chars().take(1024).collect();
    if !details.is_empty() {
        e.message = format!("{}: {details}", e.message);
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

/// Go's `TruncateInBytes`: at most `n` bytes, cut on a character
/// boundary, the last three bytes an ellipsis when something was cut.
pub fn truncate_bytes(s: String, n: usize) -> (String, bool) {
    if s.len() <= n {
        return (s, false);
    }
    if n <= 3 {
        return (if n == 3 { "…".into() } else { ".".repeat(n) }, true);
    }
    let mut end = n - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &s[..end]), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_truncated_in_runes() {
        assert_eq!(truncate_runes("abc".into(), 5), ("abc".into(), false));
        assert_eq!(truncate_runes("äöüäöü".into(), 4), ("äöü…".into(), true));
        assert_eq!(truncate_runes("abcdef".into(), 2), ("ab".into(), true));
        assert_eq!(truncate_bytes("abc".into(), 3), ("abc".into(), false));
        assert_eq!(truncate_bytes("abcdefgh".into(), 7), ("abcd…".into(), true));
        // Never half a character: "ä" is two bytes.
        assert_eq!(truncate_bytes("aäää".into(), 5), ("a…".into(), true));
        assert_eq!(truncate_bytes("abcd".into(), 3), ("…".into(), true));
        assert_eq!(truncate_bytes("abcd".into(), 2), ("..".into(), true));
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
        // A 429 with Retry-After is retried by every integration; without
        // it, only by those that list 429.
        let e = check_status(&answer(429, Some("3")), &[]).unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.reason, FailureReason::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        assert!(!check_status(&answer(429, None), &[]).unwrap_err().retryable);
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

    #[tokio::test]
    async fn a_failed_answer_s_body_is_in_the_error() {
        let resp = |code: u16, body: String| {
            reqwest::Response::from(
                axum::http::Response::builder()
                    .status(code)
                    .body(body)
                    .unwrap(),
            )
        };
        assert!(check_status_with_body(resp(200, "1".into()), &[])
            .await
            .is_ok());
        let e = check_status_with_body(resp(400, "Text is required.".into()), &[])
            .await
            .unwrap_err();
        assert_eq!(e.message, "unexpected status code 400: Text is required.");
        assert!(!e.retryable);
        let e = check_status_with_body(resp(502, String::new()), &[])
            .await
            .unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.retryable),
            ("unexpected status code 502", true)
        );
        let e = check_status_with_body(resp(500, "é".repeat(2000)), &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.message.chars().count(),
            "unexpected status code 500: ".len() + 1024
        );
    }

    #[test]
    fn token_answers_parse_like_golang_oauth2() {
        let now = Instant::now();
        let t = parse_token(
            r#"{"access_token":"a","token_type":"bearer","expires_in":"60"}"#,
            false,
            now,
        )
        .unwrap();
        assert_eq!((t.access.as_str(), t.kind.as_str()), ("a", "Bearer"));
        assert!(t.valid(now) && !t.valid(now + Duration::from_secs(51)));
        // Inside the 10 s margin a token is already expired.
        let t = parse_token(r#"{"access_token":"a","expires_in":10}"#, false, now).unwrap();
        assert!(!t.valid(now));
        let t = parse_token("access_token=b&token_type=mac", true, now).unwrap();
        assert_eq!(
            (t.access.as_str(), t.kind.as_str(), t.expiry),
            ("b", "MAC", None)
        );
        assert!(parse_token(r#"{"token_type":"bearer"}"#, false, now).is_err());
        assert_eq!(query_escape("a b/c~*"), "a+b%2Fc~%2A");
        assert_eq!(
            encode_query(&[("token", "t&1"), ("a", "2"), ("b", "x"), ("a", "1")]),
            "a=2&a=1&b=x&token=t%261"
        );
    }

    #[test]
    fn secret_refs_are_refused_with_go_words() {
        let cfg: HttpClientConfig =
            serde_saphyr::from_str("basic_auth: {username: u, password_ref: p}").unwrap();
        assert!(cfg.validate().is_ok());
        let e = Client::new(&cfg, None).err().unwrap();
        assert_eq!(
            e.to_string(),
            "unable to use password: cannot use secret ref without manager"
        );
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
