//! The admin console: service tokens, the delivery outbox and the directory. Every server
//! function here checks the admin role on the server (`server::require_admin`), so a
//! non-admin gets 403 whatever they send.

mod announcements;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, RelativeTime};
use crate::components::{GetForm, InPlaceForm, PageTitle, typed};
use crate::live::Live;
use crate::shell::{MeResource, signed_in};

/// A service token as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTokenRow {
    pub id: String,
    /// The origin of what it publishes.
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One delivery as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A user of the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub user_ref: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub admin: bool,
}

/// A group of the directory, with its direct members and subgroups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub group_ref: String,
    pub name: Option<String>,
    pub members: Vec<String>,
    pub children: Vec<String>,
}

/// What the console shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub tokens: Vec<ServiceTokenRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub deliveries_total: i64,
    pub users: Vec<UserRow>,
    pub groups: Vec<GroupRow>,
    pub rendered_at: i64,
}

/// Loads the console, deliveries filtered by `status` and `channel` (empty: any).
#[server(endpoint = "admin/overview", output = crate::codec::JsonText)]
pub async fn admin_overview(status: String, channel: String) -> Result<AdminView, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    use herald_core::{auth, directory, outbox};
    require_admin().await?;
    let hub = hub()?;
    let tokens = auth::list_tokens(&hub.db, auth::TokenKind::Service, None)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|t| ServiceTokenRow {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        })
        .collect();
    let filter = outbox::ListFilter {
        status: Some(status).filter(|s| !s.is_empty()),
        channel: Some(channel).filter(|c| !c.is_empty()),
        limit: 100,
        offset: 0,
    };
    let (rows, deliveries_total) = outbox::list(&hub.db, &filter).await.map_err(fail)?;
    let deliveries = rows
        .into_iter()
        .map(|d| DeliveryRow {
            id: d.id,
            channel: d.channel,
            target: d.target,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
        })
        .collect();
    let mut users = Vec::new();
    for u in directory::list_users(&hub.db).await.map_err(fail)? {
        let admin = match u.user_ref.parse() {
            Ok(r) => hub.is_admin(&r).await.map_err(fail)?,
            Err(_) => false,
        };
        users.push(UserRow { user_ref: u.user_ref, name: u.display_name, email: u.email, admin });
    }
    let groups = directory::list_groups(&hub.db)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|g| GroupRow { group_ref: g.group_ref, name: g.display_name, members: g.members, children: g.children })
        .collect();
    Ok(AdminView { tokens, deliveries, deliveries_total, users, groups, rendered_at: herald_core::time::now_ms() })
}

/// Creates a service token; its name is the origin of what it publishes. Returns the secret,
/// shown this once.
#[server(endpoint = "admin/tokens/create", output = crate::codec::JsonText)]
pub async fn create_service_token(name: String) -> Result<String, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    Ok(herald_core::auth::create_service_token(&hub.db, name.trim()).await.map_err(fail)?.secret)
}

/// Revokes a service token.
#[server(endpoint = "admin/tokens/revoke", output = crate::codec::JsonText)]
pub async fn revoke_service_token(id: String) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    hub.revoke_token(&id, None).await.map_err(fail)
}

/// Re-queues one dead delivery, or (with an empty `id`) every dead one.
#[server(endpoint = "admin/deliveries/retry", output = crate::codec::JsonText)]
pub async fn retry_deliveries(id: String) -> Result<u64, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    let ids: Vec<String> = Some(id).filter(|i| !i.is_empty()).into_iter().collect();
    herald_core::outbox::retry_dead(&hub.db, &ids, None).await.map_err(fail)
}

/// Imports catalog YAML (the same rules as `herald import`); returns what it changed.
#[server(endpoint = "admin/directory/import", output = crate::codec::JsonText)]
pub async fn import_directory(yaml: String) -> Result<String, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    let s = herald_core::directory::import_catalog(&hub.db, &yaml).await.map_err(fail)?;
    Ok(format!("Imported {} users and {} groups ({} other entities skipped).", s.users, s.groups, s.skipped))
}

