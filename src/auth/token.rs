//! The bearer token the API takes, kept out of every log line.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A bearer token. Its `Debug` never shows it, so it cannot leak through logs or panics.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    pub(crate) fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }
    /// The token text, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = AccessToken::new("eyJ-very-secret".to_owned());
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
    }
}
