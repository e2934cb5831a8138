//! SMTP AUTH CRAM-MD5 (RFC 2195), which Alertmanager offers with
//! `auth_secret` and lettre does not implement: the server sends a
//! challenge, the client answers with its user name and the hex HMAC-MD5
//! of the challenge keyed with the shared secret.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error;

/// The mechanisms of the server's `AUTH` line, in its order. lettre keeps
/// only those it knows, so the EHLO is asked again (allowed at any time,
/// RFC 5321 4.1.4) and its answer read here.
pub(super) async fn offered_mechanisms(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<Vec<String>, Error> {
    let resp = conn.command(Ehlo::new(hello.clone())).await?;
    Ok(resp
        .message()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words
                .next()
                .filter(|w| w.eq_ignore_ascii_case("AUTH"))
                .map(|_| words.map(str::to_ascii_uppercase).collect::<Vec<_>>())
        })
        .flatten()
        .collect())
}

/// The answer to a challenge: `user hex(hmac_md5(secret, challenge))`.
pub(super) fn response(user: &str, secret: &str, challenge: &[u8]) -> String {
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(challenge);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{user} {digest}")
}

/// One AUTH CRAM-MD5 exchange; an answer other than 334 then 235 is an
/// SMTP error (lettre turns 4xx/5xx into errors itself).
pub(super) async fn authenticate(
    conn: &mut AsyncSmtpConnection,
    user: &str,
    secret: &str,
) -> Result<(), Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let challenge = conn.command("AUTH CRAM-MD5\r\n").await?;
    let encoded = challenge.first_line().unwrap_or("").trim();
    // A challenge that is not base64 is answered as it came: the server
    // then refuses the answer, which is the error the user sees.
    let decoded = b64
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let answer = b64.encode(response(user, secret, &decoded));
    conn.command(format!("{answer}\r\n")).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2195's example exchange.
    #[test]
    fn rfc_2195_example() {
        assert_eq!(
            response(
                "tim",
                "tanstaaftanstaaf",
                b"<1896.697170952@postoffice.reston.mci.net>"
            ),
            "tim b913a602c7eda7a495b4e6e7334d3890"
        );
    }
}
