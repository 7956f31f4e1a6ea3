//! `status`: recent runs, checkpoints, rows and quarantine, read from the database only.

use std::path::PathBuf;

use understory_sync::auth::token_vault::{Info, Vault};
use understory_sync::config;
use understory_sync::store::Status;

use super::exit::Exit;

/// A third-party connection's token file and what it holds (None: nothing stored yet).
type Connection = Option<(PathBuf, Option<Info>)>;

/// `status`: reads the database only.
pub fn status(
    config: &std::path::Path,
    database: Option<PathBuf>,
    json: bool,
) -> Result<Exit, (Exit, anyhow::Error)> {
    let env = config::Environment::from_process();
    let db = database_of(config, database, &env)?;
    let st = understory_sync::store::status(&db, 10, &understory_sync::streams::tables())
        .map_err(|e| (Exit::Database, e.into()))?;
    let connection = connection_of(config, &env)?;
    let subscriptions = subscriptions_of(config, &env);
    if json {
        print_json(&st, &connection, &subscriptions)?;
    } else {
        print_text(&st, &connection);
        print_webhooks(&st, &subscriptions);
        if st.runs.first().is_some_and(|r| r.status == "running") && !understory_sync::lock::holder_alive(&db)
        {
            println!(
                "note: the newest run is marked running, but no process holds the database: it was killed (out of memory, SIGKILL) or crashed; the next run marks it abandoned"
            );
        }
    }
    Ok(Exit::Ok)
}

/// The database `--database` names, or the config's.
pub(super) fn database_of(
    config: &std::path::Path,
    database: Option<PathBuf>,
    env: &config::Environment,
) -> Result<PathBuf, (Exit, anyhow::Error)> {
    match database {
        Some(db) => Ok(db),
        // Bare `status` where no config is: say how to name the database, rather than how to
        // write a config (which a reader of someone else's database does not need).
        None if matches!(understory_sync::access::exists(config), Ok(false)) => Err((
            Exit::Config,
            anyhow::anyhow!(
                "no config at {}: name the job's config with --config FILE, or the database with --database FILE",
                config.display()
            ),
        )),
        None => config::database_path(config, env).map_err(|e| (Exit::Config, e.into())),
    }
}

/// The subscriptions whose secrets the config's receiver holds (`None`: no `[webhooks]`), or
/// why they cannot be read (an analyst may not read the service's secrets file).
type Subscriptions = Option<Result<Vec<understory_sync::webhooks::secrets::Entry>, String>>;

fn subscriptions_of(config: &std::path::Path, env: &config::Environment) -> Subscriptions {
    if !matches!(understory_sync::access::exists(config), Ok(true)) {
        return None;
    }
    let path = config::webhook_secrets_path(config, env).ok().flatten()?;
    Some(
        understory_sync::webhooks::secrets::Secrets::new(path)
            .entries()
            .map_err(|e| e.to_string()),
    )
}

