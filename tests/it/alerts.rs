//! The Prometheus alert rules shipped in `contrib/prometheus/`: promtool accepts them, their unit
//! tests pass, every alert has a case where it fires and one where it stays silent, and every
//! `understory_sync_*` metric a rule's expression names is one a real sync (or a real `run` with
//! `[webhooks]`) writes. A rule over a misspelt or renamed metric is valid PromQL and never
//! fires; only the last check sees it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{sync_ok, write_config};
use crate::support::*;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/prometheus/understory-sync.rules.yml"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/prometheus/understory-sync.rules.test.yml"
);

/// The metrics only a third-party connection's run writes (its refresh token's).
const THIRD_PARTY_ONLY: &str = "understory_sync_refresh_token_";

/// The webhook gauges, which only `run` with `[webhooks]` writes, to `NAME-webhooks.prom` beside
/// the textfile.
const WEBHOOK_GAUGES: &str = "understory_sync_webhook_";

/// The one webhook metric of the run's own textfile, written only by a listing sync that ran
/// with a receiver up since the listing before it.
const WEBHOOK_MISSED: &str = "understory_sync_last_run_webhook_missed";

/// Whether only `run` with `[webhooks]` writes metric `name`.
fn webhook_only(name: &str) -> bool {
    name.starts_with(WEBHOOK_GAUGES) || name == WEBHOOK_MISSED
}

/// Whether `promtool` (Debian's `prometheus` package) is on PATH. Outside CI a machine without it
/// skips the promtool checks and says so; CI installs it, so there a missing one fails.
fn have_promtool() -> bool {
    match Command::new("promtool").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!(
            "promtool --version failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is not on PATH: CI installs Debian's `prometheus` package for it (.ci/run)"
            );
            eprintln!("skipped: promtool is not on PATH (Debian: apt-get install prometheus)");
            false
        }
        Err(e) => panic!("promtool could not be started: {e}"),
    }
}

/// Runs `promtool args…` and asserts it succeeds, showing what it printed if not.
fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    if !have_promtool() {
        return;
    }
    promtool(&["check", "rules", RULES]);
    promtool(&["test", "rules", RULE_TESTS]);
}

/// The alerts the rules file defines, from its `- alert: NAME` lines.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn every_alert_has_a_case_where_it_fires_and_one_where_it_stays_silent() {
    let rules = std::fs::read_to_string(RULES).unwrap();
    let tests = std::fs::read_to_string(RULE_TESTS).unwrap();
    let names = alert_names(&rules);
    assert!(names.len() >= 5, "alerts found in {RULES}: {names:?}");
    // Each `alertname: NAME` line of a test is followed by its `exp_alerts:`, empty (silent) or
    // not (fires).
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &names {
        let expected: Vec<&str> = lines
            .windows(2)
            .filter(|w| w[0] == format!("alertname: {name}"))
            .map(|w| w[1])
            .collect();
        assert!(
            expected.contains(&"exp_alerts: []"),
            "{name}: no case in {RULE_TESTS} where it stays silent"
        );
        assert!(
            expected.contains(&"exp_alerts:"),
            "{name}: no case in {RULE_TESTS} where it fires"
        );
    }
}

/// Every `understory_sync_*` name in the rules' `expr:` fields, each one line or a block whose
/// lines are indented deeper than its key.
fn metrics_in_exprs(rules: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut expr_indent = None;
    for line in rules.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = match (line.trim_start().strip_prefix("expr:"), expr_indent) {
            (Some(rest), _) => {
                expr_indent = Some(indent);
                rest
            }
            (None, Some(key)) if indent > key && !line.trim().is_empty() => line,
            _ => {
                expr_indent = None;
                continue;
            }
        };
        names.extend(metric_names(text));
    }
    names
}

/// The `understory_sync_[a-z_]+` names in `text`.
fn metric_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.match_indices("understory_sync_").map(|(at, _)| {
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    })
}

