//! `--web.config.file`: the Prometheus exporter-toolkit's web configuration
//! that Alertmanager serves its API and UI with — TLS with optional client
//! certificates, basic auth with bcrypt hashes, and extra response headers.
//! The same file works for both programs; what Herald cannot honour is
//! refused at startup with a reason, never silently weakened. Like
//! exporter-toolkit, Herald picks up changes to the file and to the
//! certificates it names while running (certificate rotation, new
//! passwords): see `LiveWebConfig`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use crate::commoncfg::Secret;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> WebConfigError {
    WebConfigError::Invalid(m.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default, deserialize_with = "crate::commoncfg::null_default")]
    basic_auth_users: BTreeMap<String, Secret>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

/// exporter-toolkit's `rate_limit`: a token bucket of `burst` requests,
/// refilled by one every `interval`; no limit while `interval` is zero.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    #[serde(default)]
    burst: i64,
    #[serde(default)]
    interval: Option<GoDuration>,
}

/// A Go `time.Duration` as yaml.v2 reads it: a duration string or an
/// integer number of nanoseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum GoDuration {
    Nanos(i64),
    Text(String),
}

/// exporter-toolkit's `tls_server_config`, as the web config and the
/// cluster's `--cluster.tls-config` file both write it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<Secret>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default, deserialize_with = "crate::commoncfg::null_default")]
    headers: BTreeMap<String, String>,
}

/// The loaded web configuration.
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit` as (burst, interval); None when off.
    pub rate_limit: Option<(u64, Duration)>,
    /// The certificate, key and CA files it was built from.
    files: Vec<PathBuf>,
}

/// The response headers exporter-toolkit lets a web config set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

impl WebConfig {
    /// Reads and checks the file; relative paths in it are relative to the
    /// file's directory, as in exporter-toolkit.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig {
                tls_server_config: None,
                http_server_config: None,
                basic_auth_users: BTreeMap::new(),
                rate_limit: None,
            }
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        };
        let rate_limit = match raw
            .rate_limit
            .and_then(|r| r.interval.map(|i| (r.burst, i)))
        {
            None => None,
            Some((burst, interval)) => {
                let (negative, interval) = match interval {
                    GoDuration::Nanos(n) => (n < 0, Duration::from_nanos(n.unsigned_abs())),
                    GoDuration::Text(t) => {
                        let (neg, t) = match t.trim().strip_prefix('-') {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, t),
                        };
                        let d = crate::duration::parse_go_duration(&t)
                            .map_err(|e| invalid(format!("rate_limit.interval: {e}")))?;
                        (neg, d)
                    }
                };
                // rate.Every of a non-positive interval is no limit at
                // all; zero turns the limiter off.
                if negative || interval.is_zero() {
                    None
                } else {
                    Some((u64::try_from(burst).unwrap_or(0), interval))
                }
            }
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        let files: Vec<PathBuf> = raw
            .tls_server_config
            .iter()
            .flat_map(|t| [&t.cert_file, &t.key_file, &t.client_ca_file])
            .flatten()
            .map(|f| dir.join(f))
            .collect();
        let tls = match raw.tls_server_config {
            Some(t) => {
                let mut cfg = server_tls_config(t, dir)?;
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(cfg))
            }
            None => None,
        };
        let mut headers = Vec::new();
        if let Some(h) = raw.http_server_config {
            if h.http2 == Some(true) {
                tracing::info!("http_server_config.http2: Herald serves HTTP/1.1 only");
            }
            for (k, v) in h.headers {
                let Some(name) = ALLOWED_HEADERS.iter().find(|a| a.eq_ignore_ascii_case(&k)) else {
                    return Err(invalid(format!(
                        "http_server_config.headers: {k:?} is not one of the allowed headers ({})",
                        ALLOWED_HEADERS.join(", ")
                    )));
                };
                let value = HeaderValue::from_str(&v).map_err(|_| {
                    invalid(format!("http_server_config.headers.{k}: invalid value"))
                })?;
                headers.push((HeaderName::from_static(lower(name)), value));
            }
        }
        let auth = if raw.basic_auth_users.is_empty() {
            None
        } else {
            let mut users = HashMap::new();
            for (user, hash) in raw.basic_auth_users {
                let h = hash.expose();
                // Checked now so a typo fails at startup, not at each login.
                if bcrypt::verify("", h).is_err() {
                    return Err(invalid(format!(
                        "basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':'`)"
                    )));
                }
                users.insert(user, h.to_string());
            }
            Some(Arc::new(BasicAuth {
                users,
                verified: Mutex::new(HashMap::new()),
            }))
        };
        Ok(WebConfig {
            tls,
            auth,
            headers,
            rate_limit,
            files,
        })
    }
}

