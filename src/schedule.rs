//! The cron loop of `understory-sync run`: parse the `schedule` expression, sleep until it
//! fires, run a sync, repeat. A tick that comes while a sync still runs is skipped, never queued.
//!
//! Fire times are computed in UTC, so a schedule means the same on every server.
//!
//! Both the standard 5-field crontab syntax and the `cron` crate's seconds-first 6/7-field form
//! are accepted. The two number weekdays differently (crontab: 0 or 7 is Sunday; `cron`: 1 is
//! Sunday), so 5-field expressions have their weekday numbers translated, not just a seconds
//! field prepended — `1-5` must stay Monday to Friday.

use std::future::Future;
use std::str::FromStr;

use chrono::Utc;
use cron::Schedule;

use crate::shutdown::Stop;

#[derive(Debug, thiserror::Error)]
#[error("config key `schedule`: '{expr}' is not a cron expression: {why} (e.g. \"*/15 * * * *\")")]
pub(crate) struct Error {
    pub(crate) expr: String,
    pub(crate) why: String,
}

/// Parses a 5-field crontab or 6/7-field seconds-first expression.
pub(crate) fn parse(expr: &str) -> Result<Schedule, Error> {
    let err = |why: String| Error {
        expr: expr.to_owned(),
        why,
    };
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let normalised = match fields.len() {
        5 => {
            for (field, (what, lo, hi)) in fields.iter().zip(CRONTAB_RANGES) {
                in_range(field, what, lo, hi).map_err(err)?;
            }
            let dow = crontab_weekdays(fields[4]).map_err(err)?;
            format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3])
        }
        6 | 7 => fields.join(" "),
        n => {
            return Err(err(format!(
                "it has {n} fields; use 5 (crontab) or 6 (seconds first)"
            )));
        }
    };
    let schedule = Schedule::from_str(&normalised).map_err(|e| err(e.to_string().replace('\n', " ")))?;
    // `0 0 30 2 *` parses, and never fires: `run` would wait for ever (or, once the crate
    // gives up looking, stop).
    if schedule.upcoming(Utc).next().is_none() {
        return Err(err(
            "it never fires (no date matches it, e.g. February 30th)".to_owned()
        ));
    }
    Ok(schedule)
}

/// The crontab fields' names and ranges, for a message the `cron` crate would word wrongly
/// (it says "must be less than 59" for a minute of 61).
const CRONTAB_RANGES: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
];

/// Every number in a crontab field (`1-5`, `*/15`, `3,30`) within `lo..=hi`; names pass.
fn in_range(field: &str, what: &str, lo: u32, hi: u32) -> Result<(), String> {
    for item in field.split(',') {
        let (range, _step) = item.split_once('/').unwrap_or((item, ""));
        for part in range.split('-') {
            if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
                let n: u32 = part
                    .parse()
                    .map_err(|_| format!("{what} '{part}' is not a number"))?;
                if !(lo..=hi).contains(&n) {
                    return Err(format!("{what} {n} is out of range {lo}-{hi}"));
                }
            }
        }
    }
    Ok(())
}

/// Translates a crontab weekday field (0–7, Sunday = 0 or 7) to the `cron` crate's (1–7,
/// Sunday = 1). Names (`MON-FRI`) pass through unchanged.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<Option<u32>, String> {
        if s.chars().all(|c| c.is_ascii_digit()) {
            let n: u32 = s.parse().map_err(|_| format!("bad weekday '{s}'"))?;
            if n > 7 {
                return Err(format!("weekday {n} is out of range 0-7"));
            }
            Ok(Some(n))
        } else {
            Ok(None)
        }
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step = step.map(|s| format!("/{s}")).unwrap_or_default();
        match range.split_once('-') {
            Some((a, b)) => match (day(a)?, day(b)?) {
                (Some(a), Some(b)) if a <= b => {
                    // 0..=b and a..=7 both may touch Sunday; split so each part is ascending.
                    let (lo, hi) = (if a == 0 { 1 } else { a + 1 }, if b == 7 { 7 } else { b + 1 });
                    out.push(format!("{lo}-{hi}{step}"));
                    if a == 0 && b == 7 {
                        // already every day
                    } else if b == 7 && step.is_empty() {
                        out.push("1".to_owned());
                    }
                }
                (Some(_), Some(_)) => return Err(format!("weekday range '{range}' runs backwards")),
                _ => out.push(format!("{range}{step}")),
            },
            None => match day(range)? {
                Some(n) => out.push(format!("{}{step}", n % 7 + 1)),
                None => out.push(format!("{range}{step}")),
            },
        }
    }
    Ok(out.join(","))
}

/// What happened at one tick of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Started,
    /// The previous sync was still running.
    Skipped,
}

