//! The authorization code grant (RFC 6749 §4.1; Understory's *Third-party integrations* guide)
//! as `connect` runs it: the authorize address with a random `state` and a PKCE challenge
//! (RFC 7636, S256), the redirect's answer checked against that `state`, and the code exchanged
//! for the first refresh token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use super::endpoint::{Endpoint, Issued};
use super::error::Error;

/// The scope without which no refresh token is issued; the *Authentication* guide's scope table
/// marks it required for third-party integrations (`docs/understory-api.md` §3).
pub const OFFLINE: &str = "offline";

/// Why the redirect did not bring a usable code.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(
        "the redirect's state does not match the one this connect sent: refused as a possible cross-site request forgery; run connect again and finish it in the browser it opens"
    )]
    StateMismatch,
    #[error("the customer did not grant access ({error}{}); nothing was stored: run connect again if that was a mistake", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the redirect carries neither a code nor an error: {0}")]
    Malformed(String),
}

/// One attempt to connect: the address to open and what its answer must match.
pub struct Attempt {
    pub url: Url,
    state: String,
    verifier: Option<SecretString>,
    pub(crate) redirect_uri: Url,
}

/// `n` random bytes as URL-safe base64: unguessable, and safe in a query without escaping.
fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

impl Attempt {
    /// The authorize address for `client_id`, asking for `scopes` (`offline` is added).
    pub fn new(
        authorize_url: &Url,
        audience: &str,
        client_id: &str,
        redirect_uri: &Url,
        scopes: &[&str],
        pkce: bool,
    ) -> Self {
        let state = random(24);
        let mut all: Vec<&str> = vec![OFFLINE];
        all.extend(scopes.iter().copied().filter(|s| *s != OFFLINE));
        let mut url = authorize_url.clone();
        let verifier = pkce.then(|| SecretString::from(random(48)));
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("audience", audience)
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("scope", &all.join(" "))
                .append_pair("state", &state);
            if let Some(v) = &verifier {
                let challenge = B64URL.encode(Sha256::digest(v.expose_secret().as_bytes()));
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Self {
            url,
            state,
            verifier,
            redirect_uri: redirect_uri.clone(),
        }
    }

    /// The code in a redirect's query string, once its `state` is this attempt's.
    pub fn code(&self, query: &str) -> Result<SecretString, CallbackError> {
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => code = Some(SecretString::from(v.into_owned())),
                "state" => state = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => description = Some(v.into_owned()),
                _ => {}
            }
        }
        // The state first: an error page forged by another site is refused like a forged code.
        if state.as_deref() != Some(self.state.as_str()) {
            return Err(CallbackError::StateMismatch);
        }
        if let Some(error) = error {
            // The browser's address is anyone's to write: shortened and escaped.
            return Err(CallbackError::Denied {
                error: crate::http::printable(&error, 64),
                description: description.map(|d| crate::http::printable(&d, crate::http::MESSAGE_CHARS)),
            });
        }
        code.ok_or_else(|| CallbackError::Malformed("no `code` parameter".into()))
    }

    /// Exchanges `code` for tokens (step 3 of the flow in `docs/understory-api.md` §3).
    pub async fn exchange(
        &self,
        endpoint: &Endpoint,
        client_id: &str,
        secret: &SecretString,
        code: &SecretString,
    ) -> Result<Issued, Error> {
        let mut pairs = vec![
            ("client_id", client_id),
            ("client_secret", secret.expose_secret()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code", code.expose_secret()),
        ];
        if let Some(v) = &self.verifier {
            pairs.push(("code_verifier", v.expose_secret()));
        }
        endpoint.request("authorization_code", &pairs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(pkce: bool) -> Attempt {
        Attempt::new(
            &Url::parse("https://api.auth.understory.io/oauth2/auth").unwrap(),
            "https://api.understory.io",
            "app",
            &Url::parse("http://127.0.0.1:8976/callback").unwrap(),
            &["booking.read", "marketing.read"],
            pkce,
        )
    }

    #[test]
    fn the_address_carries_what_the_seed_lists_and_a_fresh_state() {
        let a = attempt(true);
        let q: std::collections::HashMap<String, String> = a.url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["audience"], "https://api.understory.io");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8976/callback");
        assert_eq!(q["scope"], "offline booking.read marketing.read");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["state"].len() >= 32);
        assert_ne!(q["state"], attempt(true).state, "every attempt has its own state");
        assert!(!attempt(false).url.as_str().contains("code_challenge"));
    }

    #[test]
    fn the_redirect_is_checked_state_first() {
        let a = attempt(false);
        let ok = format!("code=abc&state={}", a.state);
        assert_eq!(a.code(&ok).unwrap().expose_secret(), "abc");
        assert!(matches!(
            a.code("code=abc&state=forged"),
            Err(CallbackError::StateMismatch)
        ));
        assert!(matches!(a.code("code=abc"), Err(CallbackError::StateMismatch)));
        let denied = format!(
            "error=access_denied&error_description=The+user+denied+the+request&state={}",
            a.state
        );
        let e = a.code(&denied).unwrap_err().to_string();
        assert!(e.contains("access_denied: The user denied the request"), "{e}");
    }
}
