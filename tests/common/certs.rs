//! Test certificates made with openssl: shared by the tests (through
//! `common`) and the benches (included by path).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private CA and a server certificate for 127.0.0.1 signed by it,
/// made with openssl in `dir`.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs `openssl <args>` in `d`; it must succeed.
fn openssl(d: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(d)
        .output()
        .expect("openssl is missing: run scripts/test.sh");
    assert!(
        st.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

pub fn make_certs(d: &Path) -> Certs {
    let run = |args: &[&str]| openssl(d, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=herald-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext",
    ]);
    Certs {
        ca: d.join("ca.pem"),
        cert: d.join("srv.pem"),
        key: d.join("srv.key"),
    }
}

/// A client certificate (`client.pem`, `client.key`) signed by the CA of
/// `make_certs` in the same directory.
pub fn make_client_cert(d: &Path) -> (PathBuf, PathBuf) {
    let run = |args: &[&str]| openssl(d, args);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=herald-client",
    ]);
    std::fs::write(d.join("client-ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "1",
        "-extfile",
        "client-ext",
    ]);
    (d.join("client.pem"), d.join("client.key"))
}

/// Writes a `--cluster.tls-config` file in `dir` (paths in it relative, as
/// Alertmanager allows): the node shows `cert`/`key` both as server and as
/// client, trusts `ca` both ways, and requires a client certificate.
pub fn cluster_tls_file(dir: &Path, cert: &str, key: &str, ca: &str) -> PathBuf {
    let path = dir.join("cluster-tls.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_ca_file: {ca}\n  client_auth_type: RequireAndVerifyClientCert\ntls_client_config:\n  cert_file: {cert}\n  key_file: {key}\n  ca_file: {ca}\n"
        ),
    )
    .unwrap();
    path
}

/// The tests' CA and 127.0.0.1 certificate in `dir`, and a
/// `--cluster.tls-config` file using them (mutual TLS) that Herald and
/// Alertmanager both read.
pub fn make_cluster_tls(dir: &Path) -> PathBuf {
    make_certs(dir);
    cluster_tls_file(dir, "srv.pem", "srv.key", "ca.pem")
}
