//! Building and running an instance: database, shared state, listener, background jobs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use herald_core::bus::Bus;
use herald_core::notifications::PublishContext;
use herald_core::settings::SettingsPolicy;
use herald_core::{AuthPolicy, Db, Hub, PoolSettings, ProxyAuth};
use herald_model::WEB_CHANNEL;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;

use crate::config::Settings;

/// What every handler can reach. Cheap to clone: axum clones it for every request (often
/// more than once), so it is one shared allocation rather than a dozen reference counts and
/// the Leptos options' strings.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub hub: Hub,
    pub leptos: LeptosOptions,
    /// Open live streams per user.
    pub streams: Arc<crate::http::StreamCounter>,
    /// Most live streams one user may have open.
    pub stream_limit: usize,
    /// Most live streams the instance keeps open.
    pub stream_total: usize,
    /// Quiet time after which a live stream sends a keep-alive comment.
    pub stream_keep_alive: Duration,
    /// Request rate limits per credential.
    pub limits: Arc<crate::http::Limits>,
    /// How long a client has to send a request body.
    pub body_read_timeout: Duration,
    /// Becomes `true` when the server is shutting down: live streams end, so a graceful
    /// shutdown does not wait forever for them.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Opens the database named in the settings and applies pending migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let pool = PoolSettings { max_connections: settings.database_max_connections, ..PoolSettings::default() };
    let db = Db::connect(settings.database_url.expose(), &pool).await.map_err(|e| {
        anyhow::anyhow!("cannot open the database {}: {e}", herald_core::db::redact_url(settings.database_url.expose()))
    })?;
    db.migrate().await?;
    Ok(db)
}

/// The core's view of the configuration, with the base URL Herald is reached at.
pub async fn hub(settings: &Settings, db: Db, base_url: url::Url) -> anyhow::Result<Hub> {
    let proxy = settings.auth.proxy_header.clone().map(|header| ProxyAuth {
        header: header.to_ascii_lowercase(),
        trusted: settings.trusted_proxies().unwrap_or_default(),
    });
    let auth = AuthPolicy {
        password_login: settings.auth.password_login,
        proxy,
        admin_users: settings.admin_users()?,
        admin_group: settings.admin_group()?,
        session_ttl_ms: i64::from(settings.auth.session_hours) * 3_600_000,
        secure_cookie: base_url.scheme() == "https",
    };
    let routing = settings.routing();
    let mut channels = vec![WEB_CHANNEL.to_string()];
    channels.extend(routing.channel_ids().into_iter().map(str::to_string));
    let policy =
        SettingsPolicy { channels, defaults: settings.notifications.default_settings.clone(), recent: Arc::default() };
    let bus = Bus::start(db.clone(), settings.stream.buffer).await?;
    Ok(Hub {
        db,
        bus,
        publish: Arc::new(PublishContext { base_url, policy, routing }),
        auth: Arc::new(auth),
        sign_in_throttle: Arc::default(),
        tokens: Arc::default(),
    })
}

/// The senders of the channels configured beyond the inbox.
pub fn deliverer(settings: &Settings, db: Db, base_url: &url::Url) -> anyhow::Result<crate::delivery::Deliverer> {
    use crate::delivery::{Deliverer, EmailSender, SlackSender, WebhookSender};
    let d = &settings.delivery;
    let timeout = Duration::from_secs(d.timeout_secs.into());
    let email = (!settings.email.host.is_empty())
        .then(|| EmailSender::new(&settings.email, base_url.clone(), timeout))
        .transpose()?;
    let slack = (!settings.slack.token.expose().is_empty())
        .then(|| SlackSender::new(&settings.slack.api_url, settings.slack.token.expose(), base_url.clone(), timeout))
        .transpose()?;
    let webhook = settings
        .webhooks
        .enabled()
        .then(|| WebhookSender::new(settings.webhooks.hooks.clone(), timeout))
        .transpose()?;
    Ok(Deliverer {
        db,
        email,
        slack,
        webhook,
        retry: herald_core::outbox::RetryPolicy {
            max_attempts: d.max_attempts,
            first_delay_ms: d.first_retry_ms as i64,
            max_delay_ms: d.max_retry_ms as i64,
        },
        lease: Duration::from_secs(d.lease_secs),
        poll: Duration::from_millis(d.poll_ms),
    })
}

/// A bound, ready-to-run instance.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    settings: Settings,
    shutdown: tokio::sync::watch::Sender<bool>,
    deliverer: Arc<crate::delivery::Deliverer>,
}