/// How often the web config's files are checked for changes.
const RECHECK: Duration = Duration::from_secs(1);

/// The web configuration as it is now. exporter-toolkit reads the file on
/// every handshake and request, so operators rotate certificates and
/// change passwords without a restart; Herald checks the file and the
/// certificates it names (modification time and size) at most once a
/// second and reloads when they changed. A file that no longer loads is
/// logged and the last good configuration stays, rather than every request
/// failing. Whether TLS is on is fixed at startup, as the listener is.
pub struct LiveWebConfig {
    path: PathBuf,
    state: Mutex<LiveState>,
}

struct LiveState {
    config: Arc<WebConfig>,
    stamp: Vec<Option<(std::time::SystemTime, u64)>>,
    checked: std::time::Instant,
}

fn stamp(path: &Path, files: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    std::iter::once(path)
        .chain(files.iter().map(PathBuf::as_path))
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

impl LiveWebConfig {
    pub fn load(path: &Path) -> Result<Arc<LiveWebConfig>, WebConfigError> {
        let config = WebConfig::load(path)?;
        Ok(Arc::new(LiveWebConfig {
            path: path.to_path_buf(),
            state: Mutex::new(LiveState {
                stamp: stamp(path, &config.files),
                config: Arc::new(config),
                checked: std::time::Instant::now(),
            }),
        }))
    }

    /// The configuration to apply to this request or connection.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.elapsed() < RECHECK {
            return st.config.clone();
        }
        st.checked = std::time::Instant::now();
        let now = stamp(&self.path, &st.config.files);
        if now == st.stamp {
            return st.config.clone();
        }
        st.stamp = now;
        match WebConfig::load(&self.path) {
            Ok(c) if c.tls.is_some() != st.config.tls.is_some() => {
                tracing::error!(file = %self.path.display(), "web config changed whether TLS is on: that needs a restart; keeping the running configuration");
            }
            Ok(c) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                // The new config may name other certificate files.
                st.stamp = stamp(&self.path, &c.files);
                st.config = Arc::new(c);
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), err = %e, "web config no longer loads; keeping the running configuration");
            }
        }
        st.config.clone()
    }
}

fn lower(name: &'static str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

fn read_pem(
    inline: Option<&str>,
    file: Option<&String>,
    dir: &Path,
    what: &str,
) -> Result<Option<Vec<u8>>, WebConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "tls_server_config: at most one of {what} and {what}_file must be configured"
        ))),
        (Some(pem), None) => Ok(Some(pem.as_bytes().to_vec())),
        (None, Some(f)) => {
            let p: PathBuf = dir.join(f);
            std::fs::read(&p)
                .map(Some)
                .map_err(|source| WebConfigError::Io {
                    path: p.display().to_string(),
                    source,
                })
        }
        (None, None) => Ok(None),
    }
}