/// `/admin`, the console: its code is a separate chunk, loaded when the page is first shown,
/// so that the inbox loads without it. The console's state is made here, once.
#[leptos::lazy]
pub(crate) fn page() -> AnyView {
    let console = ConsoleState::new();
    view! { <AdminPage console /> }.into_any()
}

/// Loads [`page`]'s code, if it is not loaded yet.
#[cfg(feature = "hydrate")]
pub(crate) async fn preload() {
    __preload_page().await;
}

/// The console's actions and resources. They are created with the route's view, outside the
/// suspense that waits to know who is signed in: on the server a suspense may build its
/// children more than once, and resources created there would be created, numbered and
/// serialized once per build, so the browser, which builds them once, could hydrate with
/// another build's data (see `SignedIn`). For anyone but an admin they load nothing.
#[derive(Clone, Copy)]
struct ConsoleState {
    create: ServerAction<CreateServiceToken>,
    revoke: ServerAction<RevokeServiceToken>,
    retry: ServerAction<RetryDeliveries>,
    import: ServerAction<ImportDirectory>,
    data: Resource<Result<AdminView, ServerFnError>>,
    announcements: announcements::AnnouncementsState,
}

impl ConsoleState {
    fn new() -> ConsoleState {
        let me = expect_context::<MeResource>();
        let live = expect_context::<Live>();
        let query = crate::router::use_query();
        let create = ServerAction::<CreateServiceToken>::new();
        let revoke = ServerAction::<RevokeServiceToken>::new();
        let retry = ServerAction::<RetryDeliveries>::new();
        let import = ServerAction::<ImportDirectory>::new();
        let data = Resource::new(
            move || {
                (
                    query.with(|q| (q.get("status").unwrap_or_default(), q.get("channel").unwrap_or_default())),
                    create.version().get(),
                    revoke.version().get(),
                    retry.version().get(),
                    import.version().get(),
                    live.resets.get(),
                )
            },
            move |((status, channel), ..)| async move {
                signed_in(me, true).await?;
                admin_overview(status, channel).await
            },
        );
        let announcements = announcements::AnnouncementsState::new(me, live);
        ConsoleState { create, revoke, retry, import, data, announcements }
    }
}

