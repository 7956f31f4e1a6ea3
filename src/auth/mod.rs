//! Access tokens for the Understory API.
//!
//! Two ways in (`auth.method`), one `TokenSource` in front of them:
//! - internal integration keys use the `client_credentials` grant (RFC 6749 §4.4;
//!   Understory's *Authentication* guide);
//! - a third-party app connects a customer once with the authorization code grant (RFC 6749 §4.1;
//!   Understory's *Third-party integrations* guide; `authorize` and the `connect` command) and
//!   then runs on rotating refresh tokens (RFC 6749 §6, `refresh`), the newest one always stored
//!   encrypted at rest (`token_vault`).
//!
//! `TokenSource` caches the access token in memory, renews it shortly before it expires and on
//! demand after a 401; nothing outside this module knows which grant issued it.

pub mod authorize;
mod client_credentials;
pub(crate) mod endpoint;
mod error;
mod form;
mod refresh;
mod source;
mod token;
pub mod token_vault;

pub use endpoint::{Endpoint, Issued};
pub use error::Error;
pub use source::TokenSource;
pub use source::source;
pub use token::AccessToken;
