//! Herald's benchmarks. Each prints a markdown table; none asserts a time.
//!
//! `herald-bench api` measures the REST API (publishing, broadcasts, inbox pages, status,
//! marking read, publish-to-event latency, server-rendered pages, memory) on Herald with
//! SQLite and PostgreSQL and on Backstage's notifications backend, with this one client.
//!
//! `herald-bench sse` starts its own Herald (release binary, fresh SQLite file), opens many
//! concurrent live streams, publishes broadcasts, and reports how long every client took to
//! receive each one, and the server's memory per idle stream; with `--postgres`, again on
//! PostgreSQL with one instance and with several sharing the database.

mod api;
mod fanout;
mod histogram;
mod load;
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
    /// The REST API side by side: Herald (SQLite, PostgreSQL) and Backstage, scenarios 1–4, 6, 7.
    #[command(
        after_help = "Example:\n  herald-bench api --postgres postgres://postgres@127.0.0.1:5432/postgres --backstage http://127.0.0.1:7007"
    )]
    Api(api::Options),
    /// Live fan-out: N concurrent SSE clients, broadcasts, delivery latency and memory.
    #[command(
        after_help = "Example:\n  herald-bench sse --clients 10000 --broadcasts 5 --postgres postgres://postgres@127.0.0.1:5432/postgres"
    )]
    Sse(fanout::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Api(options) => api::run(options).await,
        Command::Sse(options) => fanout::run(options).await,
    }
}
