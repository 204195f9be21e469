//! Personal settings: what reaches the user on which channel, preferences, and personal
//! access tokens.

use herald_model::NotificationSettings;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::RelativeTime;
use crate::components::{InPlaceForm, PageTitle, typed};
use crate::live::Live;
use crate::shell::{MeResource, SignedIn, signed_in};

/// A personal access token as the settings page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Everything the settings page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub settings: NotificationSettings,
    pub mark_read_on_open: bool,
    /// Email is configured on this instance.
    pub email: bool,
    /// `immediate`, `hourly` or `daily`.
    pub email_mode: String,
    /// Users may set a personal webhook here.
    pub personal_webhooks: bool,
    /// The user's webhook URL, if set.
    pub webhook: Option<String>,
    pub tokens: Vec<TokenView>,
    /// When the server read the data, in milliseconds since the epoch.
    pub rendered_at: i64,
}

/// Loads the signed-in user's settings.
#[server(endpoint = "settings", output = crate::codec::JsonText)]
pub async fn settings_data() -> Result<SettingsView, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::auth::{TokenKind, list_tokens};
    let hub = hub()?;
    let user = require_user().await?;
    let settings = herald_core::settings::get_settings(&hub.db, hub.policy(), &user).await.map_err(fail)?;
    let prefs = herald_core::preferences::get(&hub.db, &user).await.map_err(fail)?;
    let tokens = list_tokens(&hub.db, TokenKind::Personal, Some(&user))
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| TokenView { id: t.id, name: t.name, created_at: t.created_at, last_used_at: t.last_used_at })
        .collect();
    let routing = &hub.publish.routing;
    let webhook = herald_core::webhooks::get(&hub.db, user.as_str()).await.map_err(fail)?.map(|h| h.url);
    Ok(SettingsView {
        settings,
        mark_read_on_open: prefs.mark_read_on_open,
        email: routing.email.is_some(),
        email_mode: prefs.email_mode,
        personal_webhooks: routing.webhook.as_ref().is_some_and(|w| w.personal),
        webhook,
        tokens,
        rendered_at: herald_core::time::now_ms(),
    })
}

/// Turns one cell of the matrix on or off: a channel for an origin, or for one of its topics
/// (`topic` empty for the origin as a whole). Saved with the API's settings semantics.
#[server(endpoint = "settings/channel", output = crate::codec::JsonText)]
pub async fn set_channel_setting(
    channel: String,
    origin: String,
    topic: String,
    enabled: String,
) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_model::{ChannelSetting, OriginSetting, TopicSetting};
    let hub = hub()?;
    let user = require_user().await?;
    let on = enabled == "true";
    let origin = if topic.is_empty() {
        OriginSetting { id: origin, enabled: on, topics: None }
    } else {
        // Only the topic's entry is written: the origin's own state is left as it is.
        let current = herald_core::settings::get_settings(&hub.db, hub.policy(), &user).await.map_err(fail)?;
        let origin_on = current
            .channels
            .iter()
            .find(|c| c.id == channel)
            .and_then(|c| c.origins.iter().find(|o| o.id == origin))
            .is_none_or(|o| o.enabled);
        OriginSetting { id: origin, enabled: origin_on, topics: Some(vec![TopicSetting { id: topic, enabled: on }]) }
    };
    let settings =
        NotificationSettings { channels: vec![ChannelSetting { id: channel, enabled: None, origins: vec![origin] }] };
    herald_core::settings::save_settings(&hub.db, hub.policy(), &user, &settings).await.map_err(fail)
}

/// Sets whether opening a notification's link marks it read.
#[server(endpoint = "settings/mark-read-on-open", output = crate::codec::JsonText)]
pub async fn set_mark_read_on_open(enabled: String) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    let mut prefs = herald_core::preferences::get(&hub.db, &user).await.map_err(fail)?;
    prefs.mark_read_on_open = enabled == "true";
    herald_core::preferences::save(&hub.db, &user, &prefs).await.map_err(fail)
}

