//! `--help` describes every flag: an operator reading `understory-sync <command> --help` learns
//! what each one does without opening the README.

use std::process::Command;

use crate::cli::BIN;

/// Every command whose flags an operator types.
const COMMANDS: [&str; 7] = ["sandbox", "sync", "run", "check", "status", "connect", "demo"];

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
