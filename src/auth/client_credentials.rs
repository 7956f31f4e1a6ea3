//! The `client_credentials` grant (RFC 6749 §4.4) as Understory's *Authentication* guide shows
//! it: a form POST with `grant_type`, `client_id`, `client_secret`, `audience` and
//! space-separated `scope`.

use secrecy::{ExposeSecret, SecretString};

use super::endpoint::{Endpoint, Issued};
use super::error::Error;

/// An internal integration key and what it asks for.
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) secret: SecretString,
    pub(crate) audience: String,
    /// Space-separated, as the form wants it.
    pub(crate) scopes: String,
}

impl ClientCredentials {
    pub(crate) async fn fetch(&self, endpoint: &Endpoint) -> Result<Issued, Error> {
        endpoint
            .request(
                "client_credentials",
                &[
                    ("client_id", &self.client_id),
                    ("client_secret", self.secret.expose_secret()),
                    ("audience", &self.audience),
                    ("scope", &self.scopes),
                ],
            )
            .await
    }
}
