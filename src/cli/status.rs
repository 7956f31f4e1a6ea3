//! `status`: recent runs, checkpoints, rows and quarantine, read from the database only.

use std::path::PathBuf;

use understory_sync::config;

use super::Exit;

/// `status`: reads the database only.
pub fn status(
    config: &std::path::Path,
    database: Option<PathBuf>,
    json: bool,
) -> Result<Exit, (Exit, anyhow::Error)> {
    let db = match database {
        Some(db) => db,
        None => config::database_path(config, &config::Environment::from_process())
            .map_err(|e| (Exit::Config, e.into()))?,
    };
    let st = understory_sync::store::status(&db, 10, &understory_sync::streams::tables())
        .map_err(|e| (Exit::Database, e.into()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).map_err(|e| (Exit::Internal, e.into()))?
        );
        return Ok(Exit::Ok);
    }
    println!("database {}", st.database.display());
    println!("recent runs:");
    for r in &st.runs {
        println!(
            "  #{:<5} {} → {}  {:<11} +{} ~{} ={}  requests {} retries {} 429s {} paused {}s pace {}{}",
            r.id,
            r.started_at,
            r.ended_at.as_deref().unwrap_or("…"),
            r.status,
            r.rows_inserted,
            r.rows_updated,
            r.rows_unchanged,
            r.requests,
            r.retries,
            r.rate_limited,
            r.paused_ms / 1000,
            r.pace_rps.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}/s")),
            r.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
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
    println!("rows:");
    for (t, n) in &st.rows {
        println!("  {t:<20} {n:>10}");
    }
    if st.quarantine.is_empty() {
        println!("quarantine: empty");
    } else {
        println!("quarantine (items that could not be read; see the quarantine table):");
        for (t, n) in &st.quarantine {
            println!("  {t:<20} {n:>10}");
        }
    }
    Ok(Exit::Ok)
}
