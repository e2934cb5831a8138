//! The e-mail integration (`notify/email`): renders the headers and the
//! text and HTML parts from templates and delivers one message per flush
//! over SMTP (lettre), with STARTTLS or implicit TLS and PLAIN/LOGIN auth.
//!
//! As in Alertmanager, a template or address error fails the flush at once
//! (retrying cannot fix it) while connection and SMTP errors are retried.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, Identity, TlsParameters, TlsVersion,
};
use lettre::transport::smtp::extension::ClientId;

mod config;

mod cram;

pub use config::{
    canonical_header_key, AddressList, EmailConfig, HostPort, ThreadingConfig,
    DEFAULT_EMAIL_SUBJECT,
};

use super::registry::BuildError;
use super::{FailureReason, Notifier, NotifyCtx, NotifyError};
use crate::commoncfg::TlsConfig;
use crate::model::Alert;
use crate::template::{Templates, Value};

/// How long one SMTP command may take (lettre's default is 60s; the flush
/// deadline bounds the whole attempt anyway).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Email {
    conf: EmailConfig,
    smarthost: HostPort,
    templates: Arc<Templates>,
    external_url: String,
}

fn fatal(message: String) -> NotifyError {
    NotifyError::new(false, FailureReason::Other, message)
}

fn retryable(message: String) -> NotifyError {
    NotifyError::new(true, FailureReason::Other, message)
}

impl Email {
    fn new(
        conf: &EmailConfig,
        templates: Arc<Templates>,
        external_url: &str,
    ) -> Result<Email, BuildError> {
        let mut conf = conf.clone();
        let smarthost = conf
            .smarthost
            .clone()
            .ok_or(BuildError::Missing("email config without smarthost"))?;
        // Alertmanager fills these three headers from the fields when the
        // user did not set them.
        conf.headers
            .entry("Subject".into())
            .or_insert_with(|| DEFAULT_EMAIL_SUBJECT.into());
        let to = conf.to.as_ref().map(|t| t.0.clone()).unwrap_or_default();
        conf.headers.entry("To".into()).or_insert(to);
        let from = conf.from.clone().unwrap_or_default();
        conf.headers.entry("From".into()).or_insert(from);
        // Fail at load, not at the first alert, on unreadable TLS files.
        tls_parameters(conf.tls_config.as_ref(), &smarthost.host).map_err(BuildError::Tls)?;
        Ok(Email {
            conf,
            smarthost,
            templates,
            external_url: external_url.to_string(),
        })
    }

