//! `herald send`: publish one notification from a shell, CI job or cron script.
//!
//! Exit codes tell failures apart so that scripts can react: 0 sent, 2 bad usage, 3
//! authentication (401/403), 4 refused as invalid (400/413/415/422), 5 server or network.
//! Transient failures (network, 429, 5xx) are retried with the same idempotency key, so a
//! retry never publishes twice. `--optional` turns any failure into a warning and exit 0.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value, json};

/// Options of `herald send`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  herald send --to group:default/platform --title 'Deploy finished' --severity normal --link https://ci.example.com/r/42
  git log -1 --format=%B | herald send --to user:default/alice --title 'Build failed' --description - --optional
  herald send --broadcast --title 'Maintenance tonight' --topic announcements --scope maintenance-2024-06

Exit codes: 0 sent; 2 bad usage; 3 authentication; 4 refused as invalid; 5 server or network.")]
pub struct SendArgs {
    /// Herald's URL.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// A service token (`herald token create --service NAME`).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A recipient: user or group ref (repeatable).
    #[arg(long = "to", value_name = "REF", required_unless_present = "broadcast")]
    pub to: Vec<String>,
    /// A user or group to leave out (repeatable).
    #[arg(long = "exclude", value_name = "REF")]
    pub exclude: Vec<String>,
    /// Send to everyone instead.
    #[arg(long, conflicts_with_all = ["to", "exclude"])]
    pub broadcast: bool,
    /// The title.
    #[arg(long)]
    pub title: String,
    /// The description (markdown); `-` reads it from standard input.
    #[arg(long)]
    pub description: Option<String>,
    /// A link (http(s), or a path on Herald's site).
    #[arg(long)]
    pub link: Option<String>,
    /// critical, high, normal or low.
    #[arg(long, value_parser = ["critical", "high", "normal", "low"])]
    pub severity: Option<String>,
    /// The topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// A scope: a later send with the same scope updates this notification.
    #[arg(long)]
    pub scope: Option<String>,
    /// An icon name.
    #[arg(long)]
    pub icon: Option<String>,
    /// Metadata, a JSON object.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Idempotency key (default: a random one, reused by the retries of this command).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Tries before giving up on transient failures.
    #[arg(long, default_value_t = 4)]
    pub attempts: u32,
    /// Never fail: print a warning and exit 0 (for steps that must not break a pipeline).
    #[arg(long)]
    pub optional: bool,
}

/// Why a send failed, with its exit code.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Auth(String),
    Invalid(String),
    Server(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Auth(_) => 3,
            Failure::Invalid(_) => 4,
            Failure::Server(_) => 5,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Auth(m) | Failure::Invalid(m) | Failure::Server(m) => m,
        }
    }
}

/// Runs `herald send`.
pub async fn run(args: SendArgs) -> ExitCode {
    let optional = args.optional;
    match send(args).await {
        Ok(ids) => {
            println!("{}", ids.join("\n"));
            ExitCode::SUCCESS
        }
        Err(f) if optional => {
            eprintln!("herald send: warning: notification not sent (--optional): {}", f.message());
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("herald send: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

fn body(args: &SendArgs) -> Result<Value, Failure> {
    let description = match args.description.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::Usage(format!("reading the description from stdin: {e}")))?;
            Some(text)
        }
        other => other.map(str::to_string),
    };
    let metadata = args
        .metadata
        .as_deref()
        .map(|m| {
            serde_json::from_str::<Map<String, Value>>(m)
                .map_err(|e| Failure::Usage(format!("--metadata must be a JSON object: {e}")))
        })
        .transpose()?;
    let mut payload = Map::new();
    payload.insert("title".into(), json!(args.title));
    for (key, value) in [
        ("description", description),
        ("link", args.link.clone()),
        ("severity", args.severity.clone()),
        ("topic", args.topic.clone()),
        ("scope", args.scope.clone()),
        ("icon", args.icon.clone()),
    ] {
        if let Some(v) = value {
            payload.insert(key.into(), json!(v));
        }
    }
    if let Some(m) = metadata {
        payload.insert("metadata".into(), Value::Object(m));
    }
    let recipients = if args.broadcast {
        json!({"type": "broadcast"})
    } else {
        json!({"type": "entity", "entityRef": args.to, "excludeEntityRef": args.exclude})
    };
    Ok(json!({"recipients": recipients, "payload": payload}))
}

async fn send(args: SendArgs) -> Result<Vec<String>, Failure> {
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Usage("no service token: pass --token or set HERALD_TOKEN".into()))?;
    let body = body(&args)?;
    let key = args.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let url = format!("{}/api/notifications/notifications", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Failure::Server(e.to_string()))?;
    let mut last = Failure::Server("no attempt was made".into());
    for attempt in 0..args.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
        }
        let res = client.post(&url).bearer_auth(&token).header("idempotency-key", &key).json(&body).send().await;
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                last = Failure::Server(format!("cannot reach {}: {e}", args.url));
                continue;
            }
        };
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        match status {
            200..=299 => {
                let ids = serde_json::from_str::<Vec<Value>>(&text)
                    .map(|ns| ns.iter().filter_map(|n| n["id"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                return Ok(ids);
            }
            401 | 403 => return Err(Failure::Auth(format!("{status}: {message}"))),
            400 | 404 | 413 | 415 | 422 => return Err(Failure::Invalid(format!("{status}: {message}"))),
            // 409: the same key is still being processed; 429 and 5xx are transient.
            _ => last = Failure::Server(format!("{status}: {message}")),
        }
    }
    Err(last)
}
