//! The `herald` binary.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = herald_server::cli::Cli::parse();
    // `send` is a client of a running Herald: it needs no configuration file or database,
    // and has its own exit codes.
    if let Some(herald_server::cli::Command::Send(args)) = cli.command {
        return herald_server::send::run(args).await;
    }
    match herald_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