    /// One SMTP session, as Alertmanager runs it: connect (implicit TLS,
    /// STARTTLS or plain), authenticate only when the server offers AUTH
    /// (a relay without AUTH gets the mail unauthenticated even with
    /// `auth_username` set, as in Alertmanager), send, quit.
    async fn deliver(
        &self,
        envelope: &lettre::address::Envelope,
        message: &[u8],
    ) -> Result<(), NotifyError> {
        let c = &self.conf;
        let host = &self.smarthost.host;
        let hello = match c.hello.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => ClientId::Domain(h.to_string()),
            None => ClientId::default(),
        };
        let secret = self.auth_secret()?;
        let credentials = self.credentials(secret.is_some())?;
        let tls = || tls_parameters(c.tls_config.as_ref(), host).map_err(fatal);
        let at = |e: lettre::transport::smtp::Error| {
            retryable(format!("send e-mail via {}: {e}", self.smarthost))
        };
        let implicit = c.implicit_tls();
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (host.as_str(), self.smarthost.port),
            Some(SMTP_TIMEOUT),
            &hello,
            if implicit { Some(tls()?) } else { None },
            None,
        )
        .await
        .map_err(at)?;
        if !implicit && c.require_tls.unwrap_or(true) {
            conn.starttls(tls()?, &hello).await.map_err(at)?;
        }
        let user = c.auth_username.as_deref().unwrap_or("");
        match (secret, credentials) {
            // With a secret, the server's own list decides, in its order,
            // as in Alertmanager: lettre does not know CRAM-MD5.
            (Some(secret), creds) if !user.is_empty() => {
                let offered = cram::offered_mechanisms(&mut conn, &hello)
                    .await
                    .map_err(at)?;
                let mut done = offered.is_empty();
                for mech in &offered {
                    match (mech.as_str(), &creds) {
                        ("CRAM-MD5", _) => {
                            cram::authenticate(&mut conn, user, &secret)
                                .await
                                .map_err(at)?;
                        }
                        ("PLAIN", Some(creds)) => {
                            conn.auth(&[Mechanism::Plain], creds).await.map_err(at)?;
                        }
                        ("LOGIN", Some(creds)) => {
                            conn.auth(&[Mechanism::Login], creds).await.map_err(at)?;
                        }
                        _ => continue,
                    }
                    done = true;
                    break;
                }
                if !done {
                    let _ = conn.quit().await;
                    return Err(fatal(format!(
                        "find auth mechanism: none of {} usable with the configured credentials",
                        offered.join(" ")
                    )));
                }
            }
            (_, Some(creds)) => {
                let mechanisms = [Mechanism::Plain, Mechanism::Login];
                if conn.server_info().get_auth_mechanism(&mechanisms).is_some() {
                    conn.auth(&mechanisms, &creds).await.map_err(at)?;
                }
            }
            _ => {}
        }
        let sent = conn.send(envelope, message).await.map_err(at);
        let _ = conn.quit().await;
        sent.map(|_| ())
    }

    /// The CRAM-MD5 secret (`auth_secret_file` over `auth_secret`, read as
    /// it is, like Alertmanager does), when one is set.
    fn auth_secret(&self) -> Result<Option<String>, NotifyError> {
        let c = &self.conf;
        let secret = match (&c.auth_secret_file, &c.auth_secret) {
            (Some(f), _) if !f.is_empty() => {
                std::fs::read_to_string(f).map_err(|e| fatal(format!("could not read {f}: {e}")))?
            }
            (_, Some(s)) => s.expose().to_string(),
            _ => String::new(),
        };
        Ok((!secret.is_empty()).then_some(secret))
    }

    /// `auth_username` with its password, when set. Without a password
    /// that is an error unless a CRAM-MD5 secret can stand in.
    fn credentials(&self, has_secret: bool) -> Result<Option<Credentials>, NotifyError> {
        let c = &self.conf;
        let Some(user) = c.auth_username.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let password = match (&c.auth_password_file, &c.auth_password) {
            // A final newline is an editor's, not the password's.
            (Some(f), _) => std::fs::read_to_string(f)
                .map(|p| p.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| fatal(format!("could not read {f}: {e}")))?,
            (None, Some(p)) => p.expose().to_string(),
            (None, None) => String::new(),
        };
        if password.is_empty() && has_secret {
            return Ok(None);
        }
        if password.is_empty() {
            return Err(fatal(
                "find auth mechanism: missing password for PLAIN and LOGIN auth mechanisms".into(),
            ));
        }
        Ok(Some(Credentials::new(user.to_string(), password)))
    }

    /// Renders and assembles the message; every error here is permanent.
    fn message(
        &self,
        data: &Value,
        thread: Option<String>,
    ) -> Result<(lettre::address::Envelope, Vec<u8>), NotifyError> {
        let t = &self.templates;
        let c = &self.conf;
        let render = |what: &str, text: &str| {
            t.execute_text(text, data)
                .map_err(|e| fatal(format!("execute {what} template: {e}")))
        };
        let from = render("'from'", c.from.as_deref().unwrap_or(""))?;
        let to = render("'to'", c.to.as_ref().map_or("", |t| t.0.as_str()))?;
        let from: Mailboxes = from
            .parse()
            .map_err(|e| fatal(format!("parse 'from' addresses: {e}")))?;
        let from_addrs: Vec<_> = from.iter().map(|m| m.email.clone()).collect();
        if from_addrs.len() != 1 {
            return Err(fatal(format!(
                "must be exactly one 'from' address (got: {})",
                from_addrs.len()
            )));
        }
        let to: Mailboxes = to
            .parse()
            .map_err(|e| fatal(format!("parse 'to' addresses: {e}")))?;
        let envelope = lettre::address::Envelope::new(
            from_addrs.into_iter().next(),
            to.iter().map(|m| m.email.clone()).collect(),
        )
        .map_err(|e| fatal(format!("envelope: {e}")))?;

        let mut builder = lettre::Message::builder().envelope(envelope.clone());
        let mut has_message_id = false;
        for (name, text) in &c.headers {
            let value = t
                .execute_text(text, data)
                .map_err(|e| fatal(format!("execute {name:?} header template: {e}")))?;
            builder = match name.as_str() {
                "From" => builder.header(header::From::from(
                    value
                        .parse::<Mailboxes>()
                        .map_err(|e| fatal(format!("parse 'From' header: {e}")))?,
                )),
                "To" => match value.parse::<Mailboxes>() {
                    Ok(m) => builder.header(header::To::from(m)),
                    Err(_) => builder.raw_header(raw(name, value)?),
                },
                "Subject" => builder.subject(value),
                "Message-Id" => {
                    has_message_id = true;
                    builder.message_id(Some(value))
                }
                _ => builder.raw_header(raw(name, value)?),
            };
        }
        if !has_message_id {
            builder = builder.message_id(None);
        }
        if let Some(root) = thread {
            builder = builder
                .raw_header(raw("References", root.clone())?)
                .raw_header(raw("In-Reply-To", root)?);
        }
        let mut body = MultiPart::alternative().build();
        let mut parts = 0;
        if !c.text.is_empty() {
            let text = t
                .execute_text(&c.text, data)
                .map_err(|e| fatal(format!("execute text template: {e}")))?;
            body = body.singlepart(part(ContentType::TEXT_PLAIN, text));
            parts += 1;
        }
        if !c.html.is_empty() {
            let html = t
                .execute_html_text(&c.html, data)
                .map_err(|e| fatal(format!("execute html template: {e}")))?;
            body = body.singlepart(part(ContentType::TEXT_HTML, html));
            parts += 1;
        }
        if parts == 0 {
            body = body.singlepart(part(ContentType::TEXT_PLAIN, String::new()));
        }
        let message = builder
            .multipart(body)
            .map_err(|e| fatal(format!("build message: {e}")))?;
        Ok((envelope, message.formatted()))
    }
}

