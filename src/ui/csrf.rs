//! Cross-site request forgery protection for the UI's forms. Each browser
//! gets a random cookie (`SameSite=Strict`, `HttpOnly`); a form carries the
//! HMAC of that cookie under a key that lives only in this process. Another
//! site can neither read the cookie nor compute the token, so it cannot
//! forge a post; a restart makes old forms fail with a clear message.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use hmac::{Hmac, Mac};
use rand::RngExt;
use sha2::Sha256;

const COOKIE: &str = "herald_csrf";

pub struct Csrf {
    key: [u8; 32],
}

/// The browser's cookie value, and whether it must be (re)issued.
pub struct Session {
    key: [u8; 32],
    value: String,
    new: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Csrf {
    pub fn new() -> Csrf {
        Csrf {
            key: rand::rng().random(),
        }
    }

    pub fn session(&self, headers: &HeaderMap) -> Session {
        let existing = super::cookie(headers, COOKIE)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        match existing {
            Some(v) => Session {
                key: self.key,
                value: v.to_string(),
                new: false,
            },
            None => Session {
                key: self.key,
                value: hex(&rand::rng().random::<[u8; 32]>()),
                new: true,
            },
        }
    }
}

impl Default for Csrf {
    fn default() -> Self {
        Csrf::new()
    }
}

impl Session {
    /// The token forms carry.
    pub fn token(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(self.value.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// True when `token` belongs to this browser's cookie (compared in
    /// constant time). A cookie issued by this very response is no proof.
    pub fn verify(&self, token: &str) -> bool {
        if self.new {
            return false;
        }
        let expected = self.token();
        expected.len() == token.len()
            && expected
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    pub fn set_cookie(&self, resp: &mut Response, prefix: &str) {
        if !self.new {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path={prefix}/; HttpOnly; SameSite=Strict",
            self.value
        )) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_cookie_and_the_key() {
        let c = Csrf::new();
        let fresh = c.session(&HeaderMap::new());
        assert!(
            !fresh.verify(&fresh.token()),
            "a cookie just issued proves nothing"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={}", fresh.value)).unwrap(),
        );
        let s = c.session(&h);
        assert!(s.verify(&fresh.token()));
        assert!(!s.verify("00"));
        assert!(
            !Csrf::new().session(&h).verify(&fresh.token()),
            "another key"
        );
    }
}
