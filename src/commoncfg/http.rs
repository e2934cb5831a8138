//! `http_config`, the HTTP client settings shared by every HTTP integration
//! (prometheus/common `HTTPClientConfig`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{null_default, yes, Secret};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<Secret>>>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub http_headers: BTreeMap<String, Header>,
}

/// One entry of `http_headers`: every value, secret and file content is
/// added as a value of the header, files read at each request.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Header {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<Secret>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<String>,
}

/// The grant type of RFC 7523, which Herald does not speak.
const GRANT_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `oauth2`: prometheus/common's OAuth2 client settings. Herald fetches
/// tokens with the client credentials grant; the jwt-bearer keys parse, so
/// a config is refused by name rather than as unknown keys.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_key_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_url: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<Secret>>>,
}

impl OAuth2 {
    pub fn is_jwt_bearer(&self) -> bool {
        self.grant_type.as_deref() == Some(GRANT_TYPE_JWT_BEARER)
    }
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: None,
            proxy_connect_header: None,
            follow_redirects: true,
            enable_http2: true,
            http_headers: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ref: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

/// How many of the values are set, as Go's `nonZeroCount`: an empty
/// string counts as unset, as Go's zero value does.
/// Go's "at most one of ... must be configured" checks: `message` when
/// more than one of `values` is set.
fn at_most_one(values: &[Option<&str>], message: &str) -> Result<(), String> {
    if set_count(values) > 1 {
        return Err(message.into());
    }
    Ok(())
}

fn set_count(values: &[Option<&str>]) -> usize {
    values
        .iter()
        .filter(|v| v.is_some_and(|s| !s.is_empty()))
        .count()
}

fn secret(s: &Option<Secret>) -> Option<&str> {
    s.as_ref().map(Secret::expose)
}

/// prometheus/common's `ProxyConfig.Validate`, shared by `http_config` and
/// its `oauth2`.
fn validate_proxy(
    proxy_url: Option<&str>,
    no_proxy: Option<&str>,
    from_env: Option<bool>,
    connect_header: Option<&BTreeMap<String, Vec<Secret>>>,
) -> Result<(), String> {
    let proxy_url = proxy_url.is_some_and(|u| !u.is_empty());
    let no_proxy = no_proxy.is_some_and(|n| !n.is_empty());
    let from_env = from_env == Some(true);
    if connect_header.is_some_and(|h| !h.is_empty()) && !from_env && !proxy_url {
        return Err("if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured".into());
    }
    if from_env && proxy_url {
        return Err(
            "if proxy_from_environment is configured, proxy_url must not be configured".into(),
        );
    }
    if from_env && no_proxy {
        return Err(
            "if proxy_from_environment is configured, no_proxy must not be configured".into(),
        );
    }
    if no_proxy && !proxy_url {
        return Err("if no_proxy is configured, proxy_url must also be configured".into());
    }
    Ok(())
}

/// The request headers prometheus/common sets itself or that change the
/// connection (`config/headers.go ReservedHeaders`), in canonical form.
const RESERVED_HEADERS: [&str; 18] = [
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// Go's `http.CanonicalHeaderKey` (and `textproto.CanonicalMIMEHeaderKey`,
/// which e-mail headers go through): each dash-separated word capitalised;
/// a name with a byte that cannot be in a header name is left as it is.
pub fn canonical_header_key(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl TlsConfig {
    /// The first secret given only as a `*_ref` key, by Go's name for it:
    /// Alertmanager has no secret manager, so it refuses these when it
    /// builds a client ("unable to use CA cert: cannot use secret ref
    /// without manager"), and so does Herald.
    pub fn secret_ref(&self) -> Option<&'static str> {
        let only_ref = |inline: Option<&str>, file: Option<&str>, r: Option<&str>| {
            set_count(&[inline, file]) == 0 && set_count(&[r]) > 0
        };
        if only_ref(
            self.ca.as_deref(),
            self.ca_file.as_deref(),
            self.ca_ref.as_deref(),
        ) {
            Some("CA cert")
        } else if only_ref(
            self.cert.as_deref(),
            self.cert_file.as_deref(),
            self.cert_ref.as_deref(),
        ) {
            Some("client cert")
        } else if only_ref(
            secret(&self.key),
            self.key_file.as_deref(),
            self.key_ref.as_deref(),
        ) {
            Some("client key")
        } else {
            None
        }
    }

    /// prometheus/common's `TLSConfig.Validate`.
    pub fn validate(&self) -> Result<(), String> {
        let ca = [
            self.ca.as_deref(),
            self.ca_file.as_deref(),
            self.ca_ref.as_deref(),
        ];
        at_most_one(
            &ca,
            "at most one of ca, ca_file & ca_ref must be configured",
        )?;
        let cert = [
            self.cert.as_deref(),
            self.cert_file.as_deref(),
            self.cert_ref.as_deref(),
        ];
        at_most_one(
            &cert,
            "at most one of cert, cert_file & cert_ref must be configured",
        )?;
        let key = [
            secret(&self.key),
            self.key_file.as_deref(),
            self.key_ref.as_deref(),
        ];
        at_most_one(&key, "at most one of key and key_file must be configured")?;
        match (set_count(&cert) > 0, set_count(&key) > 0) {
            (true, false) => Err("exactly one of key or key_file must be configured when a client certificate is configured".into()),
            (false, true) => Err("exactly one of cert or cert_file must be configured when a client key is configured".into()),
            _ => {
                for v in [&self.min_version, &self.max_version].into_iter().flatten() {
                    if !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
                        return Err(format!("unknown TLS version: {v}"));
                    }
                }
                Ok(())
            }
        }
    }
}

impl HttpClientConfig {
    /// prometheus/common's `HTTPClientConfig.Validate` (and the checks Go
    /// runs while parsing its parts), so the same configs are refused with
    /// the same reasons. `*_ref` keys pass: like Alertmanager, Herald
    /// refuses them when it builds the client.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(o) = &self.oauth2 {
            if let Some(t) = &o.tls_config {
                t.validate()?;
            }
            validate_proxy(
                o.proxy_url.as_deref(),
                o.no_proxy.as_deref(),
                o.proxy_from_environment,
                o.proxy_connect_header.as_ref(),
            )?;
        }
        if let Some(t) = &self.tls_config {
            t.validate()?;
        }
        let bearer = set_count(&[
            secret(&self.bearer_token),
            self.bearer_token_file.as_deref(),
        ]);
        if bearer > 1 {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && bearer > 0 {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth {
            let user = [
                b.username.as_deref(),
                b.username_file.as_deref(),
                b.username_ref.as_deref(),
            ];
            at_most_one(&user, "at most one of basic_auth username, username_file & username_ref must be configured")?;
            let pass = [
                secret(&b.password),
                b.password_file.as_deref(),
                b.password_ref.as_deref(),
            ];
            at_most_one(&pass, "at most one of basic_auth password, password_file & password_ref must be configured")?;
        }
        if let Some(a) = &self.authorization {
            if bearer > 0 {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            let cred = [
                secret(&a.credentials),
                a.credentials_file.as_deref(),
                a.credentials_ref.as_deref(),
            ];
            at_most_one(
                &cred,
                "at most one of authorization credentials & credentials_file must be configured",
            )?;
            if a.kind
                .as_deref()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("basic"))
            {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
            if o.is_jwt_bearer() {
                let key = [
                    secret(&o.client_certificate_key),
                    o.client_certificate_key_file.as_deref(),
                    o.client_certificate_key_ref.as_deref(),
                ];
                at_most_one(&key, "at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer")?;
                if o.signature_algorithm
                    .as_deref()
                    .is_some_and(|a| !a.is_empty() && !matches!(a, "RS256" | "RS384" | "RS512"))
                {
                    return Err("valid signature algorithms are RS256, RS384 and RS512".into());
                }
                // Signing JWTs needs an RSA implementation Herald does not
                // carry; refused at load rather than failing every send.
                return Err(format!(
                    "oauth2 grant_type {GRANT_TYPE_JWT_BEARER} is not supported by Herald (only client_credentials is)"
                ));
            } else {
                let sec = [
                    secret(&o.client_secret),
                    o.client_secret_file.as_deref(),
                    o.client_secret_ref.as_deref(),
                ];
                at_most_one(&sec, "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials")?;
            }
        }
        validate_proxy(
            self.proxy_url.as_deref(),
            self.no_proxy.as_deref(),
            self.proxy_from_environment,
            self.proxy_connect_header.as_ref(),
        )?;
        for name in self.http_headers.keys() {
            let canonical = canonical_header_key(name);
            if RESERVED_HEADERS.contains(&canonical.as_str()) {
                return Err(format!("setting header {canonical:?} is not allowed"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_as_in_go() {
        assert_eq!(canonical_header_key("x-scope-orgid"), "X-Scope-Orgid");
        assert_eq!(canonical_header_key("WWW-AUTHENTICATE"), "Www-Authenticate");
        assert_eq!(canonical_header_key("content type"), "content type");
        let cfg: HttpClientConfig =
            serde_saphyr::from_str("http_headers: {www-authenticate: {values: [x]}}").unwrap();
        assert_eq!(
            cfg.validate().unwrap_err(),
            r#"setting header "Www-Authenticate" is not allowed"#
        );
    }
}
