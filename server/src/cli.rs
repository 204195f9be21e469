//! The `herald` command line.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use herald_core::auth::{self, TokenKind};
use herald_core::directory;
use herald_model::{EntityKind, EntityRef};

use crate::config::Settings;
use crate::startup::{self, Application};
use crate::telemetry;

/// Herald: a self-hosted notification hub.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Herald: a self-hosted notification hub.", long_about = None, after_help = "\
Examples:
  herald                                 serve on 127.0.0.1:3000 with ./data/herald.db
  herald serve --demo                    serve, seeding demo users into an empty database
  herald token create --service external:ci
  HERALD_DATABASE_URL=postgres://localhost/herald herald migrate
  HERALD_TOKEN=hrld_s_… herald send --to group:default/platform --title 'Deploy finished'

Configuration comes from ./herald.toml (or --config) and HERALD_* variables.")]
pub struct Cli {
    /// Configuration file (default: ./herald.toml when it exists).
    #[arg(long, global = true, env = "HERALD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Run the server (the default).
    #[command(after_help = "Example:\n  herald serve --demo")]
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    #[command(after_help = "Example:\n  HERALD_DATABASE_URL=postgres://postgres@localhost/herald herald migrate")]
    Migrate,
    /// Import users and groups from Backstage catalog YAML files.
    #[command(after_help = "Example:\n  herald import org.yaml teams/*.yaml")]
    Import {
        /// Catalog files (multi-document YAML with kind: User / kind: Group).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Publish a notification to a running Herald (for CI jobs and scripts).
    Send(crate::send::SendArgs),
    /// See and re-queue deliveries to email, Slack and webhooks.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
}

/// `herald deliveries …`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    #[command(after_help = "Example:\n  herald deliveries list --status dead --channel Email")]
    List {
        /// pending, digest, merged, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        /// Email, Slack or Webhook.
        #[arg(long)]
        channel: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Re-queue dead deliveries with fresh attempts (all dead ones without options).
    #[command(
        after_help = "Example:\n  herald deliveries retry --channel Slack\n  herald deliveries retry --id 0190f0c2-…"
    )]
    Retry {
        /// Only these deliveries.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
    },
}

/// Options of `herald serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Seed demo users, groups and notifications when the database is empty.
    #[arg(long)]
    pub demo: bool,
}

/// `herald user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or update their profile); with --password-stdin, also set a password.
    #[command(
        after_help = "Example:\n  echo 's3cret-pass' | herald user add alice --name 'Alice A.' --email alice@example.com --password-stdin"
    )]
    Add {
        /// User name or ref (alice, user:default/alice).
        user: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Read a password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password, read from standard input (prompted on a terminal).
    #[command(after_help = "Example:\n  herald user set-password alice < password.txt")]
    SetPassword {
        /// User name or ref.
        user: String,
    },
    /// List users.
    List,
}

/// `herald token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    #[command(
        after_help = "Examples:\n  herald token create --service external:ci\n  herald token create --user user:default/alice --label laptop"
    )]
    Create {
        /// A service token for publishers; the name becomes the notifications' origin.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        service: Option<String>,
        /// A personal access token acting as this user.
        #[arg(long)]
        user: Option<String>,
        /// A label for a personal token.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List tokens (never their secrets).
    #[command(after_help = "Examples:\n  herald token list\n  herald token list --user alice")]
    List {
        /// Personal tokens of this user instead of service tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id.
    #[command(after_help = "Example:\n  herald token revoke 0190f0c2-…")]
    Revoke {
        /// The token's id, as `herald token list` shows it.
        id: String,
    },
}

fn user_ref(s: &str) -> anyhow::Result<EntityRef> {
    let r = EntityRef::parse_with_default(s, Some(EntityKind::User))?;
    anyhow::ensure!(r.kind() == EntityKind::User, "'{s}' is not a user");
    Ok(r)
}

fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "no password given on standard input");
    Ok(password)
}

