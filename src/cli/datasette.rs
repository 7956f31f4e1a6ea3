//! `datasette-metadata`: the Datasette metadata (descriptions, canned queries, facets, the
//! dashboard) for the database, printed or written to a file for `datasette -m`.

use std::path::{Path, PathBuf};

use understory_sync::config;

use super::exit::Exit;

/// Prints the metadata, or writes it to `output` (replaced whole, readable by all: it holds the
/// schema's descriptions and the queries' SQL, nothing of the data).
pub fn metadata(
    config: &Path,
    database: Option<PathBuf>,
    output: Option<PathBuf>,
) -> Result<Exit, (Exit, anyhow::Error)> {
    let env = config::Environment::from_process();
    let db = super::status::database_of(config, database, &env)?;
    // Datasette names a database after its file, without the extension.
    let name = db
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            (
                Exit::Config,
                anyhow::anyhow!("{} has no file name to serve it under", db.display()),
            )
        })?;
    let meta =
        understory_sync::datasette::metadata(name).map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
    let mut text = serde_json::to_string_pretty(&meta).expect("JSON values always serialize");
    text.push('\n');
    match output {
        None => print!("{text}"),
        Some(path) => understory_sync::files::replace(&path, text.as_bytes(), 0o644).map_err(|e| {
            (
                Exit::Config,
                anyhow::anyhow!("cannot write {}: {e}", path.display()),
            )
        })?,
    }
    Ok(Exit::Ok)
}
