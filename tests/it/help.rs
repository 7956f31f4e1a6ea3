//! `--help` describes every flag: an operator reading `understory-sync <command> --help` learns
//! what each one does without opening the README.

use std::process::Command;

use crate::cli::BIN;

/// Every command whose flags an operator types.
const COMMANDS: [&str; 8] = [
    "sandbox",
    "sync",
    "run",
    "check",
    "status",
    "connect",
    "demo",
    "datasette-metadata",
];

/// Whether `line` (trimmed) starts a flag's entry: `--name …` or `-x, --name …`. Possible values
/// (`- page: …`) do not.
fn is_flag(line: &str) -> bool {
    let b = line.as_bytes();
    line.starts_with("--")
        || (b.len() > 5 && b[0] == b'-' && b[1].is_ascii_alphanumeric() && line[2..].starts_with(", --"))
}

/// The flags (their long name) in `help`'s Options section that have no description: no text
/// after the flag on its line (the short layout) nor on the next line (the long layout), where a
/// bare `[default: …]` or `[env: …]` does not count.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help
        .lines()
        .skip_while(|l| l.trim() != "Options:")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect();
    assert!(!lines.is_empty(), "no Options section in:\n{help}");
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if !is_flag(t) {
            continue;
        }
        let (spec, rest) = t.split_once("  ").unwrap_or((t, ""));
        let text = match rest.trim() {
            "" => lines.get(i + 1).map_or("", |l| l.trim()),
            same_line => same_line,
        };
        if text.is_empty() || text.starts_with('[') || is_flag(text) {
            let long = spec
                .split([',', ' '])
                .find(|w| w.starts_with("--"))
                .unwrap_or(spec);
            out.push(long.to_owned());
        }
    }
    out
}

fn help(command: &str, flag: &str) -> String {
    let out = Command::new(BIN).args([command, flag]).output().unwrap();
    assert!(out.status.success(), "{command} {flag}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_flag_of_every_command_has_a_description() {
    for command in COMMANDS {
        // `--help` is the long layout (description on the next line) when any flag has long
        // help, `-h` always the short one (description beside the flag): check both.
        for flag in ["--help", "-h"] {
            let text = help(command, flag);
            assert_eq!(
                undescribed(&text),
                Vec::<String>::new(),
                "`{command} {flag}`: flags without a description:\n{text}"
            );
        }
    }
}

#[test]
fn the_check_finds_a_flag_without_a_description_in_either_layout() {
    let long = "Options:\n      --port <PORT>\n          [default: 8787]\n\n      --seed <SEED>\n          \n\n      --bind <BIND>\n          The address\n\n  -h, --help\n          Print help\n";
    assert_eq!(undescribed(long), ["--port", "--seed"]);
    let short = "Options:\n  -c, --config <PATH>  [default: x.toml]\n      --json\n      --database <D>  Read this\n  -h, --help  Print help\n";
    assert_eq!(undescribed(short), ["--config", "--json"]);
}

/// `--help` ends the way a man page does: the files, every exit code the README's table lists
/// (one line each), and the environment.
#[test]
fn help_names_the_files_every_exit_code_and_the_environment() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    for section in ["Files:", "Exit status:", "Environment:"] {
        assert!(help.lines().any(|l| l == section), "no {section} in:\n{help}");
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let codes: Vec<&str> = readme
        .split("### Exit codes")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next())
        .filter(|c| c.parse::<u8>().is_ok())
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    let exit_status = help.split("Exit status:").nth(1).unwrap();
    for code in codes {
        assert!(
            exit_status.lines().any(|l| l.starts_with(&format!("  {code}  "))),
            "--help does not explain exit code {code}"
        );
    }
}

/// Every command `understory-sync --help` lists (but `help`).
fn listed_commands() -> Vec<String> {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    assert!(listed.len() > COMMANDS.len(), "{help}");
    listed
}

/// `man DIR` writes the pages the package installs: one for the program, listing every command
/// and every entry of the help's closing sections, and one per command with its flags.
#[test]
fn man_writes_a_page_per_command_with_the_flags_help_shows() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let main = std::fs::read_to_string(dir.path().join("understory-sync.1")).unwrap();
    // roff escapes each dash: `\-\-config`.
    let roff = |s: &str| s.replace('-', "\\-");
    for section in [
        ".SH FILES",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH SUBCOMMANDS",
    ] {
        assert!(
            main.contains(section),
            "no {section} in understory-sync.1:\n{main}"
        );
    }
    // Each entry (`  term  text`) of the help's closing sections is there, its term and text.
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let closing = help
        .split("\nFiles:\n")
        .nth(1)
        .expect("--help has a Files: section");
    let mut entries = 0;
    for entry in closing.lines().filter_map(|l| l.strip_prefix("  ")) {
        let (term, text) = entry.split_once("  ").unwrap_or((entry, ""));
        assert!(
            main.contains(&format!("\\fB{}\\fR", roff(term))) && main.contains(&roff(text.trim())),
            "understory-sync.1 lacks the entry {entry:?}"
        );
        entries += 1;
    }
    assert!(entries >= 20, "{entries} entries in:\n{closing}");
    for command in listed_commands() {
        assert!(
            main.contains(&roff(&format!("understory-sync-{command}(1)"))),
            "understory-sync.1 does not list {command}"
        );
        let page = std::fs::read_to_string(dir.path().join(format!("understory-sync-{command}.1")))
            .unwrap_or_else(|e| panic!("understory-sync-{command}.1: {e}"));
        let help = Command::new(BIN)
            .args([command.as_str(), "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).to_string();
        let flags: Vec<&str> = help
            .split_whitespace()
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.trim_end_matches([',', '.']).split('=').next().unwrap())
            .collect();
        assert!(!flags.is_empty(), "{command} --help names no flag");
        for flag in flags {
            assert!(
                page.contains(&roff(flag)),
                "understory-sync-{command}.1 does not document {flag}"
            );
        }
    }
}