/// The metric names a textfile holds samples of.
fn metrics_in_textfile(prom: &str) -> BTreeSet<String> {
    prom.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_name_is_in_the_textfile_a_real_sync_writes() {
    let rules = std::fs::read_to_string(RULES).unwrap();
    let named = metrics_in_exprs(&rules);
    assert!(
        named.len() >= 5 && named.iter().any(|n| n.starts_with(THIRD_PARTY_ONLY)),
        "metrics found in the rules' expressions: {named:?}"
    );
    assert!(
        named.iter().any(|n| n.starts_with(WEBHOOK_GAUGES)) && named.contains(WEBHOOK_MISSED),
        "no webhook metric found in the rules' expressions: {named:?}"
    );

    // A client_credentials key: every metric but the refresh token's.
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("understory-sync.prom");
    let cfg = write_config(
        dir.path(),
        &sb,
        &format!("[metrics]\ntextfile = \"{}\"\n", textfile.display()),
    );
    sync_ok(&cfg);
    let prom = std::fs::read_to_string(&textfile).unwrap();
    let written = metrics_in_textfile(&prom);
    let missing: Vec<&String> = named
        .iter()
        .filter(|n| !n.starts_with(THIRD_PARTY_ONLY) && !webhook_only(n) && !written.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which a sync does not write:\n{prom}"
    );
    assert!(
        !written.iter().any(|n| webhook_only(n)),
        "a sync without a receiver writes webhook metrics:\n{prom}"
    );

    // A third-party connection (authorization_code, refresh token): every metric.
    let (_sb, customer) = crate::third_party::connected(true).await;
    let out = crate::third_party::run(&customer, "sync", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::third_party::text(&out));
    let prom = crate::third_party::metrics(&customer);
    let written = metrics_in_textfile(&prom);
    let missing: Vec<&String> = named
        .iter()
        .filter(|n| !webhook_only(n) && !written.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which a third-party connection's sync does not write:\n{prom}"
    );

    // `run` with `[webhooks]`: the webhook gauges beside the textfile, and the textfile of a
    // listing sync run with the receiver up since the listing before it.
    let (gauges, prom) = webhook_run_textfiles().await;
    let written = metrics_in_textfile(&gauges);
    let missing: Vec<&String> = named
        .iter()
        .filter(|n| n.starts_with(WEBHOOK_GAUGES) && !written.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which `run` does not write to its -webhooks.prom:\n{gauges}"
    );
    let written = metrics_in_textfile(&prom);
    let missing: Vec<&String> = named
        .iter()
        .filter(|n| {
            !n.starts_with(THIRD_PARTY_ONLY) && !n.starts_with(WEBHOOK_GAUGES) && !written.contains(*n)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which a listing sync of `run` with its receiver up does not write:\n{prom}"
    );
}

/// The value of `metric`'s first sample in textfile `prom`.
fn sample(prom: &str, metric: &str) -> Option<f64> {
    prom.lines()
        .find(|l| l.starts_with(&format!("{metric}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A real `run` with `[webhooks]` and a registered subscription: a booking the sandbox changes
/// is delivered and applied, while `run` lists every 2 seconds. Returns its `-webhooks.prom`
/// once it counts the delivery applied, and its textfile once a listing wrote
/// `last_run_webhook_missed`.
async fn webhook_run_textfiles() -> (String, String) {
    use crate::webhooks_run::{api_booking, cmd, hooked, listening, ok, spawn_run, stored_raw};

    let h = hooked(small(), "bookings = true").await;
    ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    ok(&mut cmd(&h.cfg, &["sync"]));
    let textfile = h.dir.path().join("state/metrics.prom");
    let gauges = h.dir.path().join("state/metrics-webhooks.prom");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        !read(&textfile).contains(WEBHOOK_MISSED),
        "a sync with no receiver up counts misses:\n{}",
        read(&textfile)
    );
    // A listing every 2 seconds rather than never: the first one with the receiver up watches
    // nothing yet, the ones after it count their misses.
    let text = std::fs::read_to_string(&h.cfg).unwrap();
    assert!(text.contains("schedule = \"0 0 1 1 *\""), "{text}");
    std::fs::write(
        &h.cfg,
        text.replace("schedule = \"0 0 1 1 *\"", "schedule = \"*/2 * * * * *\""),
    )
    .unwrap();
    let log = h.dir.path().join("run.log");
    let run = spawn_run(&h, &log);
    listening(&h.url).await;
    let touched = h.sb.touch_booking();
    // The gauges are rewritten every 15 s.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let stored = stored_raw(&h.db, &touched) == Some(api_booking(&h.sb, &touched));
        let applied = sample(&read(&gauges), "understory_sync_webhook_applied").unwrap_or(0.0);
        let missed = read(&textfile).contains(WEBHOOK_MISSED);
        if stored && applied >= 1.0 && missed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stored {stored}, applied {applied}, missed written {missed}; run's log:\n{}\ngauges:\n{}\ntextfile:\n{}",
            read(&log),
            read(&gauges),
            read(&textfile)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (gauges, prom) = (read(&gauges), read(&textfile));
    assert_eq!(
        sample(&gauges, "understory_sync_webhook_receiver_up"),
        Some(1.0),
        "{gauges}"
    );
    let mut run = run;
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    let _ = run.wait();
    (gauges, prom)
}
