//! `pace_state`: the pace the last run learned, where the next one starts.

use rusqlite::OptionalExtension;

use super::database::Store;
use super::error::Error;
use super::statements;
use crate::time::{Timestamp, iso};

impl Store {
    /// The pace the last run ended with, if any run saved one.
    pub fn load_pace(&self) -> Result<Option<crate::pace::Learned>, Error> {
        self.with(|c| {
            c.query_row(statements::get("pace_state", "load"), [], |r| {
                Ok(crate::pace::Learned {
                    rate: r.get(0)?,
                    ceiling: r.get(1)?,
                    proven: r.get(2)?,
                    concurrency: r.get::<_, i64>(3)?.max(1) as usize,
                    probe_wait: secs(r.get(4)?).unwrap_or(crate::pace::PROBE_FIRST),
                    clean_for: secs(r.get(5)?).unwrap_or_default(),
                    saved_ago: r
                        .get::<_, Option<String>>(6)?
                        .and_then(|at| crate::time::from_iso(&at))
                        .and_then(|at| (chrono::Utc::now() - at).to_std().ok()),
                })
            })
            .optional()
        })
    }

    pub(crate) fn save_pace(&self, learned: &crate::pace::Learned, now: Timestamp) -> Result<(), Error> {
        let now = iso(now);
        self.with(|c| {
            c.prepare_cached(statements::get("pace_state", "save"))?
                .execute(rusqlite::named_params! {
                    ":rate": learned.rate,
                    ":ceiling": learned.ceiling,
                    ":proven": learned.proven,
                    ":concurrency": learned.concurrency as i64,
                    ":probe_wait": learned.probe_wait.as_secs_f64(),
                    ":clean_for": learned.clean_for.as_secs_f64(),
                    ":now": now,
                })?;
            Ok(())
        })
    }
}

/// Seconds read back from the file: anything but a finite length of at most a day is as good as
/// none (the pace clamps the rest).
fn secs(v: Option<f64>) -> Option<std::time::Duration> {
    v.filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
        .map(|s| std::time::Duration::from_millis((s * 1_000.0) as u64))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pace::{Learned, PROBE_FIRST};

    #[test]
    fn the_probe_schedule_is_kept_and_nonsense_is_as_good_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.sqlite")).unwrap();
        let kept = Learned {
            rate: 38.0,
            ceiling: Some(38.9),
            proven: Some(39.3),
            concurrency: 3,
            probe_wait: Duration::from_secs(16 * 60),
            clean_for: Duration::from_millis(421_500),
            saved_ago: None,
        };
        let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        store.save_pace(&kept, an_hour_ago).unwrap();
        let read = store.load_pace().unwrap().unwrap();
        // When it was kept comes back too: an hour ago, give or take the test's own time.
        let ago = read.saved_ago.expect("the save's time is read back");
        assert!((3_599..3_660).contains(&ago.as_secs()), "{ago:?}");
        assert_eq!(
            Learned {
                saved_ago: None,
                ..read
            },
            kept
        );
        store
            .with(|c| {
                c.execute(
                    "UPDATE pace_state SET probe_wait_secs = -1, clean_secs = NULL",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let read = store.load_pace().unwrap().unwrap();
        assert_eq!((read.probe_wait, read.clean_for), (PROBE_FIRST, Duration::ZERO));
    }
}