fn fmt_time(ms: Option<i64>) -> String {
    ms.map(|t| herald_core::time::from_ms(t).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(settings, args).await,
        // `main` runs `send` itself, before any configuration is read.
        Command::Send(_) => anyhow::bail!("`herald send` is handled by the binary's entry point"),
        Command::Migrate => {
            startup::open_database(&settings).await?;
            println!("migrations applied to {}", herald_core::db::redact_url(settings.database_url.expose()));
            Ok(())
        }
        Command::Import { files } => {
            let db = startup::open_database(&settings).await?;
            for file in files {
                let yaml = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                let s = directory::import_catalog(&db, &yaml)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                println!(
                    "{}: {} users, {} groups ({} other entities skipped)",
                    file.display(),
                    s.users,
                    s.groups,
                    s.skipped
                );
            }
            Ok(())
        }
        Command::User(cmd) => {
            let db = startup::open_database(&settings).await?;
            match cmd {
                UserCommand::Add { user, name, email, password_stdin } => {
                    let user = user_ref(&user)?;
                    directory::upsert_user(&db, &user, name.as_deref(), email.as_deref()).await?;
                    if password_stdin {
                        directory::set_password(&db, &user, &read_password()?).await?;
                    }
                    println!("user {user} saved");
                }
                UserCommand::SetPassword { user } => {
                    let user = user_ref(&user)?;
                    directory::set_password(&db, &user, &read_password()?).await?;
                    println!("password of {user} set");
                }
                UserCommand::List => {
                    for u in directory::list_users(&db).await? {
                        println!(
                            "{:<32} {:<24} {:<28} {}",
                            u.user_ref,
                            u.display_name.unwrap_or_default(),
                            u.email.unwrap_or_default(),
                            if u.has_password { "password" } else { "-" }
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Deliveries(cmd) => {
            let db = startup::open_database(&settings).await?;
            match cmd {
                DeliveriesCommand::List { status, channel, limit } => {
                    let filter = herald_core::outbox::ListFilter { status, channel, limit, offset: 0 };
                    let (rows, total) = herald_core::outbox::list(&db, &filter).await?;
                    println!(
                        "{:<36}  {:<8} {:<10} {:<8} {:<16} {:<32} LAST ERROR",
                        "ID", "CHANNEL", "STATUS", "ATTEMPTS", "CREATED", "TARGET"
                    );
                    for d in &rows {
                        println!(
                            "{:<36}  {:<8} {:<10} {:<8} {:<16} {:<32} {}",
                            d.id,
                            d.channel,
                            d.status,
                            d.attempts,
                            fmt_time(Some(d.created_at)),
                            d.target,
                            d.last_error.as_deref().unwrap_or("-")
                        );
                    }
                    eprintln!("{} of {total} shown", rows.len());
                }
                DeliveriesCommand::Retry { ids, channel } => {
                    let n = herald_core::outbox::retry_dead(&db, &ids, channel.as_deref()).await?;
                    println!("{n} dead deliveries queued again");
                }
            }
            Ok(())
        }
        Command::Token(cmd) => {
            let db = startup::open_database(&settings).await?;
            match cmd {
                TokenCommand::Create { service, user, label } => {
                    let token = match (service, user) {
                        (Some(name), _) => auth::create_service_token(&db, &name).await?,
                        (None, Some(user)) => auth::create_personal_token(&db, &user_ref(&user)?, &label).await?,
                        (None, None) => anyhow::bail!("give --service NAME or --user USER"),
                    };
                    eprintln!("token {} created; it is shown only this once:", token.info.id);
                    println!("{}", token.secret);
                }
                TokenCommand::List { user } => {
                    let (kind, user) = match user {
                        Some(u) => (TokenKind::Personal, Some(user_ref(&u)?)),
                        None => (TokenKind::Service, None),
                    };
                    println!("{:<36}  {:<28} {:<16} {:<16} STATE", "ID", "NAME", "CREATED", "LAST USED");
                    for t in auth::list_tokens(&db, kind, user.as_ref()).await? {
                        println!(
                            "{:<36}  {:<28} {:<16} {:<16} {}",
                            t.id,
                            t.name,
                            fmt_time(Some(t.created_at)),
                            fmt_time(t.last_used_at),
                            if t.revoked_at.is_some() { "revoked" } else { "active" }
                        );
                    }
                }
                TokenCommand::Revoke { id } => {
                    auth::revoke_token(&db, &id, None).await?;
                    println!("token {id} revoked");
                }
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    if args.demo {
        let hub = &app.state().hub;
        if let Some(seeded) = herald_core::demo::seed_if_empty(&hub.db, &hub.publish).await? {
            println!("Demo data seeded. Sign in at {} as one of:", hub.publish.base_url);
            for u in &seeded.users {
                println!("  {:<8} password: {}", u.name(), herald_core::demo::DEMO_PASSWORD);
            }
            println!("alice is an administrator. A service token for trying the API (origin external:demo):");
            println!("  {}", seeded.token.secret);
        } else {
            println!("The database already has users; demo data was not seeded again.");
        }
    }
    tracing::info!(%addr, "Herald is listening");
    println!("Herald is running at {}", app.state().hub.publish.base_url);
    app.run(startup::shutdown_signal()).await
}
