//! The figures of a round: one line per instance, then the round's summary.

use std::time::Duration;

use understory_sync::counts::Counts;

use super::install::Account;
use super::{Instance, PSS_EVERY, Round, SAMPLE};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The value at quantile `q` (0.0 min, 0.5 median, 1.0 max) of `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The values of `v` at `qs`, with `digits` decimals, joined by ` / `.
fn quantiles(v: &[f64], qs: &[f64], digits: usize) -> String {
    let parts: Vec<String> = qs
        .iter()
        .map(|&q| format!("{:.digits$}", quantile(v, q)))
        .collect();
    parts.join(" / ")
}

const MIN_MEDIAN_P90_MAX: [f64; 4] = [0.0, 0.5, 0.9, 1.0];

/// The counters of the instance's run, zero when it recorded none (it failed before).
fn counts(i: &Instance) -> Counts {
    i.run.as_ref().map(|r| r.counts).unwrap_or_default()
}

/// Prints the round `r` of `accounts`: each instance, then the figures over all of them.
pub fn report(title: &str, accounts: &[Account], r: &Round, cores: usize) {
    let inst = &r.instances;
    println!("\n{title}");
    println!(
        "  {:<12} {:>5} {:>8} {:>10} {:>5} {:>9} {:>6} {:>8} {:>5} {:>8} {:>6}",
        "instance",
        "seed",
        "start s",
        "duration s",
        "exit",
        "VmHWM MiB",
        "CPU s",
        "requests",
        "429s",
        "written",
        "pace/s"
    );
    for (a, i) in accounts.iter().zip(inst) {
        let c = counts(i);
        println!(
            "  {:<12} {:>5} {:>8.2} {:>10.2} {:>5} {:>9.1} {:>6.2} {:>8} {:>5} {:>8} {:>6.1}",
            a.name,
            a.seed,
            secs(i.start),
            secs(i.end - i.start),
            i.exit.map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            mib(i.hwm_kib),
            i.cpu,
            c.requests,
            c.rate_limited,
            c.inserted + c.updated,
            i.run.as_ref().and_then(|r| r.pace_rps).unwrap_or(0.0)
        );
    }
    let first = inst.iter().map(|i| i.start).min().unwrap_or_default();
    let wall = secs(inst.iter().map(|i| i.end).max().unwrap_or_default() - first);
    let of = |f: &dyn Fn(&Instance) -> f64| inst.iter().map(f).collect::<Vec<f64>>();
    let cpu = of(&|i| i.cpu);
    let jobs_cpu: f64 = cpu.iter().sum();
    let total = |f: &dyn Fn(&Counts) -> u64| inst.iter().map(|i| f(&counts(i))).sum::<u64>();
    let all_cpu = jobs_cpu + r.sandbox_cpu + r.monitor_cpu;
    let rows = [
        (
            "instances that exited 0",
            format!(
                "{} of {}",
                inst.iter().filter(|i| i.exit == Some(0)).count(),
                inst.len()
            ),
        ),
        ("wall time, first start to last exit", format!("{wall:.1} s")),
        (
            "start offset min / median / max",
            format!("{} s", quantiles(&of(&|i| secs(i.start)), &[0.0, 0.5, 1.0], 1)),
        ),
        (
            "duration min / median / p90 / max",
            format!(
                "{} s",
                quantiles(&of(&|i| secs(i.end - i.start)), &MIN_MEDIAN_P90_MAX, 2)
            ),
        ),
        ("most instances running at once", r.peaks.running.to_string()),
        (
            "peak memory of all instances, VmRSS sum",
            format!("{:.0} MiB", mib(r.peaks.rss)),
        ),
        (
            "  RssAnon sum (private), own peak",
            format!("{:.0} MiB", mib(r.peaks.anon)),
        ),
        (
            "  Pss sum (shared pages once), own peak",
            format!(
                "{:.0} MiB, sampled every {} ms",
                mib(r.peaks.pss),
                SAMPLE.as_millis() * u128::from(PSS_EVERY)
            ),
        ),
        (
            "VmHWM per instance min / median / p90 / max",
            format!(
                "{} MiB",
                quantiles(&of(&|i| mib(i.hwm_kib)), &MIN_MEDIAN_P90_MAX, 1)
            ),
        ),
        (
            "CPU per instance min / median / p90 / max",
            format!("{} s", quantiles(&cpu, &MIN_MEDIAN_P90_MAX, 2)),
        ),
        (
            "CPU: instances / sandboxes / monitor",
            format!(
                "{jobs_cpu:.1} / {:.1} / {:.1} s, {:.0} % of {cores} cores over the wall time",
                r.sandbox_cpu,
                r.monitor_cpu,
                100.0 * all_cpu / (wall * cores as f64)
            ),
        ),
        (
            "requests, 429s, rows written",
            format!(
                "{}, {}, {}",
                total(&|c| c.requests),
                total(&|c| c.rate_limited),
                total(&|c| c.inserted + c.updated)
            ),
        ),
    ];
    println!("  ---");
    for (k, v) in rows {
        println!("  {k:<44} {v}");
    }
}