/// The webhook path's health: what arrived, what waits, and what the listing sync had to catch.
fn print_webhooks(st: &Status, subscriptions: &Subscriptions) {
    match subscriptions {
        None => {}
        Some(Ok(entries)) if entries.is_empty() => {
            println!("webhooks: no subscription registered here (`understory-sync webhooks register`)");
        }
        Some(Ok(entries)) => {
            for e in entries {
                println!(
                    "webhooks: subscription {} → {} (registered {})",
                    e.id, e.url, e.registered_at
                );
            }
        }
        Some(Err(e)) => println!("webhooks: subscriptions unknown: {e}"),
    }
    let Some(h) = &st.webhooks else {
        return;
    };
    let state = match (&h.receiving_since, &h.stopped_at) {
        (Some(since), None) => format!("receiving since {since}"),
        (_, Some(at)) => format!("stopped at {at}"),
        _ => "never started".to_owned(),
    };
    println!(
        "webhooks: {state}; received {} applied {} (failed {}) duplicates {} refused {}; waiting {}{}",
        h.received,
        h.applied,
        h.failed,
        h.duplicates,
        h.refused,
        h.waiting,
        h.oldest_waiting_at
            .as_deref()
            .map(|at| {
                let age = understory_sync::time::from_iso(at)
                    .map(|t| (chrono::Utc::now() - t).num_seconds().max(0));
                match age {
                    Some(secs) => format!(" (the oldest for {secs} s, since {at})"),
                    None => format!(" (the oldest since {at})"),
                }
            })
            .unwrap_or_default()
    );
    if let Some(at) = &h.last_applied_at {
        println!(
            "webhooks: last applied {at}, {} after its event",
            h.last_lag_ms
                .map_or_else(|| "?".to_owned(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
        );
    }
    if let Some(missed) = h.last_run_missed {
        println!(
            "webhooks: the last listing sync caught {missed} changes no delivery had brought ({} since the receiver started)",
            h.missed_since_start.unwrap_or(missed)
        );
    }
}

/// A third-party connection's token file, read without its key: only its metadata is clear.
fn connection_of(
    config: &std::path::Path,
    env: &config::Environment,
) -> Result<Connection, (Exit, anyhow::Error)> {
    let token_file = if matches!(understory_sync::access::exists(config), Ok(true)) {
        config::token_file_path(config, env).map_err(|e| (Exit::Config, e.into()))?
    } else {
        None
    };
    match token_file {
        Some(path) => {
            let info = Vault::new(path.clone())
                .info()
                .map_err(|e| (Exit::Auth, e.into()))?;
            Ok(Some((path, info)))
        }
        None => Ok(None),
    }
}

fn print_json(
    st: &Status,
    connection: &Connection,
    subscriptions: &Subscriptions,
) -> Result<(), (Exit, anyhow::Error)> {
    let mut v = serde_json::to_value(st).map_err(|e| (Exit::Internal, e.into()))?;
    if let Some(subs) = subscriptions {
        v["webhook_subscriptions"] =
            match subs {
                Ok(entries) => serde_json::json!(entries
                .iter()
                .map(|e| serde_json::json!({"id": e.id, "url": e.url, "registered_at": e.registered_at}))
                .collect::<Vec<_>>()),
                Err(e) => serde_json::json!({"error": e}),
            };
    }
    if let Some((path, info)) = connection {
        v["refresh_token"] = serde_json::json!({
            "token_file": path,
            "stored": info.is_some(),
            "issued_at": info.as_ref().map(|i| i.issued_at),
            "connected_at": info.as_ref().map(|i| i.connected_at),
            "expires_at": info.as_ref().map(|i| i.expires_at()),
            "expiring": info.as_ref().map(|i| i.is_aging(chrono::Utc::now())),
        });
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| (Exit::Internal, e.into()))?
    );
    Ok(())
}

fn print_text(st: &Status, connection: &Connection) {
    println!("database {}", st.database.display());
    if let Some((path, info)) = connection {
        println!("connection: {}", describe_connection(path, info.as_ref()));
    }
    println!("recent runs:");
    for r in &st.runs {
        let c = &r.counts;
        println!(
            "  #{:<5} {} → {}  {:<11} +{} ~{} ={} -{}  requests {} retries {} 429s {} paused {}s pace {}{}",
            r.id,
            r.started_at,
            r.ended_at.as_deref().unwrap_or("…"),
            r.status,
            c.inserted,
            c.updated,
            c.unchanged,
            c.removed,
            c.requests,
            c.retries,
            c.rate_limited,
            r.paused_ms / 1000,
            r.pace_rps.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}/s")),
            r.error
                .as_deref()
                .map(|e| format!("  {}: {e}", ending(&r.status)))
                .unwrap_or_default()
        );
    }
    print_pace(st);
    print_streams(st);
    println!("rows:");
    for (t, n) in &st.rows {
        println!("  {t:<20} {n:>10}");
    }
    for (table, n) in &st.deferred_indexes {
        println!(
            "indexes: {n} indexes of {table} are set aside until its first full load completes (queries on it are slower until then)"
        );
    }
    if st.quarantine.is_empty() {
        println!("quarantine: empty");
    } else {
        println!("quarantine (items that could not be read; see the quarantine table):");
        for (t, n) in &st.quarantine {
            println!("  {t:<20} {n:>10}");
        }
    }
}

/// What a run's message is: a stop asked for (SIGTERM/SIGINT, `sync.max_run_secs`) is no
/// error, and the next run resumes.
fn ending(status: &str) -> &'static str {
    if status == "interrupted" {
        "stopped"
    } else {
        "error"
    }
}