/// Sets how email arrives: `immediate`, `hourly` or `daily` (a digest per period).
#[server(endpoint = "settings/email-mode", output = crate::codec::JsonText)]
pub async fn set_email_mode(mode: String) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    let mut prefs = herald_core::preferences::get(&hub.db, &user).await.map_err(fail)?;
    prefs.email_mode = mode;
    herald_core::preferences::save(&hub.db, &user, &prefs).await.map_err(fail)
}

/// Sets the signed-in user's webhook; returns the signing secret, shown this once.
#[server(endpoint = "settings/webhook", output = crate::codec::JsonText)]
pub async fn set_webhook(url: String) -> Result<String, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    if !hub.publish.routing.webhook.as_ref().is_some_and(|w| w.personal) {
        return Err(ServerFnError::new("Personal webhooks are not enabled on this Herald."));
    }
    Ok(herald_core::webhooks::set(&hub.db, &user, &url).await.map_err(fail)?.secret)
}

/// Removes the signed-in user's webhook.
#[server(endpoint = "settings/webhook/remove", output = crate::codec::JsonText)]
pub async fn remove_webhook() -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    herald_core::webhooks::remove(&hub.db, &user).await.map_err(fail)
}

/// A new personal access token; the secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub name: String,
    pub secret: String,
}

/// Creates a personal access token for the signed-in user.
#[server(endpoint = "settings/tokens/create", output = crate::codec::JsonText)]
pub async fn create_personal_token(name: String) -> Result<CreatedToken, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(ServerFnError::new("Give the token a name of 1 to 100 characters, e.g. “laptop CLI”."));
    }
    let token = herald_core::auth::create_personal_token(&hub.db, &user, &name).await.map_err(fail)?;
    Ok(CreatedToken { name, secret: token.secret })
}

/// Revokes one of the signed-in user's personal access tokens.
#[server(endpoint = "settings/tokens/revoke", output = crate::codec::JsonText)]
pub async fn revoke_personal_token(id: String) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    hub.revoke_token(&id, Some(&user)).await.map_err(fail)
}

/// `/settings`: its code is a separate chunk, loaded when the page is first shown. The
/// page's state is made here, once, outside `SignedIn`'s suspense.
#[leptos::lazy]
pub(crate) fn page() -> AnyView {
    let state = SettingsState::new();
    view! { <SignedIn><SettingsPage state /></SignedIn> }.into_any()
}

/// Loads [`page`]'s code, if it is not loaded yet.
#[cfg(feature = "hydrate")]
pub(crate) async fn preload() {
    __preload_page().await;
}

/// The page's actions and the resource they reload. They are created with the route's view,
/// outside `SignedIn`'s suspense, which may build its children more than once on the server
/// (see `SignedIn`).
#[derive(Clone, Copy)]
struct SettingsState {
    channel: ServerAction<SetChannelSetting>,
    mark_read: ServerAction<SetMarkReadOnOpen>,
    create: ServerAction<CreatePersonalToken>,
    revoke: ServerAction<RevokePersonalToken>,
    email_mode: ServerAction<SetEmailMode>,
    set_hook: ServerAction<SetWebhook>,
    remove_hook: ServerAction<RemoveWebhook>,
    data: Resource<Result<SettingsView, ServerFnError>>,
}

impl SettingsState {
    fn new() -> SettingsState {
        let me = expect_context::<MeResource>();
        let live = expect_context::<Live>();
        let channel = ServerAction::<SetChannelSetting>::new();
        let mark_read = ServerAction::<SetMarkReadOnOpen>::new();
        let create = ServerAction::<CreatePersonalToken>::new();
        let revoke = ServerAction::<RevokePersonalToken>::new();
        let email_mode = ServerAction::<SetEmailMode>::new();
        let set_hook = ServerAction::<SetWebhook>::new();
        let remove_hook = ServerAction::<RemoveWebhook>::new();
        let data = Resource::new(
            move || {
                (
                    channel.version().get(),
                    mark_read.version().get(),
                    create.version().get(),
                    revoke.version().get(),
                    email_mode.version().get(),
                    set_hook.version().get(),
                    remove_hook.version().get(),
                    live.resets.get(),
                )
            },
            move |_| async move {
                signed_in(me, false).await?;
                settings_data().await
            },
        );
        SettingsState { channel, mark_read, create, revoke, email_mode, set_hook, remove_hook, data }
    }
}

