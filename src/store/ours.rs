//! Our file only: before the job changes a byte of an existing file (WAL mode, migrations), it
//! makes sure the file is an understory-sync database this version can migrate. `database` is
//! a path an operator typed: it may name another application's SQLite file, or a file a newer
//! version of the job has already migrated past what this one knows.
//!
//! The file's 100-byte header is read directly; a SQLite file without our `application_id` is
//! looked into through an `immutable` read-only connection, which takes no lock and creates no
//! `-wal` or `-shm` file, so a refused file is left byte for byte as it was.

use std::io::Read as _;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::error::Error;

/// The header's `application_id` of our databases: the bytes "UnSy" (migration 15).
pub(crate) const APPLICATION_ID: u32 = u32::from_be_bytes(*b"UnSy");

/// A table only our databases have, which identifies a file from before `APPLICATION_ID`.
const OUR_TABLE: &str = "sync_state";

/// Whether the file at `path` may be opened, migrated and written by this version, which
/// knows schema versions up to `latest`. A missing or empty file is ours to create.
pub(super) fn check(path: &Path, latest: usize) -> Result<(), Error> {
    let refuse = |why: String| Error::NotOurs {
        path: path.to_owned(),
        why,
    };
    // SQLite would resolve a link and write through it (its `-wal` and `-shm` too): a link
    // planted where the database is to be created must not redirect the job's writes.
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(
                "is a symbolic link; set `database` to the file itself".into(),
            ));
        }
        // A FIFO or a device would block the read below, or feed it for ever.
        Ok(m) if !m.is_file() => {
            return Err(refuse(
                "is not a regular file; `database` must name this job's file".into(),
            ));
        }
        _ => {}
    }
    let mut header = [0u8; 100];
    let read = match std::fs::File::open(path) {
        Ok(mut f) => read_up_to(&mut f, &mut header),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Access(crate::access::describe(path, &e))),
    }
    .map_err(|e| Error::Access(crate::access::describe(path, &e)))?;
    if read == 0 {
        return Ok(());
    }
    if read < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(refuse(
            "is not a SQLite database; `database` must name this job's file (a new name is created)".into(),
        ));
    }
    // In WAL mode the newest header may still be in the `-wal` file, not yet copied back.
    let wal = newest_header_in_wal(path).map_err(|e| Error::Access(crate::access::describe(path, &e)))?;
    let committed_in_wal = wal.is_some();
    if let Some(Some(newer)) = wal {
        header = newer;
    }
    let user_version = u32::from_be_bytes([header[60], header[61], header[62], header[63]]);
    let application_id = u32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    match application_id {
        APPLICATION_ID => {}
        // Written before migration 15, or by a first run killed before its first migration
        // committed. The immutable read sees the main file only, whose tables may all still
        // be in the WAL: ours if the main file has our tables, or none (with a schema version
        // from a migration, or nothing committed at all).
        0 => {
            let mut tables = tables(path).map_err(|e| refuse(format!("cannot be read as SQLite ({e})")))?;
            if tables.is_empty() && committed_in_wal {
                // Everything is still in the WAL: read a private copy of the file and its WAL
                // (the originals, and their `-shm`, stay untouched).
                tables =
                    tables_of_a_copy(path).map_err(|e| refuse(format!("cannot be read as SQLite ({e})")))?;
            }
            let ours = tables.iter().any(|t| t == OUR_TABLE) || (tables.is_empty() && !committed_in_wal);
            if !ours {
                return Err(refuse(
                    "is another application's SQLite database (none of this job's tables); `database` must name this job's file".into(),
                ));
            }
        }
        other => {
            return Err(refuse(format!(
                "belongs to another application (its application_id is {other:#010x}, not understory-sync's); `database` must name this job's file"
            )));
        }
    }
    if user_version as usize > latest {
        return Err(refuse(format!(
            "was migrated by a newer understory-sync to schema version {user_version}; this one knows up to {latest}: install the newer version (the file was not changed)"
        )));
    }
    Ok(())
}

/// From the `-wal` file beside `path`: `None` when it has no committed frame; otherwise the
/// first 100 bytes of the last committed copy of page 1 (the database header), if a committed
/// transaction wrote it. Frames count while their salts match the WAL header's (SQLite's own
/// rule for which frames belong to the current WAL, short of the checksums).
fn newest_header_in_wal(path: &Path) -> std::io::Result<Option<Option<[u8; 100]>>> {
    let wal = match std::fs::File::open(format!("{}-wal", path.display())) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut wal = std::io::BufReader::new(wal);
    let mut head = [0u8; 32];
    if read_up_to(wal.get_mut(), &mut head)? < head.len() {
        return Ok(None);
    }
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let page_size = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if magic & !1 != 0x377f_0682 || !(512..=65_536).contains(&page_size) {
        return Ok(None);
    }
    let salts = &head[16..24];
    let mut frame = vec![0u8; 24 + page_size];
    let mut page1: Option<[u8; 100]> = None;
    let mut pending: Option<[u8; 100]> = None;
    let mut committed = false;
    loop {
        if read_up_to(wal.get_mut(), &mut frame)? < frame.len() || &frame[8..16] != salts {
            break;
        }
        let page = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let commit = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) != 0;
        if page == 1 {
            let mut h = [0u8; 100];
            h.copy_from_slice(&frame[24..124]);
            pending = Some(h);
        }
        if commit {
            committed = true;
            if pending.is_some() {
                page1 = pending.take();
            }
        }
    }
    Ok(committed.then_some(page1))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A WAL larger than this is not copied to be looked into: the file is refused instead.
const MAX_WAL_COPY: u64 = 256 * 1024 * 1024;

/// The tables of the file at `path` with its WAL applied, read from a copy of both in a private
/// temporary directory, so that not even the `-shm` of the original is opened.
fn tables_of_a_copy(path: &Path) -> std::io::Result<Vec<String>> {
    use std::os::unix::fs::DirBuilderExt as _;
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal)?.len() > MAX_WAL_COPY {
        return Err(std::io::Error::other("its WAL is too large to look into"));
    }
    let dir = std::env::temp_dir().join(format!(
        "understory-sync-check-{:016x}",
        chacha20poly1305::aead::rand_core::RngCore::next_u64(&mut chacha20poly1305::aead::OsRng)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let looked = (|| {
        let copy = dir.join("db");
        std::fs::copy(path, &copy)?;
        std::fs::copy(&wal, dir.join("db-wal"))?;
        let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(std::io::Error::other)?;
        let mut stmt = conn
            .prepare(super::statements::get("sqlite_schema", "tables"))
            .map_err(std::io::Error::other)?;
        stmt.query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(std::io::Error::other)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    looked
}

/// The names of the tables in the file, read without a lock and without touching `-wal`/`-shm`.
fn tables(path: &Path) -> rusqlite::Result<Vec<String>> {
    let conn = open_immutable(path)?;
    let mut stmt = conn.prepare(super::statements::get("sqlite_schema", "tables"))?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// A connection to the main file alone, as `immutable`: no lock, no `-wal`, no `-shm` opened
/// or created. Only where nothing can change the file meanwhile (`read_only::read_whole_file`
/// says how it makes sure).
pub(super) fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = url::Url::from_file_path(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
        .map_err(|()| rusqlite::Error::InvalidPath(path.to_owned()))?;
    uri.set_query(Some("immutable=1"));
    Connection::open_with_flags(
        uri.as_str(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_id_spells_unsy() {
        assert_eq!(APPLICATION_ID, 1_433_293_689, "sql/migrations/15-application-id");
    }
}