/// The admin console; only administrators see its content (and get 200).
#[component]
fn AdminPage(console: ConsoleState) -> impl IntoView {
    let me = expect_context::<MeResource>();
    view! {
        <PageTitle text="Admin" />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) if me.is_admin => view! { <Console console /> }.into_any(),
                    _ => {
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::FORBIDDEN);
                        }
                        view! {
                            <section class="empty-state" data-testid="admins-only">
                                <h1>"Admins only"</h1>
                                <p>"This page is for Herald administrators."</p>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

use crate::components::error_text as message;

/// The console's sections.
#[component]
fn Console(console: ConsoleState) -> impl IntoView {
    let ConsoleState { create, revoke, retry, import, data, announcements } = console;
    view! {
        <h1 class="page-title">"Admin"</h1>
        <nav class="views" aria-label="Sections">
            <a class="view-tab" href="#announcements">"Announcements"</a>
            <a class="view-tab" href="#tokens">"Service tokens"</a>
            <a class="view-tab" href="#deliveries">"Deliveries"</a>
            <a class="view-tab" href="#directory">"Directory"</a>
        </nav>
        <announcements::Announcements state=announcements />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! {
                        <Tokens tokens=d.tokens rendered_at=d.rendered_at create revoke />
                        <Deliveries rows=d.deliveries total=d.deliveries_total rendered_at=d.rendered_at retry />
                        <Directory users=d.users groups=d.groups import />
                    }
                    .into_any(),
                    Err(e) => view! { <p class="error" role="alert">{message(e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Service tokens: create (shown once), list with creation and last use, revoke.
#[component]
fn Tokens(
    tokens: Vec<ServiceTokenRow>,
    rendered_at: i64,
    create: ServerAction<CreateServiceToken>,
    revoke: ServerAction<RevokeServiceToken>,
) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let when = move |at: i64| view! { <RelativeTime at rendered_at /> };
    let name = NodeRef::<leptos::html::Input>::new();
    view! {
        <section class="settings-section wide" id="tokens" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"Service tokens"</h2>
            <p class="muted">"Publishers (CI jobs, services, scripts) authenticate with these; the name is the origin of what they publish."</p>
            <InPlaceForm action=create input=move |_| CreateServiceToken { name: typed(name) } attr:class="setting-row">
                <label for="service-name">"Origin"</label>
                <input id="service-name" name="name" type="text" placeholder="external:ci" required maxlength="255" node_ref=name />
                <button type="submit" class="button" disabled=move || clock.now.get().is_none()>"Create token"</button>
            </InPlaceForm>
            <noscript><p class="muted">"Creating a token needs JavaScript (the token is shown once, in place)."</p></noscript>
            <p class="error" role="alert">{move || create.value().get().and_then(Result::err).map(message)}</p>
            {move || create.value().get().and_then(Result::ok).map(|secret| view! {
                <div class="token-created" role="status" data-testid="service-token-created">
                    <p>"Token created. Copy it now: it is not shown again."</p>
                    <code class="secret" data-testid="service-token-secret">{secret}</code>
                </div>
            })}
            <div class="table-scroll">
                <table class="tokens" data-testid="service-tokens">
                    <thead><tr><th scope="col">"Origin"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"State"</th></tr></thead>
                    <tbody>
                        {tokens.into_iter().map(|t| view! {
                            <tr data-testid="service-token">
                                <td><code>{t.name.clone()}</code></td>
                                <td>{when(t.created_at)}</td>
                                <td>{match t.last_used_at { Some(ms) => when(ms).into_any(), None => view! { "never" }.into_any() }}</td>
                                <td>
                                    {match t.revoked_at {
                                        Some(_) => view! { <span class="muted">"revoked"</span> }.into_any(),
                                        None => view! {
                                            <InPlaceForm action=revoke input={let id = t.id.clone(); move |_| RevokeServiceToken { id: id.clone() }} attr:class="inline-form">
                                                <input type="hidden" name="id" value=t.id.clone() />
                                                <button type="submit" class="link-button danger" aria-label=format!("Revoke the token of {}", t.name)>"Revoke"</button>
                                            </InPlaceForm>
                                        }.into_any(),
                                    }}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// The outbox: filter by status and channel, see attempts and the last error, retry dead ones.
#[component]
fn Deliveries(
    rows: Vec<DeliveryRow>,
    total: i64,
    rendered_at: i64,
    retry: ServerAction<RetryDeliveries>,
) -> impl IntoView {
    let query = crate::router::use_query();
    let selected =
        move |key: &'static str, value: &'static str| move || query.with(|q| q.get(key).unwrap_or_default() == value);
    let option = move |key: &'static str, value: &'static str, label: &'static str| {
        view! { <option value=value selected=selected(key, value)>{label}</option> }
    };
    view! {
        <section class="settings-section wide" id="deliveries" aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">"Deliveries"</h2>
            <GetForm action="/admin" attr:class="filters">
                <label for="delivery-status">"Status"</label>
                <select id="delivery-status" name="status">
                    {option("status", "", "Any")}
                    {option("status", "pending", "Pending")}
                    {option("status", "digest", "Held for a digest")}
                    {option("status", "delivered", "Delivered")}
                    {option("status", "dead", "Dead")}
                </select>
                <label for="delivery-channel">"Channel"</label>
                <select id="delivery-channel" name="channel">
                    {option("channel", "", "Any")}
                    {option("channel", "Email", "Email")}
                    {option("channel", "Slack", "Slack")}
                    {option("channel", "Webhook", "Webhook")}
                </select>
                <button type="submit" class="button">"Apply"</button>
            </GetForm>
            <div class="list-bar">
                <p class="muted" data-testid="deliveries-count">{format!("{} of {total}", rows.len())}</p>
                <InPlaceForm action=retry input=|_| RetryDeliveries { id: String::new() } attr:class="inline-form">
                    <input type="hidden" name="id" value="" />
                    <button type="submit" class="button">"Retry every dead delivery"</button>
                </InPlaceForm>
            </div>
            {if rows.is_empty() {
                view! { <p class="empty-state">"No deliveries match."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="tokens" data-testid="deliveries">
                            <thead><tr>
                                <th scope="col">"Channel"</th><th scope="col">"To"</th><th scope="col">"Status"</th>
                                <th scope="col">"Attempts"</th><th scope="col">"Created"</th><th scope="col">"Last error"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr></thead>
                            <tbody>
                                {rows.into_iter().map(|d| {
                                    let at = d.created_at;
                                    let dead = d.status == "dead";
                                    view! {
                                        <tr data-testid="delivery" data-status=d.status.clone()>
                                            <td>{d.channel.clone()}</td>
                                            <td><code>{d.target.clone()}</code></td>
                                            <td>{d.status.clone()}</td>
                                            <td>{d.attempts}</td>
                                            <td><RelativeTime at rendered_at /></td>
                                            <td class="muted">{d.last_error.clone().unwrap_or_default()}</td>
                                            <td>
                                                {dead.then(|| view! {
                                                    <InPlaceForm action=retry input={let id = d.id.clone(); move |_| RetryDeliveries { id: id.clone() }} attr:class="inline-form">
                                                        <input type="hidden" name="id" value=d.id.clone() />
                                                        <button type="submit" class="link-button">"Retry"</button>
                                                    </InPlaceForm>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

/// Users and groups with membership, who is an admin, and catalog import.
#[component]
fn Directory(users: Vec<UserRow>, groups: Vec<GroupRow>, import: ServerAction<ImportDirectory>) -> impl IntoView {
    let yaml = NodeRef::<leptos::html::Textarea>::new();
    // With JavaScript, choosing a file puts its text in the box; without, paste it.
    let load_file = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
            let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
            leptos::task::spawn_local(async move {
                if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await
                    && let (Some(area), Some(text)) = (yaml.get(), text.as_string())
                {
                    area.set_value(&text);
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <section class="settings-section wide" id="directory" aria-labelledby="directory-title">
            <h2 id="directory-title">"Directory"</h2>
            <h3>"Users"</h3>
            <div class="table-scroll">
                <table class="tokens" data-testid="users">
                    <thead><tr><th scope="col">"User"</th><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Role"</th></tr></thead>
                    <tbody>
                        {users.into_iter().map(|u| view! {
                            <tr data-testid="user" data-ref=u.user_ref.clone()>
                                <td><code>{u.user_ref.clone()}</code></td>
                                <td>{u.name.unwrap_or_default()}</td>
                                <td>{u.email.unwrap_or_default()}</td>
                                <td>{if u.admin { "admin" } else { "" }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <h3>"Groups"</h3>
            <div class="table-scroll">
                <table class="tokens" data-testid="groups">
                    <thead><tr><th scope="col">"Group"</th><th scope="col">"Members"</th><th scope="col">"Subgroups"</th></tr></thead>
                    <tbody>
                        {groups.into_iter().map(|g| view! {
                            <tr data-testid="group" data-ref=g.group_ref.clone()>
                                <td><code>{g.group_ref.clone()}</code>{g.name.map(|n| view! { <br /><span class="muted">{n}</span> })}</td>
                                <td>{g.members.join(", ")}</td>
                                <td>{g.children.join(", ")}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <h3>"Import catalog YAML"</h3>
            <p class="muted">"Backstage catalog entities of kind User and Group; importing again updates them (the same rules as herald import)."</p>
            <InPlaceForm action=import input=move |_| ImportDirectory { yaml: yaml.get_untracked().map(|t| t.value()).unwrap_or_default() } attr:class="stack">
                <label for="catalog-file">"File"</label>
                <input id="catalog-file" type="file" accept=".yaml,.yml,text/yaml" on:change=load_file />
                <label for="catalog-yaml">"YAML"</label>
                <textarea id="catalog-yaml" name="yaml" rows="8" node_ref=yaml required data-testid="catalog-yaml"></textarea>
                <button type="submit" class="button">"Import"</button>
            </InPlaceForm>
            <p role="status" data-testid="import-result">
                {move || import.value().get().map(|r| match r {
                    Ok(summary) => summary,
                    Err(e) => message(e),
                })}
            </p>
        </section>
    }
}
