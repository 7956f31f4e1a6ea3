//! Entry point: parse the command line, set up logging, run, map the outcome to an exit code.

mod cli;
mod logging;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    // A panic is a bug: one `error:` line like every other failure, and the documented exit
    // code 1. Nothing is lost by stopping at once: every commit is a whole page and its
    // checkpoint, and the next run resumes from the last one.
    std::panic::set_hook(Box::new(|info| {
        let what = info.to_string().replace('\n', " ");
        // `status | head`: the reader closing stdout early ends the output, not in error
        // (ripgrep does the same). `println!` reports it by panicking.
        if what.contains("failed printing to stdout") && what.contains("Broken pipe") {
            std::process::exit(0);
        }
        let line = format!("internal error, please report it with the log: {what}");
        logging::error_line(&line);
        // The run's row says `failed`, not `running` until the next run.
        understory_sync::store::fail_running_run(&line);
        std::process::exit(1);
    }));
    match cli::run(cli).await {
        Ok(exit) => exit.into(),
        Err((exit, e)) => {
            // A stop asked for is no failure: one warning, exit 7, and the next run resumes.
            if exit == cli::Exit::Interrupted {
                tracing::warn!("stopped: {e:#}");
            } else {
                logging::error_line(&format!("{e:#}"));
            }
            exit.into()
        }
    }
}
