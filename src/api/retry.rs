//! Which failures are worth another try, and after how long. Pure, so it is table-tested.

use super::error::Error;
use crate::auth;

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Try again after the usual exponential backoff with jitter.
    Backoff,
    /// Try again at once: the shared pace (`crate::pace`) already paused every stream after the
    /// 429, so the retry waits there, not here.
    Paced,
    /// Give up: the request is wrong, or the credentials are.
    Never,
}

/// A 429 — from the API or from the token endpoint — is retried like any other transient
/// failure; how long it waits is the pace's business.
pub(crate) fn classify(error: &Error) -> Retry {
    match error {
        Error::Server { .. } | Error::Network { .. } | Error::Malformed { .. } => Retry::Backoff,
        Error::RateLimited { .. } => Retry::Paced,
        Error::Auth(auth::Error::RateLimited) => Retry::Paced,
        Error::Auth(a) if a.is_transient() => Retry::Backoff,
        Error::Auth(_)
        | Error::Refused { .. }
        | Error::Unauthorized { .. }
        | Error::GaveUp { .. }
        | Error::TooLarge { .. }
        | Error::Unaddressable { .. }
        | Error::WrongItem { .. }
        | Error::Looping { .. }
        | Error::ListTooLong { .. }
        | Error::CursorTooLong { .. }
        | Error::ListTooBig { .. }
        | Error::NoRoom { .. }
        | Error::Stopped { .. } => Retry::Never,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn classification_table() {
        let p = || "/v1/bookings".to_owned();
        let refused = |status: u16, code: &str| Error::Refused {
            path: p(),
            status,
            code: code.into(),
            message: String::new(),
        };
        let rate_limited = |retry_after| Error::RateLimited {
            path: p(),
            retry_after,
        };
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
            (rate_limited(None), Retry::Paced),
            (rate_limited(Some(Duration::from_secs(3))), Retry::Paced),
            (Error::Auth(auth::Error::RateLimited), Retry::Paced),
            (refused(400, "BAD_REQUEST"), Retry::Never),
            (refused(403, "UNAUTHORIZED"), Retry::Never),
            (refused(404, "NOT_FOUND"), Retry::Never),
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
            // The same request would get the same answer, or none was sent.
            (Error::TooLarge { path: p(), cap: 1 }, Retry::Never),
            (Error::Unaddressable { list: p() }, Retry::Never),
            (Error::Looping { path: p() }, Retry::Never),
            (Error::ListTooLong { path: p(), max: 1 }, Retry::Never),
            (
                Error::CursorTooLong {
                    path: p(),
                    len: 2,
                    max: 1,
                },
                Retry::Never,
            ),
            (Error::ListTooBig { path: p(), max: 1 }, Retry::Never),
            (Error::Stopped { path: p() }, Retry::Never),
            (
                Error::GaveUp {
                    last: Box::new(Error::Server {
                        path: p(),
                        status: 503,
                    }),
                    attempts: 6,
                    budget: false,
                },
                Retry::Never,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(classify(&error), expected, "{error}");
        }
    }
}
