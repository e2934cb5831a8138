//! `--web.config.file` end to end: TLS, basic auth with bcrypt hashes,
//! client certificates and response headers, checked with an HTTPS client,
//! the real `amtool` and the real Prometheus sending alerts; and configs
//! Herald cannot honour stop it at startup.

mod common;

use std::process::{Command, Stdio};
#[cfg(feature = "system-tests")]
use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use common::*;

#[cfg(feature = "system-tests")]
const CONFIG: &str = "route:\n  receiver: r\nreceivers:\n  - name: r\n";

#[cfg(feature = "system-tests")]
struct Secured {
    child: Child,
    base: String,
}

#[cfg(feature = "system-tests")]
impl Drop for Secured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Herald with `web_yml` as its web config and waits until a TCP
/// connection is accepted.
#[cfg(feature = "system-tests")]
fn start_secured(dir: &Path, web_yml: &str) -> Secured {
    std::fs::write(dir.join("herald.yml"), CONFIG).unwrap();
    std::fs::write(dir.join("web.yml"), web_yml).unwrap();
    let port = free_port();
    let child = Command::new(herald_bin())
        .arg(format!(
            "--config.file={}",
            dir.join("herald.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--web.config.file={}",
            dir.join("web.yml").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "herald did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Secured {
        child,
        base: format!("https://127.0.0.1:{port}"),
    }
}

#[cfg(feature = "system-tests")]
fn https_client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

// System tier: openssl makes the certificates; the real amtool.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn tls_and_basic_auth_protect_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = make_certs(d);
    let hash = bcrypt::hash("s3cret!", 4).unwrap();
    let h = start_secured(
        d,
        &format!(
            "tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    );
    let client = https_client(&certs.ca, None);
    let url = format!("{}/api/v2/status", h.base);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic");
    assert_eq!(r.headers()["x-frame-options"], "deny");
    let r = client
        .get(&url)
        .basic_auth("prometheus", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&url)
        .basic_auth("nobody", Some("s3cret!"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for _ in 0..2 {
        // The second time comes from the cache of verified logins.
        let r = client
            .get(&url)
            .basic_auth("prometheus", Some("s3cret!"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-frame-options"], "deny");
    }
    // Plain HTTP gets no answer, and a client that does not trust the CA
    // is refused.
    let plain = reqwest::get(format!("http://{}/-/healthy", &h.base[8..])).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    assert!(reqwest::get(&url).await.is_err());

    // The container health check: a 401 means the server is up.
    let check = |skip: bool| {
        let mut c = Command::new(herald_bin());
        c.args(["healthcheck", "--url", &format!("{}/-/healthy", h.base)]);
        if skip {
            c.arg("--tls-skip-verify");
        }
        c.output().unwrap().status.success()
    };
    assert!(check(true));
    assert!(
        !check(false),
        "an untrusted certificate must fail the check"
    );

    // The real amtool, with Alertmanager's --http.config.file.
    std::fs::write(
        d.join("amtool-http.yml"),
        format!(
            "basic_auth:\n  username: prometheus\n  password: 's3cret!'\ntls_config:\n  ca_file: {}\n",
            certs.ca.display()
        ),
    )
    .unwrap();
    let out = Command::new(am_current_bin("amtool"))
        .arg(format!("--alertmanager.url={}", h.base))
        .arg(format!(
            "--http.config.file={}",
            d.join("amtool-http.yml").display()
        ))
        .args([
            "silence",
            "add",
            "alertname=Maint",
            "-c",
            "via amtool over TLS",
            "-a",
            "me",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let silences: serde_json::Value = client
        .get(format!("{}/api/v2/silences", h.base))
        .basic_auth("prometheus", Some("s3cret!"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(silences[0]["comment"], "via amtool over TLS");
}

/// Prometheus sends its alerts over TLS with basic auth, as the deploy
/// stack configures it.
// System tier: openssl makes the certificates; Prometheus.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_authenticates_to_herald() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = make_certs(d);
    let hash = bcrypt::hash("alerting-pw", 4).unwrap();
    let h = start_secured(
        d,
        &format!(
            "tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    );
    let port = &h.base["https://127.0.0.1:".len()..];
    std::fs::write(
        d.join("rules.yml"),
        "groups:\n  - name: t\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {severity: info}\n",
    )
    .unwrap();
    std::fs::write(d.join("pw"), "alerting-pw").unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - scheme: https\n      api_version: v2\n      basic_auth: {{username: prometheus, password_file: {pw}}}\n      tls_config: {{ca_file: {ca}}}\n      static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
            pw = d.join("pw").display(),
            ca = certs.ca.display()
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let mut prom = spawn_prometheus(d, prom_port);
    let client = https_client(&certs.ca, None);
    let url = format!("{}/api/v2/alerts", h.base);
    let found = wait_until("the alert from Prometheus", Duration::from_secs(60), || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let v: serde_json::Value = client
                .get(&url)
                .basic_auth("prometheus", Some("alerting-pw"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v.as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "AlwaysFiring")
                .cloned()
        }
    })
    .await;
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(found["labels"]["severity"], "info");
}

// System tier: openssl makes the certificates.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = make_certs(d);
    let (cert, key) = make_client_cert(d);
    let h = start_secured(
        d,
        "tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n",
    );
    let url = format!("{}/-/healthy", h.base);
    assert!(https_client(&certs.ca, None)
        .get(&url)
        .send()
        .await
        .is_err());
    let r = https_client(&certs.ca, Some((&cert, &key)))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A certificate from another CA is refused.
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path());
    let (ocert, okey) = make_client_cert(other.path());
    assert!(https_client(&certs.ca, Some((&ocert, &okey)))
        .get(&url)
        .send()
        .await
        .is_err());
}

#[test]
fn hash_password_writes_a_bcrypt_hash() {
    use std::io::Write;
    let mut child = Command::new(herald_bin())
        .args(["hash-password", "--cost", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(bcrypt::verify("correct horse", hash.trim()).unwrap());
    assert!(!bcrypt::verify("correct horse\n", hash.trim()).unwrap());
}

// System tier: openssl makes the certificates.
#[cfg(feature = "system-tests")]
#[test]
fn web_configs_herald_cannot_honour_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    std::fs::write(d.join("herald.yml"), CONFIG).unwrap();
    for (web, expect) in [
        ("basic_auth_users:\n  admin: plaintext\n", "not a bcrypt hash"),
        ("tls_server_config:\n  key_file: srv.key\n", "missing cert_file"),
        ("tls_server_config:\n  cert_file: nope.pem\n  key_file: srv.key\n", "nope.pem"),
        ("tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\n  client_auth_type: RequireAnyClientCert\n", "not supported"),
        ("tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\n  client_ca_file: ca.pem\n", "client_auth_type"),
        ("http_server_config:\n  headers:\n    Set-Cookie: x\n", "not one of the allowed headers"),
        ("basic_auth_user:\n  a: b\n", "basic_auth_user"),
    ] {
        std::fs::write(d.join("web.yml"), web).unwrap();
        let out = Command::new(herald_bin())
            .arg(format!("--config.file={}", d.join("herald.yml").display()))
            .arg(format!("--storage.path={}", d.join("data").display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--web.config.file={}", d.join("web.yml").display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{web} was accepted");
        assert!(err.contains(expect), "{web}: {err}");
    }
}

/// As with exporter-toolkit, a running Herald picks up a rotated
/// certificate (here, one from a new CA) and changed passwords without a
/// restart; a config that no longer loads leaves the last good one
/// running.
// System tier: openssl makes the certificates.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn certificates_and_passwords_change_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = make_certs(d);
    let web = |hash: &str| {
        format!(
            "tls_server_config:\n  cert_file: srv.pem\n  key_file: srv.key\nbasic_auth_users:\n  admin: '{hash}'\n"
        )
    };
    let h = start_secured(d, &web(&bcrypt::hash("first", 4).unwrap()));
    let url = format!("{}/api/v2/status", h.base);
    let status = |ca: &Path, pass: &'static str| {
        let client = https_client(ca, None);
        let url = url.clone();
        async move {
            match client
                .get(&url)
                .basic_auth("admin", Some(pass))
                .send()
                .await
            {
                Ok(r) => Some(r.status().as_u16()),
                Err(_) => None, // the TLS handshake failed
            }
        }
    };
    assert_eq!(status(&old.ca, "first").await, Some(200));

    // Rotate: a new CA signs a new certificate written over the old files,
    // and the password changes.
    let new_dir = tempfile::tempdir().unwrap();
    let new = make_certs(new_dir.path());
    std::fs::copy(&new.cert, d.join("srv.pem")).unwrap();
    std::fs::copy(&new.key, d.join("srv.key")).unwrap();
    std::fs::write(d.join("web.yml"), web(&bcrypt::hash("second", 4).unwrap())).unwrap();
    wait_until(
        "the new certificate and password",
        Duration::from_secs(20),
        || async { (status(&new.ca, "second").await == Some(200)).then_some(()) },
    )
    .await;
    assert_eq!(
        status(&new.ca, "first").await,
        Some(401),
        "the old password is gone"
    );
    assert_eq!(
        status(&old.ca, "second").await,
        None,
        "the old CA's certificate is gone"
    );

    // A broken file is not applied: the running configuration stays.
    std::fs::write(d.join("web.yml"), "tls_server_config: [not a map\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(status(&new.ca, "second").await, Some(200));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
