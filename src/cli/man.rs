//! `understory-sync man DIR`: the manual pages, rendered from the same flag definitions as
//! `--help`, so the page a package installs can never drift from the binary it documents.

use std::path::Path;

use clap::CommandFactory as _;

use super::{Cli, Exit};

/// Writes `understory-sync.1` and one `understory-sync-COMMAND.1` per command into `dir`.
pub fn write(dir: &Path) -> Result<Exit, (Exit, anyhow::Error)> {
    let failed = |e: std::io::Error| {
        (
            Exit::Internal,
            anyhow::anyhow!("cannot write the manual pages into {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    for command in cli.get_subcommands() {
        clap_mangen::Man::new(command.clone())
            .generate_to(dir)
            .map_err(failed)?;
    }
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(cli.clone());
    man.render_title(&mut page).map_err(failed)?;
    man.render_name_section(&mut page).map_err(failed)?;
    man.render_synopsis_section(&mut page).map_err(failed)?;
    man.render_description_section(&mut page).map_err(failed)?;
    man.render_options_section(&mut page).map_err(failed)?;
    man.render_subcommands_section(&mut page).map_err(failed)?;
    page.extend(closing_sections(super::AFTER_LONG_HELP).as_bytes());
    man.render_version_section(&mut page).map_err(failed)?;
    std::fs::write(dir.join("understory-sync.1"), page).map_err(failed)?;
    Ok(Exit::Ok)
}

/// The help's closing sections as man sections: `Files:` becomes `.SH FILES`, and each
/// indented line a tagged paragraph, its term before the first double space.
fn closing_sections(help: &str) -> String {
    let mut roff = clap_mangen::roff::Roff::new();
    for line in help.lines().filter(|l| !l.trim().is_empty()) {
        match line.strip_prefix("  ") {
            None => {
                roff.control("SH", [line.trim_end_matches(':').to_uppercase().as_str()]);
            }
            Some(entry) => {
                let (term, text) = entry.split_once("  ").unwrap_or((entry, ""));
                roff.control("TP", []);
                roff.text([clap_mangen::roff::bold(term)]);
                roff.text([clap_mangen::roff::roman(text.trim())]);
            }
        }
    }
    roff.to_roff()
}
