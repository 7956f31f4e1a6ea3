//! Which failures are worth another try, and after how long. Pure, so it is table-tested.

use std::time::Duration;

use super::Error;

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after the usual exponential backoff with jitter.
    Backoff,
    /// Try again after exactly this long (a 429's `Retry-After`, or the documented minute).
    After(Duration),
    /// Give up: the request is wrong, or the credentials are.
    Never,
}

/// `rate_limited_wait` is what a 429 without `Retry-After` waits: the docs ask clients to back
/// off for at least a minute and send no header (`understory-api.md` §4).
pub fn classify(error: &Error, rate_limited_wait: Duration) -> Retry {
    match error {
        Error::Server { .. } | Error::Network { .. } | Error::Malformed { .. } => Retry::Backoff,
        Error::RateLimited { retry_after, .. } => Retry::After(retry_after.unwrap_or(rate_limited_wait)),
        Error::Auth(a) if a.is_transient() => Retry::Backoff,
        Error::Auth(_)
        | Error::Refused { .. }
        | Error::Unauthorized { .. }
        | Error::GaveUp { .. }
        | Error::Stopped { .. } => Retry::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth;

    #[test]
    fn classification_table() {
        let p = || "/v1/bookings".to_owned();
        let minute = Duration::from_secs(60);
        let cases = [
            (
                Error::Server {
                    path: p(),
                    status: 503,
                },
                Retry::Backoff,
            ),
            (
                Error::Network {
                    path: p(),
                    detail: "reset".into(),
                },
                Retry::Backoff,
            ),
            (
                Error::Malformed {
                    path: p(),
                    detail: "eof".into(),
                },
                Retry::Backoff,
            ),
            (
                Error::RateLimited {
                    path: p(),
                    retry_after: None,
                },
                Retry::After(minute),
            ),
            (
                Error::RateLimited {
                    path: p(),
                    retry_after: Some(Duration::from_secs(3)),
                },
                Retry::After(Duration::from_secs(3)),
            ),
            (
                Error::Refused {
                    path: p(),
                    status: 400,
                    code: "BAD_REQUEST".into(),
                    message: String::new(),
                },
                Retry::Never,
            ),
            (
                Error::Refused {
                    path: p(),
                    status: 403,
                    code: "UNAUTHORIZED".into(),
                    message: String::new(),
                },
                Retry::Never,
            ),
            (
                Error::Refused {
                    path: p(),
                    status: 404,
                    code: "NOT_FOUND".into(),
                    message: String::new(),
                },
                Retry::Never,
            ),
            (Error::Unauthorized { path: p() }, Retry::Never),
            (
                Error::Auth(auth::Error::Unreachable("down".into())),
                Retry::Backoff,
            ),
            (
                Error::Auth(auth::Error::Rejected {
                    error: "invalid_client".into(),
                    description: None,
                    hint: "",
                }),
                Retry::Never,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(classify(&error, minute), expected, "{error}");
        }
    }
}
