//! Opaque, short-lived list cursors (`docs/understory-api.md` §6.5).
//!
//! A cursor carries the position in its listing, when it was issued and a fingerprint of the
//! query it belongs to, sealed with a keyed hash so that a tampered cursor is told apart from an
//! expired one. Positions are offsets into the listing as it is *now*, so rows created or
//! updated between two pages shift the walk: rows are skipped or seen twice, exactly the
//! best-effort traversal the real API warns about.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::world::mix;

/// A decoded cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub pos: u64,
    pub issued_ms: u64,
    pub query: u64,
}

/// Why a cursor was refused; all of them answer 400 `INVALID_CURSOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    Malformed,
    Expired,
    OtherQuery,
}

impl CursorError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "cursor is malformed",
            Self::Expired => "cursor has expired; start the listing again",
            Self::OtherQuery => "cursor does not belong to this query",
        }
    }
}

/// Issues and checks cursors for one sandbox.
pub struct Cursors {
    key: u64,
    ttl_ms: AtomicU64,
    /// Cursors issued before this instant are expired; lets tests expire them at will.
    not_before_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Cursors {
    pub fn new(seed: u64, ttl: Duration) -> Self {
        Self {
            key: mix(seed ^ 0x6375_7273_6f72),
            ttl_ms: AtomicU64::new(ttl.as_millis() as u64),
            not_before_ms: AtomicU64::new(0),
        }
    }

    fn seal(&self, pos: u64, issued_ms: u64, query: u64) -> u64 {
        mix(self.key ^ mix(pos ^ mix(issued_ms ^ mix(query))))
    }

    /// A cursor as opaque as the real API's: standard base64 of 32 bytes, so it holds `+`, `/`
    /// and a trailing `=` that a client must escape in the query string.
    pub fn issue(&self, pos: u64, query: u64) -> String {
        let issued = now_ms();
        let mac = self.seal(pos, issued, query);
        let mut bytes = Vec::with_capacity(32);
        for word in [pos, issued, query, mac] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        STANDARD.encode(bytes)
    }

    pub fn check(&self, raw: &str, query: u64) -> Result<Cursor, CursorError> {
        let bytes = STANDARD.decode(raw).map_err(|_| CursorError::Malformed)?;
        if bytes.len() != 32 {
            return Err(CursorError::Malformed);
        }
        let word = |k: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[k * 8..(k + 1) * 8]);
            u64::from_be_bytes(w)
        };
        let (pos, issued_ms, q, mac) = (word(0), word(1), word(2), word(3));
        if mac != self.seal(pos, issued_ms, q) {
            return Err(CursorError::Malformed);
        }
        let age = now_ms().saturating_sub(issued_ms);
        if age > self.ttl_ms.load(Ordering::Relaxed) || issued_ms < self.not_before_ms.load(Ordering::Relaxed)
        {
            return Err(CursorError::Expired);
        }
        if q != query {
            return Err(CursorError::OtherQuery);
        }
        Ok(Cursor {
            pos,
            issued_ms,
            query,
        })
    }

    /// Expires every cursor issued so far.
    pub fn expire_all(&self) {
        self.not_before_ms.store(now_ms() + 1, Ordering::Relaxed);
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tamper_and_query() {
        let c = Cursors::new(1, Duration::from_secs(60));
        let raw = c.issue(200, 99);
        assert_eq!(c.check(&raw, 99).map(|x| x.pos), Ok(200));
        assert_eq!(c.check(&raw, 98), Err(CursorError::OtherQuery));
        let mut bad = raw.clone().into_bytes();
        bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(c.check(&bad, 99), Err(CursorError::Malformed));
        assert_eq!(c.check("zz", 99), Err(CursorError::Malformed));
        assert!(raw.ends_with('='), "base64 with padding: {raw}");
        let many: String = (0..50).map(|p| c.issue(p, 1)).collect();
        assert!(many.contains('+') && many.contains('/'), "cursors need escaping");
        std::thread::sleep(Duration::from_millis(3));
        c.expire_all();
        assert_eq!(c.check(&raw, 99), Err(CursorError::Expired));
    }
}
