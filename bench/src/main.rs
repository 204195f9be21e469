//! Herald's benchmarks. Each prints a markdown table; none asserts a time.
//!
//! `herald-bench sse` starts its own Herald (release binary, fresh SQLite file), opens many
//! concurrent live streams, publishes broadcasts, and reports how long every client took to
//! receive each one, and the server's memory per idle stream.

mod fanout;
mod server;

use clap::{Parser, Subcommand};

/// Herald benchmarks.
#[derive(Debug, Parser)]
#[command(name = "herald-bench", about = "Herald's benchmarks; each prints a markdown table")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Live fan-out: N concurrent SSE clients, broadcasts, delivery latency and memory.
    #[command(after_help = "Example:\n  herald-bench sse --clients 10000 --broadcasts 5")]
    Sse(fanout::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sse(options) => fanout::run(options).await,
    }
}
