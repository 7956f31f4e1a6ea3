//! Entry point: parse the command line, set up logging, run, map the outcome to an exit code.

mod cli;
mod logging;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match cli::run(cli).await {
        Ok(exit) => exit.into(),
        Err((exit, e)) => {
            eprintln!("error: {e:#}");
            exit.into()
        }
    }
}
