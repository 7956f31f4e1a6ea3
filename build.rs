//! Two jobs before the crate compiles:
//!
//! - Rebuild when anything under `sql/` changes: `include_dir!` (the embedded migrations and
//!   statements) cannot tell Cargo about files added to its folder on stable Rust, so a new
//!   migration would otherwise be silently left out of the binary.
//! - Fail the build when the code names a statement `sql/statements/` does not have: every
//!   `statements::get("file", "name")` with literal arguments must find `-- name: name` in
//!   `sql/statements/file.sql`. (Names built at run time, per stream, are checked by the
//!   statements module's test.)

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=sql");
    println!("cargo:rerun-if-changed=src");
    let mut missing = Vec::new();
    let mut sources = Vec::new();
    rust_files(Path::new("src"), &mut sources);
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (sql, name) in literal_statements(&text) {
            let path = Path::new("sql/statements").join(format!("{sql}.sql"));
            let defined = std::fs::read_to_string(&path).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.strip_prefix("-- name:").is_some_and(|n| n.trim() == name))
            });
            if !defined {
                missing.push(format!("{}: {sql}.{name}", file.display()));
            }
        }
    }
    if !missing.is_empty() {
        panic!(
            "statements the code uses but sql/statements/ does not define:\n  {}",
            missing.join("\n  ")
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `(file, name)` pairs of every `statements::get(` call whose two arguments are string
/// literals.
fn literal_statements(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("statements::get(") {
        rest = &rest[at + "statements::get(".len()..];
        let Some((file, after)) = literal(rest) else {
            continue;
        };
        let Some(after) = after.trim_start().strip_prefix(',') else {
            continue;
        };
        if let Some((name, _)) = literal(after) {
            found.push((file, name));
        }
    }
    found
}

/// A string literal at the start of `s` (after whitespace), and what follows it.
fn literal(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let end = s.find('"')?;
    Some((s[..end].to_owned(), &s[end + 1..]))
}