impl Application {
    /// Opens the database, imports configured catalog files and binds the listener (port 0
    /// picks a free port, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = open_database(&settings).await?;
        if let Err(e) = db.probe_write(herald_core::time::now_ms()).await {
            // Still start: the inbox can be read, and writes answer 503 until this passes.
            tracing::warn!(error = %e, "the database does not accept writes; reads are served, writes answer 503 until it does");
        }
        for path in &settings.catalog_paths {
            let yaml = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| anyhow::anyhow!("catalog_paths: cannot read {}: {e}", path.display()))?;
            let summary = herald_core::directory::import_catalog(&db, &yaml)
                .await
                .map_err(|e| anyhow::anyhow!("catalog_paths: {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), users = summary.users, groups = summary.groups, "imported catalog");
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("listen: cannot bind {}: {e}", settings.listen))?;
        let addr = listener.local_addr()?;
        let base_url = match &settings.base_url {
            Some(_) => settings.base_url()?,
            None => url::Url::parse(&format!("http://{addr}"))?,
        };
        let leptos = LeptosOptions::builder()
            .output_name("herald")
            .site_root(settings.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        // Install the metrics recorder before anything records.
        crate::http::metrics::handle();
        let (shutdown, shutting_down) = tokio::sync::watch::channel(false);
        let state = AppState(Arc::new(Shared {
            hub: hub(&settings, db, base_url).await?,
            leptos,
            streams: Arc::default(),
            stream_limit: settings.stream.max_per_user,
            stream_total: settings.stream.max_total,
            stream_keep_alive: Duration::from_secs(settings.stream.keep_alive_secs),
            limits: Arc::new(crate::http::Limits::new(&settings.limits)),
            body_read_timeout: Duration::from_secs(settings.http.body_read_timeout_secs),
            shutting_down,
        }));
        let deliverer = Arc::new(deliverer(&settings, state.hub.db.clone(), &state.hub.publish.base_url)?);
        Ok(Application { listener, state, settings, shutdown, deliverer })
    }

    /// The address the instance listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The shared state (tests reach the database through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, with the background jobs alongside.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let maintenance = tokio::spawn(maintenance(self.state.hub.db.clone(), self.settings.clone()));
        let waker = tokio::spawn(timers(self.state.hub.clone()));
        let statistics = tokio::spawn(statistics(self.state.hub.db.clone()));
        let search = tokio::spawn(search_index(self.state.hub.db.clone()));
        let upkeep = tokio::spawn(crate::http::metrics::upkeep(crate::http::metrics::UPKEEP));
        let limits = self.state.limits.clone();
        let forget = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
        let sender = tokio::spawn(self.deliverer.run(self.state.hub.clone(), self.state.shutting_down.clone()));
        let router = crate::http::router(self.state);
        let stop_streams = self.shutdown;
        let served = crate::serve::serve(self.listener, router, &self.settings.http, async move {
            shutdown.await;
            let _ = stop_streams.send(true);
        })
        .await;
        maintenance.abort();
        waker.abort();
        statistics.abort();
        search.abort();
        upkeep.abort();
        forget.abort();
        sender.abort();
        served?;
        Ok(())
    }
}

/// Hourly clean-up: retention, the event replay window, expired keys and sessions.
async fn maintenance(db: Db, settings: Settings) {
    let window_ms = i64::from(settings.event_replay_hours) * 3_600_000;
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match herald_core::maintenance::clean_up(&db, settings.retention_days, window_ms).await {
            Ok(c) if c.notifications > 0 => {
                tracing::info!(deleted = c.notifications, "retention removed old notifications")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "clean-up failed; retrying in an hour"),
        }
    }
}

/// Every ten seconds, PostgreSQL's planner statistics of the tables that changed enough since
/// they were last gathered (see [`herald_core::maintenance::refresh_statistics`]); nothing on
/// SQLite.
async fn statistics(db: Db) {
    if db.backend() != herald_core::Backend::Postgres {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match herald_core::maintenance::refresh_statistics(&db).await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::debug!(?tables, "planner statistics refreshed"),
            Err(e) => tracing::warn!(error = %e, "refreshing planner statistics failed; retrying"),
        }
    }
}

/// Every tenth of a second, SQLite's search index catches up with the notifications stored
/// since (see [`herald_core::notifications::catch_up_search`]); nothing on PostgreSQL.
async fn search_index(db: Db) {
    if db.backend() != herald_core::Backend::Sqlite {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = herald_core::notifications::catch_up_search(&db).await {
            tracing::warn!(error = %e, "indexing notifications for search failed; retrying");
        }
    }
}

/// The jobs that run on the clock, every two seconds: snoozed notifications return to the
/// inbox, scheduled announcements are published and expired ones leave the inboxes.
async fn timers(hub: Hub) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match herald_core::notifications::wake_snoozed(&hub.db).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(returned = n, "snoozed notifications returned"),
            Err(e) => tracing::warn!(error = %e, "returning snoozed notifications failed; retrying"),
        }
        match herald_core::announcements::run_due(&hub.db, &hub.publish).await {
            Ok((0, 0)) => {}
            Ok((published, expired)) => tracing::info!(published, expired, "scheduled announcements"),
            Err(e) => tracing::warn!(error = %e, "publishing scheduled announcements failed; retrying"),
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
