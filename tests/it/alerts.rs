//! The Prometheus alert rules shipped in `contrib/prometheus/`: promtool accepts them, their unit
//! tests pass, every alert has a case where it fires and one where it stays silent, and every
//! `understory_sync_*` metric a rule's expression names is one a real sync writes. A rule over a
//! misspelt or renamed metric is valid PromQL and never fires; only the last check sees it.

use std::collections::BTreeSet;
use std::process::Command;

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
        .filter(|n| !n.starts_with(THIRD_PARTY_ONLY) && !written.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which a sync does not write:\n{prom}"
    );

    // A third-party connection (authorization_code, refresh token): every metric.
    let (_sb, customer) = crate::third_party::connected(true).await;
    let out = crate::third_party::run(&customer, "sync", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::third_party::text(&out));
    let prom = crate::third_party::metrics(&customer);
    let written = metrics_in_textfile(&prom);
    let missing: Vec<&String> = named.iter().filter(|n| !written.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the rules name {missing:?}, which a third-party connection's sync does not write:\n{prom}"
    );
}
