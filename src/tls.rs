//! The client side of Prometheus' common `tls_config` (`ca`, `cert`, `key`,
//! their `_file` forms, `server_name`, `insecure_skip_verify`,
//! `min_version`, `max_version`) made into one rustls configuration, so the
//! cluster's peer connections and the HTTP integrations honour the same
//! settings the same way. The server side (exporter-toolkit's
//! `tls_server_config`) lives in `web`.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use crate::commoncfg::TlsConfig;

#[derive(Debug, thiserror::Error)]
#[error("{section}: {message}")]
pub struct TlsError {
    section: String,
    message: String,
}

/// Builds the client configuration for `t`; relative file names are
/// relative to `dir`. `section` names the setting in errors
/// (`tls_config`, `tls_client_config`).
pub fn client_config(
    t: &TlsConfig,
    dir: &Path,
    section: &str,
) -> Result<rustls::ClientConfig, TlsError> {
    let err = |m: String| TlsError {
        section: section.to_string(),
        message: m,
    };
    let read = |inline: Option<&str>, file: Option<&String>, what: &str| match (inline, file) {
        (Some(_), Some(_)) => Err(err(format!(
            "at most one of {what} and {what}_file must be configured"
        ))),
        (Some(pem), None) => Ok(Some(pem.as_bytes().to_vec())),
        (None, Some(f)) => std::fs::read(dir.join(f))
            .map(Some)
            .map_err(|e| err(format!("{what}_file {}: {e}", dir.join(f).display()))),
        (None, None) => Ok(None),
    };
    if let Some(what) = t.secret_ref() {
        return Err(err(format!(
            "unable to use {what}: cannot use secret ref without manager"
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions =
        crate::web::tls_versions(section, t.min_version.as_deref(), t.max_version.as_deref())
            .map_err(|e| err(e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| err(e.to_string()))?;

    let verifier: Arc<dyn ServerCertVerifier> = if t.insecure_skip_verify {
        Arc::new(AnyServer(provider.clone()))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match read(t.ca.as_deref(), t.ca_file.as_ref(), "ca")? {
            Some(pem) => {
                for c in CertificateDer::pem_slice_iter(&pem) {
                    let c = c.map_err(|e| err(format!("CA certificate: {e}")))?;
                    roots
                        .add(c)
                        .map_err(|e| err(format!("CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(err("no certificate in the CA".into()));
                }
            }
            None => {
                // Go's crypto/tls checks against the system's roots then.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| err(e.to_string()))?;
        match &t.server_name {
            Some(name) if !name.is_empty() => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| err(format!("server_name {name:?}: {e}")))?;
                Arc::new(NamedServer {
                    inner: webpki,
                    name,
                })
            }
            _ => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    let cert = read(t.cert.as_deref(), t.cert_file.as_ref(), "cert")?;
    let key = read(
        t.key.as_ref().map(|k| k.expose()),
        t.key_file.as_ref(),
        "key",
    )?;
    match (cert, key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => Err(err("client cert specified without client key".into())),
        (None, Some(_)) => Err(err("client key specified without client cert".into())),
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("client certificate: {e}")))?;
            if chain.is_empty() {
                return Err(err("no certificate in cert".into()));
            }
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| err(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| err(format!("client certificate: {e}")))
        }
    }
}

/// `server_name`: the certificate must be valid for this name, whatever
/// address the connection dialled (peers are often dialled by IP).
#[derive(Debug)]
struct NamedServer {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake
/// signatures are still checked so the connection is at least encrypted to
/// whoever holds the key of the certificate shown.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error `client_config` gives for the `tls_config` in `yaml`.
    fn refused(yaml: &str, dir: &str, section: &str) -> String {
        let t: TlsConfig = serde_saphyr::from_str(yaml).expect("tls config");
        client_config(&t, Path::new(dir), section)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn refuses_half_a_client_identity_and_names_the_section() {
        assert_eq!(
            refused(
                "cert: 'x'\ninsecure_skip_verify: true\n",
                "",
                "tls_client_config"
            ),
            "tls_client_config: client cert specified without client key"
        );
    }

    #[test]
    fn missing_ca_file_is_named_relative_to_the_config_directory() {
        let e = refused("ca_file: ca.pem\n", "/nonexistent-dir", "tls_config");
        assert!(
            e.starts_with("tls_config: ca_file /nonexistent-dir/ca.pem:"),
            "{e}"
        );
    }

    #[test]
    fn bad_versions_and_server_names_are_refused() {
        let e = refused(
            "min_version: TLS13\nmax_version: TLS12\ninsecure_skip_verify: true\n",
            "",
            "tls_config",
        );
        assert!(e.contains("min_version is above max_version"), "{e}");
        let e = refused("server_name: 'bad name!'\n", "", "tls_config");
        assert!(e.contains("server_name"), "{e}");
    }

    #[test]
    fn system_roots_when_no_ca_is_given() {
        assert!(client_config(&TlsConfig::default(), Path::new(""), "tls_config").is_ok());
    }
}
