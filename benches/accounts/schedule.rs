//! When the instances start: the template timer's settings, read from its file, and the random
//! delays `RandomizedDelaySec=` adds, drawn from a fixed seed.

use std::path::Path;
use std::time::Duration;

/// The draws of the random delays: fixed, so two runs of the benchmark start alike.
pub const RNG_SEED: u64 = 0x2026_1207_0015_0060;

/// The template timer's settings, and the spread the benchmark draws over.
pub struct Schedule {
    pub calendar: String,
    pub randomized: String,
    pub accuracy: Option<String>,
    pub spread: Duration,
    /// The spread is `ACCOUNTS_BENCH_SPREAD_SECS`, not the timer's.
    pub overridden: bool,
    rng: XorShift,
}

impl Schedule {
    /// Reads `timer` (the one place for its numbers); `spread_secs` replaces its
    /// `RandomizedDelaySec` for quick runs.
    pub fn read(timer: &Path, spread_secs: Option<u64>) -> Self {
        let text = std::fs::read_to_string(timer).expect("the template timer");
        let setting = |key| unit_setting(&text, "Timer", key);
        let randomized = setting("RandomizedDelaySec").expect("the timer sets RandomizedDelaySec");
        let from_timer = time_span(&randomized).expect("RandomizedDelaySec is a time span");
        let spread = spread_secs.map_or(from_timer, Duration::from_secs);
        Self {
            calendar: setting("OnCalendar").unwrap_or_default(),
            randomized,
            accuracy: setting("AccuracySec"),
            overridden: spread != from_timer,
            spread,
            rng: XorShift(RNG_SEED),
        }
    }

    /// One elapse: a delay for each of `n` instances, uniform in `[0, spread)` to the
    /// microsecond, as systemd draws a new one for every timer at every elapse.
    pub fn draw(&mut self, n: usize) -> Vec<Duration> {
        let us = self.spread.as_micros() as u64;
        (0..n)
            .map(|_| Duration::from_micros(if us == 0 { 0 } else { self.rng.next() % us }))
            .collect()
    }

    /// Prints the timer's settings and the spread the starts are drawn over.
    pub fn describe(&self) {
        println!(
            "  timer    systemd/understory-sync@.timer: OnCalendar={}, RandomizedDelaySec={}",
            self.calendar, self.randomized
        );
        let spread = if self.spread.is_zero() {
            "all at once".to_owned()
        } else {
            format!(
                "uniform over [0, {} s) after the shared elapse",
                self.spread.as_secs()
            )
        };
        println!(
            "  starts   {spread} (xorshift, seed {RNG_SEED:#x}){}",
            if self.overridden {
                ", ACCOUNTS_BENCH_SPREAD_SECS, not the timer's"
            } else {
                ""
            }
        );
        match &self.accuracy {
            None => println!(
                "  accuracy AccuracySec unset (systemd's default, 1min): under systemd the elapses then \
                 slip to a wake-up the host's timers share, at most two bursts a minute apart; \
                 ACCOUNTS_BENCH_SPREAD_SECS=0 measures all at once"
            ),
            Some(v) => println!(
                "  accuracy AccuracySec={v}: under systemd an elapse may slip by up to that, to a \
                 wake-up the host's timers share"
            ),
        }
    }
}

/// A `Key=value` of a unit file's section, the last one winning as in systemd.
fn unit_setting(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            found = Some(v.trim().to_owned());
        }
    }
    found
}

/// A systemd time span (`60`, `90s`, `1min 30s`, `2h`, `500ms`): a bare number is seconds.
fn time_span(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let ms_per_unit = match &rest[..unit_len] {
            "" | "s" | "sec" | "second" | "seconds" => 1_000.0,
            "ms" | "msec" => 1.0,
            "m" | "min" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hour" | "hours" => 3_600_000.0,
            _ => return None,
        };
        total += Duration::from_millis((value * ms_per_unit).round() as u64);
        rest = rest[unit_len..].trim_start();
    }
    Some(total)
}

/// xorshift64*: enough to draw delays, without a dependency for it.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