/// Personal settings.
#[component]
fn SettingsPage(state: SettingsState) -> impl IntoView {
    let SettingsState { channel, mark_read, create, revoke, email_mode, set_hook, remove_hook, data } = state;
    view! {
        <PageTitle text="Settings" />
        <h1 class="page-title">"Settings"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! {
                        <Preferences mark_read_on_open=d.mark_read_on_open action=mark_read />
                        {d.email.then(|| view! { <EmailMode mode=d.email_mode.clone() action=email_mode /> })}
                        <Matrix settings=d.settings action=channel />
                        {d.personal_webhooks.then(|| view! { <Webhook url=d.webhook.clone() set=set_hook remove=remove_hook /> })}
                        <Tokens tokens=d.tokens rendered_at=d.rendered_at create revoke />
                    }
                    .into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Preferences: mark read on open, browser notifications.
#[component]
fn Preferences(mark_read_on_open: bool, action: ServerAction<SetMarkReadOnOpen>) -> impl IntoView {
    view! {
        <section class="settings-section" aria-labelledby="prefs-title">
            <h2 id="prefs-title">"Preferences"</h2>
            <InPlaceForm action input=move |_| SetMarkReadOnOpen { enabled: (!mark_read_on_open).to_string() } attr:class="setting-row">
                <input type="hidden" name="enabled" value=(!mark_read_on_open).to_string() />
                <span id="mark-read-label">"Mark a notification read when I open its link"</span>
                <button
                    type="submit"
                    class="toggle"
                    aria-pressed=mark_read_on_open.to_string()
                    aria-describedby="mark-read-label"
                    data-testid="mark-read-on-open"
                >
                    {if mark_read_on_open { "On" } else { "Off" }}
                </button>
            </InPlaceForm>
            <BrowserNotifications />
        </section>
    }
}

/// How email arrives: one message per notification, or an hourly or daily digest.
#[component]
fn EmailMode(mode: String, action: ServerAction<SetEmailMode>) -> impl IntoView {
    let options = [
        ("immediate", "Right away, one email per notification"),
        ("hourly", "An hourly digest"),
        ("daily", "A daily digest"),
    ];
    let select = NodeRef::<leptos::html::Select>::new();
    let input = move |_: &_| SetEmailMode { mode: select.get_untracked().map(|s| s.value()).unwrap_or_default() };
    view! {
        <section class="settings-section" aria-labelledby="email-title">
            <h2 id="email-title">"Email"</h2>
            <InPlaceForm action input attr:class="setting-row">
                <label for="email-mode">"Send me email"</label>
                <select id="email-mode" name="mode" data-testid="email-mode" node_ref=select>
                    {options
                        .into_iter()
                        .map(|(value, label)| view! { <option value=value selected=mode == value>{label}</option> })
                        .collect_view()}
                </select>
                <button type="submit" class="button">"Save"</button>
            </InPlaceForm>
        </section>
    }
}

/// A personal webhook: set (the signing secret is shown once) or remove.
#[component]
fn Webhook(url: Option<String>, set: ServerAction<SetWebhook>, remove: ServerAction<RemoveWebhook>) -> impl IntoView {
    let clock = expect_context::<crate::clock::Clock>();
    let secret = move || set.value().get().and_then(Result::ok);
    let error = move || set.value().get().and_then(Result::err).map(crate::components::error_text);
    let field = NodeRef::<leptos::html::Input>::new();
    view! {
        <section class="settings-section" aria-labelledby="webhook-title">
            <h2 id="webhook-title">"Webhook"</h2>
            <p class="muted">
                "Herald POSTs each of your notifications as JSON to this URL, signed with HMAC-SHA256 (header X-Herald-Signature). Turn the Webhook column on or off above per origin."
            </p>
            {match url {
                Some(u) => view! {
                    <div class="setting-row">
                        <code data-testid="webhook-url">{u}</code>
                        <InPlaceForm action=remove input=|_| RemoveWebhook {} attr:class="inline-form">
                            <button type="submit" class="link-button danger">"Remove"</button>
                        </InPlaceForm>
                    </div>
                }
                .into_any(),
                None => ().into_any(),
            }}
            <InPlaceForm action=set input=move |_| SetWebhook { url: typed(field) } attr:class="setting-row">
                <label for="webhook-url">"URL"</label>
                <input id="webhook-url" name="url" type="url" placeholder="https://example.com/herald" required node_ref=field />
                // The secret is shown in place, once, so this needs JavaScript (as tokens do).
                <button type="submit" class="button" disabled=move || clock.now.get().is_none()>"Save webhook"</button>
            </InPlaceForm>
            <p class="error" role="alert">{error}</p>
            {move || secret().map(|s| view! {
                <div class="token-created" role="status">
                    <p>"Verify signatures with this secret. Copy it now: it is not shown again."</p>
                    <code class="secret" data-testid="webhook-secret">{s}</code>
                </div>
            })}
        </section>
    }
}

/// Origins and their topics against channels, each cell a toggle.
#[component]
fn Matrix(settings: NotificationSettings, action: ServerAction<SetChannelSetting>) -> impl IntoView {
    let channels: Vec<String> = settings.channels.iter().map(|c| c.id.clone()).collect();
    let Some(first) = settings.channels.first().cloned() else { return ().into_any() };
    let cell = move |channel: String, origin: String, topic: String, on: bool| {
        let label = if topic.is_empty() {
            format!("{channel}: notifications from {origin}")
        } else {
            format!("{channel}: {origin}, topic {topic}")
        };
        let input = {
            let (channel, origin, topic) = (channel.clone(), origin.clone(), topic.clone());
            move |_: &_| SetChannelSetting {
                channel: channel.clone(),
                origin: origin.clone(),
                topic: topic.clone(),
                enabled: (!on).to_string(),
            }
        };
        view! {
            <td>
                <InPlaceForm action input attr:class="inline-form">
                    <input type="hidden" name="channel" value=channel />
                    <input type="hidden" name="origin" value=origin />
                    <input type="hidden" name="topic" value=topic />
                    <input type="hidden" name="enabled" value=(!on).to_string() />
                    <button type="submit" class="toggle" aria-pressed=on.to_string() data-testid="setting-toggle">
                        {if on { "On" } else { "Off" }}
                        <span class="visually-hidden">{format!(" — {label}")}</span>
                    </button>
                </InPlaceForm>
            </td>
        }
    };
    let rows = first
        .origins
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            let origin_cells = settings
                .channels
                .iter()
                .map(|c| cell(c.id.clone(), origin.id.clone(), String::new(), c.origins[i].enabled))
                .collect_view();
            let topics = origin.topics.clone().unwrap_or_default();
            let topic_rows = topics
                .iter()
                .enumerate()
                .map(|(j, topic)| {
                    let cells = settings
                        .channels
                        .iter()
                        .map(|c| {
                            let on = c.origins[i].topics.as_ref().and_then(|t| t.get(j)).is_some_and(|t| t.enabled);
                            cell(c.id.clone(), origin.id.clone(), topic.id.clone(), on)
                        })
                        .collect_view();
                    view! { <tr class="topic-row"><th scope="row"><span class="chip">{topic.id.clone()}</span></th>{cells}</tr> }
                })
                .collect_view();
            view! {
                <tr class="origin-row" data-origin=origin.id.clone()><th scope="row">{origin.id.clone()}</th>{origin_cells}</tr>
                {topic_rows}
            }
        })
        .collect_view();
    view! {
        <section class="settings-section" aria-labelledby="matrix-title">
            <h2 id="matrix-title">"What reaches you"</h2>
            <p class="muted">
                "Each origin (a service that publishes) and its topics, per channel. A topic's own choice wins over its origin's."
            </p>
            {if first.origins.is_empty() {
                view! { <p class="empty-state">"Nothing has reached you yet; origins appear here once they do."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="matrix" data-testid="settings-matrix">
                            <thead>
                                <tr>
                                    <th scope="col">"Origin / topic"</th>
                                    {channels.into_iter().map(|c| view! { <th scope="col">{c}</th> }).collect_view()}
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
    .into_any()
}

/// Personal access tokens: create (shown once), list with last use, revoke.
#[component]
fn Tokens(
    tokens: Vec<TokenView>,
    rendered_at: i64,
    create: ServerAction<CreatePersonalToken>,
    revoke: ServerAction<RevokePersonalToken>,
) -> impl IntoView {
    let when = move |at: i64| view! { <RelativeTime at rendered_at /> };
    let clock = expect_context::<crate::clock::Clock>();
    let created = move || create.value().get().and_then(Result::ok);
    let error = move || create.value().get().and_then(Result::err).map(crate::components::error_text);
    let name = NodeRef::<leptos::html::Input>::new();
    view! {
        <section class="settings-section" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"Personal access tokens"</h2>
            <p class="muted">
                "A token acts as you on the API (reading your inbox, e.g. from a script). It cannot publish."
            </p>
            <InPlaceForm action=create input=move |_| CreatePersonalToken { name: typed(name) } attr:class="setting-row">
                <label for="token-name">"Name"</label>
                <input id="token-name" name="name" type="text" maxlength="100" placeholder="e.g. laptop CLI" required node_ref=name />
                // The secret is shown in place, once: without JavaScript the page would reload
                // and lose it, so creating needs JavaScript.
                <button type="submit" class="button" disabled=move || clock.now.get().is_none()>"Create token"</button>
            </InPlaceForm>
            <noscript><p class="muted">"Creating a token needs JavaScript (the token is shown once, in place)."</p></noscript>
            <p class="error" role="alert">{error}</p>
            {move || created().map(|t| view! {
                <div class="token-created" role="status" data-testid="token-created">
                    <p>{format!("Token “{}” created. Copy it now: it is not shown again.", t.name)}</p>
                    <code class="secret" data-testid="token-secret">{t.secret}</code>
                </div>
            })}
            {if tokens.is_empty() {
                view! { <p class="muted" data-testid="no-tokens">"You have no tokens."</p> }.into_any()
            } else {
                view! {
                    <table class="tokens" data-testid="tokens">
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                        <tbody>
                            {tokens.into_iter().map(|t| view! {
                                <tr data-testid="token">
                                    <td>{t.name.clone()}</td>
                                    <td>{when(t.created_at)}</td>
                                    <td>{match t.last_used_at { Some(ms) => when(ms).into_any(), None => view! { "never" }.into_any() }}</td>
                                    <td>
                                        <InPlaceForm action=revoke input={let id = t.id.clone(); move |_| RevokePersonalToken { id: id.clone() }} attr:class="inline-form">
                                            <input type="hidden" name="id" value=t.id.clone() />
                                            <button type="submit" class="link-button danger" aria-label=format!("Revoke “{}”", t.name)>"Revoke"</button>
                                        </InPlaceForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }
                .into_any()
            }}
        </section>
    }
}

/// The switch for system notifications. It needs JavaScript: without it the control is
/// disabled and says so.
#[component]
fn BrowserNotifications() -> impl IntoView {
    let enabled = RwSignal::new(false);
    let ready = RwSignal::new(false);
    let note = RwSignal::new(String::new());
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        enabled.set(crate::live::system_notification::enabled());
        ready.set(true);
    });
    let toggle = move |_| {
        let want = !enabled.get_untracked();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let on = crate::live::system_notification::set_enabled(want).await;
            enabled.set(on);
            note.set(if want && !on {
                "Your browser blocked notifications for this site; allow them in its site settings.".into()
            } else {
                String::new()
            });
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = want;
    };
    view! {
        <div class="setting-row">
            <label class="switch">
                <input
                    type="checkbox"
                    data-testid="browser-notifications"
                    prop:checked=move || enabled.get()
                    disabled=move || !ready.get()
                    on:change=toggle
                />
                " Show a system notification when one arrives while Herald is in the background"
            </label>
            <p class="muted" role="status">{move || note.get()}</p>
            <noscript><p class="muted">"Browser notifications need JavaScript."</p></noscript>
        </div>
    }
}
