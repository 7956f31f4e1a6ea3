//! Standard Webhooks signatures, as Understory's *Webhooks* guide describes its headers
//! (`docs/understory-api.md` §2, "Webhook deliveries"): `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the base64 after `whsec_` in the secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// A subscription's signing key, decoded from its `whsec_…` secret; its `Debug` shows nothing.
pub(crate) struct SigningKey(SecretBox<Vec<u8>>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// The key of a secret as the create answer gives it: `whsec_` and base64. The scheme also
    /// allows the bare base64, which is taken too.
    pub(crate) fn from_secret(secret: &SecretString) -> Option<Self> {
        let text = secret.expose_secret().trim();
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        let bytes = B64.decode(b64).ok().filter(|b| !b.is_empty())?;
        Some(Self(SecretBox::new(Box::new(bytes))))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value this key signs a delivery with (`v1,<base64>`): for the unit tests.
    #[cfg(test)]
    pub(crate) fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }

    /// Whether one `v1,` signature in `header` (space-separated, as the scheme sends several
    /// during a secret rotation) is this key's over the delivery. The comparison is constant
    /// time (`Mac::verify_slice`); other versions and malformed entries are skipped.
    fn signed(&self, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
        header
            .split_ascii_whitespace()
            .filter_map(|sig| sig.strip_prefix("v1,"))
            .filter_map(|b64| B64.decode(b64).ok())
            .any(|sig| self.mac(id, timestamp, body).verify_slice(&sig).is_ok())
    }
}

/// Whether any of `keys` signed the delivery: every stored secret is tried, so deliveries of an
/// old subscription still verify while its replacement is rolled out.
pub(crate) fn verify(keys: &[SigningKey], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    keys.iter().any(|k| k.signed(id, timestamp, body, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SigningKey {
        SigningKey::from_secret(&SecretString::from(secret.to_owned())).unwrap()
    }

    /// The example of the Standard Webhooks specification (its reference libraries' test).
    #[test]
    fn the_specifications_example_verifies() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = "1614265330";
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(k.sign(id, ts, body), expected);
        assert!(verify(&[k], id, ts, body, expected));
    }

    #[test]
    fn a_wrong_key_a_changed_body_or_a_changed_timestamp_fail() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let other = key("whsec_dGhlIG90aGVyIHNlY3JldA==");
        let sig = k.sign("msg_1", "100", b"{}");
        assert!(!verify(std::slice::from_ref(&other), "msg_1", "100", b"{}", &sig));
        assert!(!verify(std::slice::from_ref(&k), "msg_1", "100", b"{ }", &sig));
        assert!(!verify(std::slice::from_ref(&k), "msg_1", "101", b"{}", &sig));
        assert!(!verify(std::slice::from_ref(&k), "msg_2", "100", b"{}", &sig));
        assert!(
            verify(&[other, k], "msg_1", "100", b"{}", &sig),
            "any stored key may match"
        );
    }

    #[test]
    fn one_valid_signature_among_several_is_enough() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let good = k.sign("msg_1", "100", b"{}");
        let header = format!("v1,AAAA v2,whatever v1,not-base64! {good}");
        assert!(verify(std::slice::from_ref(&k), "msg_1", "100", b"{}", &header));
        assert!(!verify(&[k], "msg_1", "100", b"{}", "v1,AAAA v1a,xyz"));
    }

    #[test]
    fn a_secret_that_is_not_base64_is_no_key() {
        assert!(SigningKey::from_secret(&SecretString::from("whsec_***".to_owned())).is_none());
        assert!(SigningKey::from_secret(&SecretString::from("whsec_".to_owned())).is_none());
    }
}