/// Each stream's checkpoint, and the parents waiting for a fan-out.
fn print_streams(st: &Status) {
    println!("streams:");
    let now = chrono::Utc::now();
    for s in &st.streams {
        let age = s
            .cursor_saved_at
            .as_deref()
            .and_then(understory_sync::time::from_iso)
            .map(|t| format!("checkpoint {}s old", (now - t).num_seconds()))
            .unwrap_or_else(|| "no pass in progress".to_owned());
        println!(
            "  {:<20} high-water mark {:<26} {}{}",
            s.stream,
            s.high_water_mark.as_deref().unwrap_or("-"),
            age,
            s.pass_in_progress
                .as_deref()
                .map(|p| format!(" ({p} pass, {} pages)", s.pass_pages))
                .unwrap_or_default()
        );
    }
    let rate = st
        .pace
        .as_ref()
        .map(|p| p.budget_rps.unwrap_or(p.pace_rps))
        .filter(|r| r.is_finite() && *r > 0.0);
    for (stream, n) in &st.staged {
        // Each staged parent costs a request per per-parent list: what is left is known, so its
        // time at the learned budget is too. A list's walk has no such total (the API does not
        // tell a list's length), so none is guessed for it.
        let lists = understory_sync::streams::ALL
            .iter()
            .filter(|s| s.parent().is_some_and(|p| p.name == stream))
            .count()
            .max(1);
        let left = rate.map_or_else(String::new, |r| {
            format!(
                ", about {} left at {r:.1} requests/s ({lists} per parent)",
                duration(*n as f64 * lists as f64 / r)
            )
        });
        println!(
            "  {stream:<20} {n} parents staged, waiting for the fan-out to fetch their per-parent lists{left}"
        );
    }
    if !st.staged.is_empty() {
        println!("  (a list's own walk has no estimate: the API does not tell a list's length)");
    }
}

/// The pace the last run kept: the budget it learned and how much of it the newest run used.
fn print_pace(st: &Status) {
    let Some(p) = &st.pace else {
        println!("pace: none kept yet");
        return;
    };
    let used = st.runs.first().and_then(|r| {
        let start = understory_sync::time::from_iso(&r.started_at)?;
        let end = match &r.ended_at {
            Some(e) => understory_sync::time::from_iso(e)?,
            None => chrono::Utc::now(),
        };
        let secs = (end - start).num_milliseconds() as f64 / 1_000.0;
        (secs >= 1.0).then(|| r.counts.requests as f64 / secs)
    });
    match p.budget_rps {
        Some(budget) => println!(
            "pace: learned budget {budget:.1} requests/s (just under where the API last answered 429: it states none){}",
            used.map_or_else(String::new, |u| format!(
                "; the newest run sent {u:.1}/s, {:.0} % of it",
                100.0 * u / budget
            ))
        ),
        None => println!(
            "pace: no budget learned yet (no 429 so far), pace {:.1} requests/s{}",
            p.pace_rps,
            used.map_or_else(String::new, |u| format!("; the newest run sent {u:.1}/s"))
        ),
    }
}

/// A length of time to read: seconds, minutes or hours.
fn duration(secs: f64) -> String {
    match secs {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 90.0 * 60.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3_600.0),
    }
}

/// One line on a third-party connection's refresh token: when issued, when it expires.
pub fn describe_connection(path: &std::path::Path, info: Option<&Info>) -> String {
    let Some(info) = info else {
        return format!(
            "no refresh token stored at {}: run `understory-sync connect`",
            path.display()
        );
    };
    let now = chrono::Utc::now();
    let warning = if info.is_aging(now) {
        "; older than 25 days and not rotated: re-run `understory-sync connect` before it expires"
    } else {
        ""
    };
    format!(
        "refresh token issued {} ({} days ago; connected {}), expires {} unless a sync rotates it{warning}",
        info.issued_at.format("%Y-%m-%d %H:%M:%SZ"),
        info.age_days(now),
        info.connected_at.format("%Y-%m-%d"),
        info.expires_at().format("%Y-%m-%d %H:%M:%SZ"),
    )
}
