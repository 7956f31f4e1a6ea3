//! The Standard Webhooks signature: `v1,` and the base64 of HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's bytes.
//!
//! Written here from the specification, not shared with the job's verifier, so that each
//! checks the other: a mistake made once shows as a mismatch.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a secret starts with; the base64 of the key follows.
pub const SECRET_PREFIX: &str = "whsec_";

/// The key a `whsec_…` secret stands for, if it is one.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok()
}

/// The `webhook-signature` header value for one attempt.
pub fn sign(key: &[u8], webhook_id: &str, timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{webhook_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its "Verifying webhooks" section):
    /// the same id, timestamp, body and secret give the signature it prints.
    #[test]
    fn matches_the_specifications_example() {
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_without_its_prefix_is_no_key() {
        assert!(key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
    }
}