/// Builds a rustls server configuration from `tls_server_config`; relative
/// file names are relative to `dir`, the directory of the file naming them.
pub(crate) fn server_tls_config(
    t: RawTls,
    dir: &Path,
) -> Result<rustls::ServerConfig, WebConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = read_pem(t.cert.as_deref(), t.cert_file.as_ref(), dir, "cert")?
        .ok_or_else(|| invalid("tls_server_config: missing cert_file"))?;
    let key = read_pem(
        t.key.as_ref().map(|k| k.expose()),
        t.key_file.as_ref(),
        dir,
        "key",
    )?
    .ok_or_else(|| invalid("tls_server_config: missing key_file"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("tls_server_config: certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("tls_server_config: no certificate in cert_file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| invalid(format!("tls_server_config: private key: {e}")))?;
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(invalid(
            "tls_server_config.client_allowed_sans is not supported by Herald",
        ));
    }
    for (set, what) in [
        (
            t.cipher_suites.as_ref().is_some_and(|v| !v.is_empty()),
            "cipher_suites",
        ),
        (
            t.curve_preferences.as_ref().is_some_and(|v| !v.is_empty()),
            "curve_preferences",
        ),
        (
            t.prefer_server_cipher_suites.is_some(),
            "prefer_server_cipher_suites",
        ),
    ] {
        if set {
            tracing::warn!(setting = what, "tls_server_config setting ignored: Herald's TLS library offers only modern cipher suites and curves");
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions = tls_versions(
        "tls_server_config",
        t.min_version.as_deref(),
        t.max_version.as_deref(),
    )?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(format!("tls_server_config: {e}")))?;
    let client_auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let ca = read_pem(
        t.client_ca.as_deref(),
        t.client_ca_file.as_ref(),
        dir,
        "client_ca",
    )?;
    let builder = match (client_auth, ca) {
        ("NoClientCert", None) => builder.with_no_client_auth(),
        ("NoClientCert", Some(_)) => {
            return Err(invalid(
                "tls_server_config: client CA's have been configured without a client_auth_type",
            ))
        }
        ("VerifyClientCertIfGiven" | "RequireAndVerifyClientCert", ca) => {
            let ca = ca.ok_or_else(|| {
                invalid(format!(
                    "tls_server_config: client_auth_type {client_auth} needs client_ca_file"
                ))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca) {
                let c = c.map_err(|e| invalid(format!("tls_server_config: client CA: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| invalid(format!("tls_server_config: client CA: {e}")))?;
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            if client_auth == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            let verifier = v
                .build()
                .map_err(|e| invalid(format!("tls_server_config: client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        ("RequestClientCert" | "RequireAnyClientCert", _) => {
            return Err(invalid(format!(
                "tls_server_config.client_auth_type {client_auth} (a certificate nobody verifies) is not supported by Herald: use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )))
        }
        (other, _) => {
            return Err(invalid(format!(
                "tls_server_config: invalid client_auth_type {other:?}"
            )))
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| invalid(format!("tls_server_config: {e}")))
}

/// The protocol versions between `min_version` and `max_version` of the
/// `section` (`tls_server_config`, `tls_client_config`).
pub(crate) fn tls_versions(
    section: &str,
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    let rank = |v: &str| match v {
        "TLS10" | "TLS11" | "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(invalid(format!("{section}: unknown TLS version {other:?}"))),
    };
    let lo = min.map(rank).transpose()?.unwrap_or(12);
    let hi = max.map(rank).transpose()?.unwrap_or(13);
    if matches!(min, Some("TLS10" | "TLS11")) {
        tracing::warn!(
            section,
            "min_version below TLS12: Herald speaks TLS 1.2 and 1.3 only"
        );
    }
    if lo > hi {
        return Err(invalid(format!(
            "{section}: min_version is above max_version"
        )));
    }
    let mut out = Vec::new();
    if lo <= 12 {
        out.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// Basic-auth users with bcrypt hashes. bcrypt is slow on purpose, so a
/// verified (user, password) pair is remembered by its SHA-256 and later
/// requests with it cost a hash lookup, as exporter-toolkit caches too.
pub struct BasicAuth {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<[u8; 32], ()>>,
}

/// Bound on remembered logins: enough for every real client, small enough
/// that guessing passwords cannot grow it without limit (only successes go
/// in).
const MAX_VERIFIED: usize = 1024;

/// A bcrypt hash compared against when the user is unknown, so that
/// unknown users take as long as wrong passwords.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("herald", bcrypt::DEFAULT_COST).unwrap_or_default())
}

impl BasicAuth {
    async fn check(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, pass)) = authorization
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        else {
            return false;
        };
        let key: [u8; 32] = Sha256::digest(format!("{user}\0{pass}").as_bytes()).into();
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&key)
        {
            return true;
        }
        let hash = self.users.get(&user).cloned();
        let ok = tokio::task::spawn_blocking(move || {
            let known = hash.is_some();
            let h = hash.unwrap_or_else(|| dummy_hash().to_string());
            bcrypt::verify(&pass, &h).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if v.len() >= MAX_VERIFIED {
                v.clear();
            }
            v.insert(key, ());
        }
        ok
    }
}

/// `rate_limit`'s token bucket (golang.org/x/time/rate's `Limiter`): it
/// starts full with `burst` tokens, gains one per `interval` up to
/// `burst`, and each request takes one.
struct RateLimiter {
    burst: f64,
    interval: Duration,
    state: Mutex<(f64, std::time::Instant)>,
}

impl RateLimiter {
    fn new(burst: u64, interval: Duration) -> RateLimiter {
        RateLimiter {
            burst: burst as f64,
            interval,
            state: Mutex::new((burst as f64, std::time::Instant::now())),
        }
    }

    fn allow(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let gained = now.duration_since(st.1).as_secs_f64() / self.interval.as_secs_f64();
        st.0 = (st.0 + gained).min(self.burst);
        st.1 = now;
        if st.0 >= 1.0 {
            st.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Wraps the API: the rate limit first, then basic auth, then the
/// configured headers on every answer (401s included), as the web config
/// says now. The rate limit is the one the file had at startup:
/// exporter-toolkit builds its limiter once too.
pub fn layer(router: axum::Router, web: Arc<LiveWebConfig>) -> axum::Router {
    let limiter = web.current().rate_limit.map(|(burst, interval)| {
        tracing::info!(burst, interval = ?interval, "Rate Limiter is enabled.");
        Arc::new(RateLimiter::new(burst, interval))
    });
    router.layer(axum::middleware::from_fn(
        move |req: Request<Body>, next: axum::middleware::Next| {
            let config = web.current();
            let limiter = limiter.clone();
            async move {
                if limiter.is_some_and(|l| !l.allow()) {
                    // Go's http.Error: the status text, as plain text.
                    let mut r = Response::new(Body::from("Too Many Requests\n"));
                    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    r.headers_mut().insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    return r;
                }
                let (auth, headers) = (&config.auth, &config.headers);
                let allowed = match auth {
                    Some(a) => a.check(req.headers().get(header::AUTHORIZATION)).await,
                    None => true,
                };
                let mut resp = if allowed {
                    next.run(req).await
                } else {
                    let mut r = Response::new(Body::from("Unauthorized\n"));
                    *r.status_mut() = StatusCode::UNAUTHORIZED;
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                    r
                };
                for (k, v) in headers.iter() {
                    resp.headers_mut().insert(k.clone(), v.clone());
                }
                resp
            }
        },
    ))
}

/// A TLS listener for `axum::serve`: TCP connections are accepted and
/// their handshakes run concurrently (a slow client cannot hold up the
/// others); only finished handshakes are handed to the server.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Each connection is served with the TLS settings of the web config
    /// as they are when it arrives.
    pub fn new(
        tcp: TcpListener,
        web: Arc<LiveWebConfig>,
        shutdown: CancellationToken,
        tasks: &crate::tasks::Tasks,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let handshakes = tasks.clone();
        tasks.spawn("TLS listener", async move {
            loop {
                let (stream, addr) = tokio::select! {
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::debug!(err = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = shutdown.cancelled() => break,
                };
                let Some(config) = web.current().tls.clone() else {
                    continue;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let tx = tx.clone();
                handshakes.spawn("TLS handshake", async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(remote = %addr, err = %e, "TLS handshake error")
                        }
                        Err(_) => tracing::debug!(remote = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor stopped (shutdown): wait for the server to end.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod rate_limit_tests {
    use super::*;

    #[test]
    fn bucket_starts_full_and_refills_one_per_interval() {
        let l = RateLimiter::new(2, Duration::from_millis(100));
        assert!(l.allow() && l.allow());
        assert!(!l.allow());
        // Pretend the last refill was an interval ago.
        l.state.lock().unwrap().1 -= Duration::from_millis(100);
        assert!(l.allow());
        assert!(!l.allow());
        let none = RateLimiter::new(0, Duration::from_secs(1));
        assert!(!none.allow());
    }
}