/// Fires `job` at each of `schedule`'s times until `stop`; returns when stopped, after the sync
/// in flight (which sees the same stop) has finished. `on_tick` observes every tick.
pub async fn run_loop<F, Fut>(schedule: &Schedule, stop: Stop, mut job: F, mut on_tick: impl FnMut(Tick))
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let Some(next) = schedule.upcoming(Utc).next() else {
            tracing::warn!("the schedule has no future fire time; stopping");
            break;
        };
        tracing::info!(next_run = %next.to_rfc3339(), "next scheduled sync");
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        stop.sleep(wait).await;
        if stop.is_stopped() {
            break;
        }
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            tracing::warn!(tick = %next.to_rfc3339(), "the previous sync is still running; skipping this tick");
            on_tick(Tick::Skipped);
        } else {
            tracing::info!(tick = %next.to_rfc3339(), "scheduled sync starting");
            on_tick(Tick::Started);
            running = Some(tokio::spawn(job()));
        }
        // Never fire twice for the same instant.
        while Utc::now() <= next {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    if let Some(h) = running {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::*;

    fn next_after(expr: &str, y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<Utc> {
        let start = Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        parse(expr).unwrap().after(&start).next().unwrap()
    }

    #[test]
    fn a_schedule_that_never_fires_or_is_out_of_range_is_refused_by_name() {
        let why = |e: &str| parse(e).unwrap_err().why;
        assert!(why("0 0 30 2 *").contains("never fires"), "{}", why("0 0 30 2 *"));
        assert_eq!(why("61 * * * *"), "minute 61 is out of range 0-59");
        assert_eq!(why("0 24 * * *"), "hour 24 is out of range 0-23");
        assert_eq!(why("0 0 0 * *"), "day of month 0 is out of range 1-31");
        assert_eq!(why("0 0 1 1-13 *"), "month 13 is out of range 1-12");
        assert!(parse("59 23 31 12 7").is_ok());
    }

    #[test]
    fn five_and_six_field_expressions_parse() {
        assert!(parse("*/15 * * * *").is_ok());
        assert!(parse("0 */15 * * * *").is_ok());
        assert!(parse("0 0 3 * * Sun *").is_ok());
        let t = next_after("30 2 * * *", 2026, 11, 23, 0);
        assert_eq!((t.hour(), t.minute(), t.second()), (2, 30, 0));
    }

    #[test]
    fn crontab_weekday_numbers_keep_their_meaning() {
        // 2026-11-21 is a Saturday.
        assert_eq!(next_after("0 9 * * 1-5", 2026, 11, 21, 0).weekday(), Weekday::Mon);
        assert_eq!(next_after("0 9 * * 0", 2026, 11, 21, 10).weekday(), Weekday::Sun);
        assert_eq!(next_after("0 9 * * 7", 2026, 11, 21, 10).weekday(), Weekday::Sun);
        assert_eq!(next_after("0 9 * * 6", 2026, 11, 20, 10).weekday(), Weekday::Sat);
        assert_eq!(
            next_after("0 9 * * 5-7", 2026, 11, 23, 10).weekday(),
            Weekday::Fri
        );
        assert_eq!(
            next_after("0 9 * * 5-7", 2026, 11, 21, 10).weekday(),
            Weekday::Sun
        );
        assert_eq!(
            next_after("0 9 * * MON-FRI", 2026, 11, 21, 0).weekday(),
            Weekday::Mon
        );
    }

    #[test]
    fn garbage_is_a_clear_error_that_shows_the_expression() {
        for bad in [
            "",
            "every five minutes",
            "* * *",
            "61 * * * *",
            "0 9 * * 8",
            "0 9 * * 5-2",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("`schedule`") && e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_loop_fires_on_schedule_skips_overlaps_and_stops() {
        use std::sync::{Arc, Mutex};
        let schedule = parse("* * * * * *").unwrap(); // every second
        let (trigger, stop) = crate::shutdown::channel();
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t = Arc::clone(&ticks);
        let r = Arc::clone(&runs);
        let job_stop = stop.clone();
        let looping = tokio::spawn(async move {
            run_loop(
                &schedule,
                stop,
                move || {
                    let r = Arc::clone(&r);
                    let s = job_stop.clone();
                    async move {
                        r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        s.sleep(std::time::Duration::from_millis(2_300)).await; // a slow sync
                    }
                },
                move |tick| t.lock().unwrap().push(tick),
            )
            .await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(5_600)).await;
        trigger.stop();
        tokio::time::timeout(std::time::Duration::from_secs(3), looping)
            .await
            .expect("stops promptly")
            .unwrap();
        let ticks = ticks.lock().unwrap().clone();
        let started = ticks.iter().filter(|t| **t == Tick::Started).count();
        let skipped = ticks.iter().filter(|t| **t == Tick::Skipped).count();
        assert!(ticks.len() >= 4, "fires every second: {ticks:?}");
        assert!(
            started >= 2 && skipped >= 2,
            "overlapping ticks are skipped, not queued: {ticks:?}"
        );
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst) as usize, started);
    }
}
