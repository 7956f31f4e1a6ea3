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
    if json {
        print_json(&st, &connection)?;
    } else {
        print_text(&st, &connection);
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
fn database_of(
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

fn print_json(st: &Status, connection: &Connection) -> Result<(), (Exit, anyhow::Error)> {
    let mut v = serde_json::to_value(st).map_err(|e| (Exit::Internal, e.into()))?;
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
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| format!("checkpoint {}s old", (now - t.to_utc()).num_seconds()))
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
    for (stream, n) in &st.staged {
        println!(
            "  {stream:<20} {n} parents staged, waiting for the fan-out to fetch their per-parent lists"
        );
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
