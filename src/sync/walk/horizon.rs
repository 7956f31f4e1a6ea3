//! What "now" is when the walk judges an item's timestamp, and so which timestamps may steer
//! it: become a high-water mark, a candidate, or a first load's resume point.
//!
//! One booking stamped 9999-12-31 (a clock glitch on the API's side) would otherwise become the
//! high-water mark, and every later incremental pass would stop at its first page while the run
//! exits 0. The rule: a timestamp further than `max_skew` ahead of both clocks — ours, and the
//! API's as its latest answer's `Date` states it — steers nothing.

use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub(crate) struct Horizon {
    max_skew: chrono::Duration,
    /// The API's clock as its latest answer stated it.
    api_clock: Option<Timestamp>,
}

impl Horizon {
    pub(crate) fn new(max_skew: std::time::Duration) -> Self {
        Self {
            max_skew: chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::MAX),
            api_clock: None,
        }
    }

    /// Notes the API's clock, as its latest answer's `Date` stated it.
    pub(crate) fn api_clock(&mut self, at: Option<Timestamp>) {
        self.api_clock = at;
    }

    /// The latest instant a timestamp may be and still steer the walk: `max_skew` past the
    /// later of our clock and the API's. The API's clock has its say only up to `max_skew`
    /// ahead of ours, so one `Date: Fri, 31 Dec 9999` cannot open the door it guards: the
    /// horizon is at most twice the skew ahead of our clock.
    pub(crate) fn at(&self, now: Timestamp) -> Timestamp {
        let api = self.api_clock.map(|api| api.min(plus(now, self.max_skew)));
        plus(api.map_or(now, |api| api.max(now)), self.max_skew)
    }

    /// Our clock's horizon alone: what the walk judges by before the API has answered.
    pub(crate) fn ours(&self, now: Timestamp) -> Timestamp {
        plus(now, self.max_skew)
    }
}

fn plus(t: Timestamp, d: chrono::Duration) -> Timestamp {
    t.checked_add_signed(d).unwrap_or(Timestamp::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_later_clock_plus_the_skew_but_the_api_only_a_skew_ahead() {
        let day = std::time::Duration::from_secs(86_400);
        let now = t("2026-06-01T12:00:00Z");
        let mut h = Horizon::new(day);
        assert_eq!(h.at(now), t("2026-06-02T12:00:00Z"));
        h.api_clock(Some(t("2026-06-01T18:00:00Z")));
        assert_eq!(h.at(now), t("2026-06-02T18:00:00Z"), "the API's clock is ahead");
        h.api_clock(Some(t("2026-05-01T00:00:00Z")));
        assert_eq!(h.at(now), t("2026-06-02T12:00:00Z"), "ours is ahead");
        h.api_clock(Some(t("9999-12-31T23:59:59Z")));
        assert_eq!(
            h.at(now),
            t("2026-06-03T12:00:00Z"),
            "a glitching Date has a bounded say"
        );
        assert_eq!(h.ours(now), t("2026-06-02T12:00:00Z"));
        assert_eq!(Horizon::new(std::time::Duration::MAX).at(now), Timestamp::MAX_UTC);
    }
}