/// The Message-ID of the thread a group's mails reply to: no mail has it
/// (clients following JWZ threading make a placeholder for it).
fn thread_root(group_key: &str, day: &str) -> String {
    let hash = super::group_key_hash(group_key);
    format!("<alert-{}-{day}@alertmanager>", &hash[..16])
}

fn part(kind: ContentType, body: String) -> SinglePart {
    SinglePart::builder()
        .header(kind)
        .header(ContentTransferEncoding::QuotedPrintable)
        .body(body)
}

fn raw(name: &str, value: String) -> Result<HeaderValue, NotifyError> {
    let name = HeaderName::new_from_ascii(name.to_string())
        .map_err(|_| fatal(format!("invalid header name {name:?}")))?;
    Ok(HeaderValue::new(name, value))
}

/// TLS settings for STARTTLS or SMTPS from `tls_config`; the server name
/// defaults to the smarthost's host, as Alertmanager sets it.
fn tls_parameters(cfg: Option<&TlsConfig>, host: &str) -> Result<TlsParameters, String> {
    let default = TlsConfig::default();
    let cfg = cfg.unwrap_or(&default);
    let name = cfg.server_name.clone().unwrap_or_else(|| host.to_string());
    let mut b = TlsParameters::builder(name);
    let read = |inline: Option<&str>, file: &Option<String>, what: &str| match (inline, file) {
        (Some(pem), _) => Ok(Some(pem.as_bytes().to_vec())),
        (None, Some(f)) => std::fs::read(f)
            .map(Some)
            .map_err(|e| format!("tls_config.{what} {f}: {e}")),
        (None, None) => Ok(None),
    };
    if let Some(ca) = read(cfg.ca.as_deref(), &cfg.ca_file, "ca_file")? {
        for pem in split_pem(&ca) {
            b = b.add_root_certificate(
                Certificate::from_pem(&pem).map_err(|e| format!("tls_config CA: {e}"))?,
            );
        }
    }
    let cert = read(cfg.cert.as_deref(), &cfg.cert_file, "cert_file")?;
    let key = read(
        cfg.key.as_ref().map(|k| k.expose()),
        &cfg.key_file,
        "key_file",
    )?;
    if let (Some(cert), Some(key)) = (cert, key) {
        b = b.identify_with(
            Identity::from_pem(&cert, &key)
                .map_err(|e| format!("tls_config client certificate: {e}"))?,
        );
    }
    if cfg.insecure_skip_verify {
        b = b.dangerous_accept_invalid_certs(true);
    }
    if let Some(v) = &cfg.min_version {
        b = b.set_min_tls_version(match v.as_str() {
            "TLS13" => TlsVersion::Tlsv13,
            _ => TlsVersion::Tlsv12,
        });
    }
    b.build_rustls().map_err(|e| format!("tls_config: {e}"))
}

/// A CA file may hold several certificates; lettre takes them one by one.
fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter(|c| c.contains("-----BEGIN CERTIFICATE-----"))
        .map(|c| c.trim_start().as_bytes().to_vec())
        .collect()
}

#[async_trait::async_trait]
impl Notifier for Email {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        let data = super::template_data(ctx, alerts, &self.external_url);
        let thread = self.conf.threading.as_ref().filter(|t| t.enabled).map(|t| {
            // The day is the local one, as Go's time.Now() formats it.
            let day = if t.thread_by_date == "none" {
                String::new()
            } else {
                ctx.now
                    .to_zoned_datetime(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d")
                    .to_string()
            };
            thread_root(&ctx.group_key, &day)
        });
        let (envelope, message) = self.message(&data, thread)?;
        self.deliver(&envelope, &message).await
    }
}
