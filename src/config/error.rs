//! A configuration problem, said as the key to fix and why.

/// A configuration problem, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        key,
        message: message.into(),
    }
}
