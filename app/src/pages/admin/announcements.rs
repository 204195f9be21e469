//! Announcements in the admin console: the composer (live preview, audience with directory
//! search and reach, schedule, expiry) and the list with states and read receipts.

// `save_announcement` takes one argument per field of the composer's form. In the browser's
// build `#[server]` generates a stub of the same signature that the allowance on the function
// does not reach, so the browser's build allows it here.
#![cfg_attr(feature = "hydrate", allow(clippy::too_many_arguments))]

use herald_model::Severity;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::components::error_text as message;
use crate::components::{InPlaceForm, submitted_by};
use crate::live::Live;
use crate::shell::{MeResource, signed_in};

/// An announcement as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementView {
    pub id: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub severity: Severity,
    pub topic: String,
    pub icon: String,
    pub everyone: bool,
    pub audience: Vec<String>,
    pub excluded: Vec<String>,
    pub forward: bool,
    pub state: String,
    /// Why it could not be published when its time came (state `failed`).
    pub failure: Option<String>,
    pub publish_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub published_at: Option<i64>,
    pub recipients: i64,
    pub read: i64,
}

/// Every announcement, newest first.
#[server(endpoint = "admin/announcements", output = crate::codec::JsonText)]
pub async fn list_announcements() -> Result<Vec<AnnouncementView>, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    Ok(herald_core::announcements::list(&hub.db)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|a| AnnouncementView {
            id: a.id,
            title: a.draft.title,
            body: a.draft.body.unwrap_or_default(),
            link: a.draft.link.unwrap_or_default(),
            severity: a.draft.severity,
            topic: a.draft.topic.unwrap_or_default(),
            icon: a.draft.icon.unwrap_or_default(),
            everyone: a.draft.everyone,
            audience: a.draft.audience,
            excluded: a.draft.excluded,
            forward: a.draft.forward,
            state: a.state,
            failure: a.failure,
            publish_at: a.draft.publish_at,
            expires_at: a.draft.expires_at,
            published_at: a.published_at,
            recipients: a.recipients,
            read: a.read,
        })
        .collect())
}

/// A `datetime-local` value in the browser's zone (`tz` minutes east of UTC), as
/// milliseconds since the epoch.
#[cfg(feature = "ssr")]
fn local_time(field: &str, value: &str, tz: i32) -> Result<Option<i64>, ServerFnError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M"))
        .map_err(|_| ServerFnError::new(format!("{field}: '{value}' is not a date and time")))?;
    Ok(Some(parsed.and_utc().timestamp_millis() - i64::from(tz) * 60_000))
}

#[cfg(feature = "ssr")]
fn ref_list(s: &str) -> Vec<String> {
    s.split([',', '\n', ' ']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect()
}

/// Saves the composer: `intent` is `draft`, `schedule` or `publish` (the button pressed).
#[server(endpoint = "admin/announcements/save", output = crate::codec::JsonText)]
#[allow(clippy::too_many_arguments, reason = "one argument per field of the composer's form")]
pub async fn save_announcement(
    id: String,
    title: String,
    body: String,
    link: String,
    severity: String,
    topic: String,
    icon: Option<String>,
    audience_kind: String,
    audience: String,
    excluded: String,
    forward: Option<String>,
    publish_at: String,
    expires_at: String,
    tz: Option<i32>,
    intent: String,
) -> Result<String, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    use herald_core::announcements::{Draft, Intent, save};
    let admin = require_admin().await?;
    let hub = hub()?;
    let tz = tz.unwrap_or(0);
    let intent = match intent.as_str() {
        "draft" => Intent::Draft,
        "schedule" => Intent::Schedule,
        "publish" => Intent::Publish,
        other => return Err(ServerFnError::new(format!("unknown action '{other}'"))),
    };
    let opt = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let draft = Draft {
        title,
        body: opt(body),
        link: opt(link),
        severity: severity.parse().map_err(ServerFnError::new)?,
        topic: opt(topic),
        icon: icon.and_then(opt),
        everyone: audience_kind == "everyone",
        audience: ref_list(&audience),
        excluded: ref_list(&excluded),
        forward: forward.is_some(),
        publish_at: local_time("publish at", &publish_at, tz)?,
        expires_at: local_time("expires at", &expires_at, tz)?,
    };
    let id = Some(id).filter(|i| !i.is_empty());
    let saved = save(&hub.db, &hub.publish, &admin, id.as_deref(), &draft, intent).await.map_err(fail)?;
    Ok(match saved.state.as_str() {
        "published" => {
            format!("Published to {} {}.", saved.recipients, if saved.recipients == 1 { "person" } else { "people" })
        }
        "scheduled" => "Scheduled.".to_string(),
        _ => "Draft saved.".to_string(),
    })
}

/// Withdraws an announcement: it leaves every inbox.
#[server(endpoint = "admin/announcements/withdraw", output = crate::codec::JsonText)]
pub async fn withdraw_announcement(id: String) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    herald_core::announcements::withdraw(&hub.db, &id).await.map_err(fail)
}

/// Renders markdown with the inbox's sanitizer, for the live preview.
#[server(endpoint = "admin/announcements/preview", output = crate::codec::JsonText)]
pub async fn preview_markdown(body: String) -> Result<String, ServerFnError> {
    crate::server::require_admin().await?;
    Ok(herald_core::markdown::render(&body))
}

/// How many people an audience is.
#[server(endpoint = "admin/announcements/reach", output = crate::codec::JsonText)]
pub async fn announcement_reach(everyone: bool, audience: String, excluded: String) -> Result<i64, ServerFnError> {
    use crate::server::{hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    herald_core::announcements::reach(&hub.db, everyone, &ref_list(&audience), &ref_list(&excluded))
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Groups and users whose ref or name contains `q`, for the audience picker.
#[server(endpoint = "admin/directory/search", output = crate::codec::JsonText)]
pub async fn search_directory(q: String) -> Result<Vec<(String, String)>, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for g in herald_core::directory::list_groups(&hub.db).await.map_err(fail)? {
        let name = g.display_name.unwrap_or_default();
        if g.group_ref.contains(&q) || name.to_lowercase().contains(&q) {
            out.push((g.group_ref, name));
        }
    }
    for u in herald_core::directory::list_users(&hub.db).await.map_err(fail)? {
        let name = u.display_name.unwrap_or_default();
        if u.user_ref.contains(&q) || name.to_lowercase().contains(&q) {
            out.push((u.user_ref, name));
        }
    }
    out.truncate(20);
    Ok(out)
}

/// Who has read an announcement: (user, read).
#[server(endpoint = "admin/announcements/receipts", output = crate::codec::JsonText)]
pub async fn announcement_receipts(id: String) -> Result<Vec<(String, bool)>, ServerFnError> {
    use crate::server::{fail, hub, require_admin};
    require_admin().await?;
    let hub = hub()?;
    Ok(herald_core::announcements::receipts(&hub.db, &id)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|(u, r)| (u, r.is_some()))
        .collect())
}

/// A time for a `datetime-local` input in the browser's zone.
fn local_input(ms: Option<i64>, tz: i32) -> String {
    ms.and_then(|t| chrono::DateTime::from_timestamp_millis(t + i64::from(tz) * 60_000))
        .map(crate::clock::datetime_local)
        .unwrap_or_default()
}

/// The composer's fields, so "Edit" can load an announcement into it.
#[derive(Clone, Copy)]
struct Fields {
    id: RwSignal<String>,
    title: RwSignal<String>,
    body: RwSignal<String>,
    link: RwSignal<String>,
    severity: RwSignal<String>,
    topic: RwSignal<String>,
    icon: RwSignal<String>,
    everyone: RwSignal<bool>,
    forward: RwSignal<bool>,
    audience: RwSignal<String>,
    excluded: RwSignal<String>,
    publish_at: RwSignal<String>,
    expires_at: RwSignal<String>,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            id: RwSignal::new(String::new()),
            title: RwSignal::new(String::new()),
            body: RwSignal::new(String::new()),
            link: RwSignal::new(String::new()),
            severity: RwSignal::new("normal".into()),
            topic: RwSignal::new(String::new()),
            icon: RwSignal::new(String::new()),
            everyone: RwSignal::new(true),
            forward: RwSignal::new(true),
            audience: RwSignal::new(String::new()),
            excluded: RwSignal::new(String::new()),
            publish_at: RwSignal::new(String::new()),
            expires_at: RwSignal::new(String::new()),
        }
    }

    /// Back to an empty composer.
    fn clear(&self) {
        for text in [
            self.id,
            self.title,
            self.body,
            self.link,
            self.topic,
            self.icon,
            self.audience,
            self.excluded,
            self.publish_at,
            self.expires_at,
        ] {
            text.set(String::new());
        }
        self.severity.set("normal".into());
        self.everyone.set(true);
        self.forward.set(true);
    }

    fn load(&self, a: &AnnouncementView, tz: i32) {
        self.id.set(a.id.clone());
        self.title.set(a.title.clone());
        self.body.set(a.body.clone());
        self.link.set(a.link.clone());
        self.severity.set(a.severity.as_str().to_string());
        self.topic.set(a.topic.clone());
        self.icon.set(a.icon.clone());
        self.everyone.set(a.everyone);
        self.forward.set(a.forward);
        self.audience.set(a.audience.join(", "));
        self.excluded.set(a.excluded.join(", "));
        self.publish_at.set(local_input(a.publish_at, tz));
        self.expires_at.set(local_input(a.expires_at, tz));
    }

    /// What the composer's form posts, submitted by the button of `ev` (publish, schedule or
    /// save a draft) from a browser `tz` minutes east of UTC: the fields hold these signals.
    fn arguments(&self, ev: &leptos::ev::SubmitEvent, tz: i32) -> SaveAnnouncement {
        SaveAnnouncement {
            id: self.id.get_untracked(),
            title: self.title.get_untracked(),
            body: self.body.get_untracked(),
            link: self.link.get_untracked(),
            severity: self.severity.get_untracked(),
            topic: self.topic.get_untracked(),
            icon: Some(self.icon.get_untracked()),
            audience_kind: if self.everyone.get_untracked() { "everyone" } else { "chosen" }.to_string(),
            audience: self.audience.get_untracked(),
            excluded: self.excluded.get_untracked(),
            // A checkbox posts its value only when it is checked.
            forward: self.forward.get_untracked().then(|| "on".to_string()),
            publish_at: self.publish_at.get_untracked(),
            expires_at: self.expires_at.get_untracked(),
            tz: Some(tz),
            intent: submitted_by(ev).unwrap_or_default(),
        }
    }
}

/// The announcements section's state: its actions, the composer's fields and every resource
/// it reads. It is created once with the page (`AdminRoute`'s view), outside the suspense that
/// waits to know who is signed in: on the server a suspense may build its children more than
/// once, and resources created there would be created, numbered and serialized once per build
/// (see `SignedIn`).
#[derive(Clone, Copy)]
pub(super) struct AnnouncementsState {
    save: ServerAction<SaveAnnouncement>,
    withdraw: ServerAction<WithdrawAnnouncement>,
    list: Resource<Result<Vec<AnnouncementView>, ServerFnError>>,
    fields: Fields,
    preview: Resource<Result<String, ServerFnError>>,
    reach: Resource<Result<i64, ServerFnError>>,
    /// What the directory search box holds, and what it found: (reference, name).
    search: RwSignal<String>,
    found: Resource<Result<Vec<(String, String)>, ServerFnError>>,
    /// The announcement whose read receipts are open, and those receipts: (user, read).
    shown: RwSignal<Option<String>>,
    receipts: Resource<Result<Vec<(String, bool)>, ServerFnError>>,
}

impl AnnouncementsState {
    /// The resources ask the server only for an admin (see `signed_in`).
    pub(super) fn new(me: MeResource, live: Live) -> AnnouncementsState {
        let save = ServerAction::<SaveAnnouncement>::new();
        let withdraw = ServerAction::<WithdrawAnnouncement>::new();
        let list = Resource::new(
            move || (save.version().get(), withdraw.version().get(), live.resets.get()),
            move |_| async move {
                signed_in(me, true).await?;
                list_announcements().await
            },
        );
        let fields = Fields::new();
        let preview = Resource::new(
            move || fields.body.get(),
            move |body| async move {
                if body.trim().is_empty() {
                    return Ok(String::new());
                }
                signed_in(me, true).await?;
                preview_markdown(body).await
            },
        );
        let reach = Resource::new(
            move || (fields.everyone.get(), fields.audience.get(), fields.excluded.get()),
            move |(everyone, audience, excluded)| async move {
                signed_in(me, true).await?;
                announcement_reach(everyone, audience, excluded).await
            },
        );
        let search = RwSignal::new(String::new());
        let found = Resource::new(
            move || search.get(),
            move |q| async move {
                if q.trim().len() < 2 {
                    return Ok(vec![]);
                }
                signed_in(me, true).await?;
                search_directory(q).await
            },
        );
        let shown = RwSignal::new(None::<String>);
        let receipts = Resource::new(
            move || shown.get(),
            move |id| async move {
                let Some(id) = id else { return Ok(vec![]) };
                signed_in(me, true).await?;
                announcement_receipts(id).await
            },
        );
        AnnouncementsState { save, withdraw, list, fields, preview, reach, search, found, shown, receipts }
    }
}

/// The announcements section.
#[component]
pub(super) fn Announcements(state: AnnouncementsState) -> impl IntoView {
    let AnnouncementsState { save, withdraw, list, fields, shown, .. } = state;
    // After a save or a withdrawal the list reloads: the read receipts close, and a
    // successful save empties the composer for the next one.
    Effect::new(move |prev: Option<(usize, usize)>| {
        let v = (save.version().get(), withdraw.version().get());
        if let Some(prev) = prev.filter(|p| *p != v) {
            shown.set(None);
            if prev.0 != v.0 && matches!(save.value().get_untracked(), Some(Ok(_))) {
                fields.clear();
            }
        }
        v
    });
    view! {
        <section class="settings-section wide" id="announcements" aria-labelledby="announcements-title">
            <h2 id="announcements-title">"Announcements"</h2>
            <Composer state />
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(rows) => view! { <AnnouncementList rows state /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{message(e)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The composer.
#[component]
fn Composer(state: AnnouncementsState) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let AnnouncementsState { save, fields, preview, reach, search, found, .. } = state;
    let add = move |_| {
        let pick = search.get_untracked().trim().to_string();
        if pick.is_empty() {
            return;
        }
        fields.audience.update(|a| {
            if !a.trim().is_empty() {
                a.push_str(", ");
            }
            a.push_str(&pick);
        });
        fields.everyone.set(false);
        search.set(String::new());
    };
    let text = move |signal: RwSignal<String>| move |ev: leptos::ev::Event| signal.set(event_target_value(&ev));
    view! {
        <InPlaceForm action=save input=move |ev| fields.arguments(ev, clock.tz.get_untracked()) attr:class="composer" attr:data-testid="composer">
            <input type="hidden" name="id" prop:value=move || fields.id.get() />
            <input type="hidden" name="tz" prop:value=move || clock.tz.get().to_string() />
            <p class="muted">{move || if fields.id.get().is_empty() { "New announcement".to_string() } else { "Editing an announcement".to_string() }}</p>
            <label for="a-title">"Title"</label>
            <input id="a-title" name="title" type="text" required maxlength="255" prop:value=move || fields.title.get() on:input=text(fields.title) />
            <div class="composer-body">
                <div>
                    <label for="a-body">"Message (markdown)"</label>
                    <textarea id="a-body" name="body" rows="6" prop:value=move || fields.body.get() on:input=text(fields.body)></textarea>
                </div>
                <div>
                    <p class="label">"Preview"</p>
                    <Transition fallback=|| ()>
                        <div class="description preview" data-testid="preview" inner_html=move || preview.get().and_then(Result::ok).unwrap_or_default()></div>
                    </Transition>
                </div>
            </div>
            <div class="setting-row">
                <label for="a-severity">"Severity"</label>
                <select id="a-severity" name="severity" prop:value=move || fields.severity.get() on:change=text(fields.severity)>
                    {Severity::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
                <label for="a-link">"Link"</label>
                <input id="a-link" name="link" type="url" placeholder="https://…" prop:value=move || fields.link.get() on:input=text(fields.link) />
                <label for="a-topic">"Topic"</label>
                <input id="a-topic" name="topic" type="text" prop:value=move || fields.topic.get() on:input=text(fields.topic) />
                <label for="a-icon">"Icon"</label>
                <input id="a-icon" name="icon" type="text" placeholder="e.g. megaphone" maxlength="255" prop:value=move || fields.icon.get() on:input=text(fields.icon) />
            </div>
            <fieldset class="audience">
                <legend>"Audience"</legend>
                <label><input type="radio" name="audience_kind" value="everyone" prop:checked=move || fields.everyone.get() on:change=move |_| fields.everyone.set(true) />" Everyone"</label>
                <label><input type="radio" name="audience_kind" value="chosen" prop:checked=move || !fields.everyone.get() on:change=move |_| fields.everyone.set(false) />" Chosen groups and users"</label>
                <div class="setting-row">
                    <label for="a-search">"Find"</label>
                    <input id="a-search" type="search" list="directory-matches" placeholder="group or user" autocomplete="off" prop:value=move || search.get() on:input=text(search) />
                    <datalist id="directory-matches">
                        <Transition fallback=|| ()>
                            {move || found.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|(r, name)| view! { <option value=r.clone()>{name}</option> }).collect_view()}
                        </Transition>
                    </datalist>
                    <button type="button" class="button" on:click=add>"Add"</button>
                </div>
                <label for="a-audience">"Groups and users"</label>
                <input id="a-audience" name="audience" type="text" placeholder="group:default/platform, user:default/alice" prop:value=move || fields.audience.get() on:input=text(fields.audience) />
                <label for="a-excluded">"Except"</label>
                <input id="a-excluded" name="excluded" type="text" placeholder="user:default/bob" prop:value=move || fields.excluded.get() on:input=text(fields.excluded) />
                <p class="muted" role="status" data-testid="reach">
                    <Transition fallback=|| ()>
                        {move || reach.get().and_then(Result::ok).map(|n| format!("Will reach {n} {}.", if n == 1 { "person" } else { "people" }))}
                    </Transition>
                </p>
            </fieldset>
            <div class="setting-row">
                <label for="a-publish-at">"Publish at"</label>
                <input id="a-publish-at" name="publish_at" type="datetime-local" step="1" prop:value=move || fields.publish_at.get() on:input=text(fields.publish_at) />
                <label for="a-expires-at">"Expires at"</label>
                <input id="a-expires-at" name="expires_at" type="datetime-local" step="1" prop:value=move || fields.expires_at.get() on:input=text(fields.expires_at) />
                <label>
                    <input type="checkbox" name="forward" value="on" prop:checked=move || fields.forward.get() on:change=move |ev| fields.forward.set(event_target_checked(&ev)) />
                    " Also by email, Slack and webhooks (per each person's settings)"
                </label>
            </div>
            <div class="setting-row">
                <button type="submit" name="intent" value="publish" class="button primary">"Publish now"</button>
                <button type="submit" name="intent" value="schedule" class="button">"Schedule"</button>
                <button type="submit" name="intent" value="draft" class="button">"Save draft"</button>
            </div>
            <p role="status" data-testid="composer-result">
                {move || save.value().get().map(|r| match r {
                    Ok(m) => view! { <span>{m}</span> }.into_any(),
                    Err(e) => view! { <span class="error">{message(e)}</span> }.into_any(),
                })}
            </p>
        </InPlaceForm>
    }
}

/// The announcements with their state and read receipts.
#[component]
fn AnnouncementList(rows: Vec<AnnouncementView>, state: AnnouncementsState) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let AnnouncementsState { fields, withdraw, shown, receipts, .. } = state;
    if rows.is_empty() {
        return view! { <p class="empty-state">"No announcements yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll">
            <table class="tokens" data-testid="announcements">
                <thead><tr>
                    <th scope="col">"Title"</th><th scope="col">"Audience"</th><th scope="col">"State"</th>
                    <th scope="col">"Read"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|a| {
                        let audience = if a.everyone { "everyone".to_string() } else { a.audience.join(", ") };
                        let editable = matches!(a.state.as_str(), "draft" | "scheduled" | "published" | "failed");
                        let published = a.state == "published";
                        let (id, id2) = (a.id.clone(), a.id.clone());
                        let row = a.clone();
                        view! {
                            <tr data-testid="announcement" data-state=a.state.clone()>
                                <td>{a.title.clone()}</td>
                                <td>{audience}</td>
                                <td>
                                    {a.state.clone()}
                                    {a.failure.clone().map(|why| view! {
                                        <p class="error announcement-failure" data-testid="announcement-failure">{why}</p>
                                    })}
                                </td>
                                <td data-testid="read-count">{if published { format!("{} of {}", a.read, a.recipients) } else { "—".into() }}</td>
                                <td class="actions">
                                    {editable.then(|| view! {
                                        <button type="button" class="link-button" on:click=move |_| fields.load(&row, clock.tz.get_untracked())>"Edit"</button>
                                    })}
                                    {published.then(|| view! {
                                        <button type="button" class="link-button" on:click=move |_| shown.set(Some(id.clone()))>"Read receipts"</button>
                                    })}
                                    {editable.then(|| view! {
                                        <InPlaceForm action=withdraw input={let id = id2.clone(); move |_| WithdrawAnnouncement { id: id.clone() }} attr:class="inline-form">
                                            <input type="hidden" name="id" value=id2.clone() />
                                            <button type="submit" class="link-button danger">"Withdraw"</button>
                                        </InPlaceForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Transition fallback=|| ()>
            {move || receipts.get().and_then(Result::ok).filter(|r| !r.is_empty()).map(|r| {
                let (read, unread): (Vec<_>, Vec<_>) = r.into_iter().partition(|(_, read)| *read);
                view! {
                    <div class="receipts" data-testid="receipts">
                        <div><h3>{format!("Read ({})", read.len())}</h3><ul data-testid="receipts-read">{read.into_iter().map(|(u, _)| view! { <li>{u}</li> }).collect_view()}</ul></div>
                        <div><h3>{format!("Not read ({})", unread.len())}</h3><ul data-testid="receipts-unread">{unread.into_iter().map(|(u, _)| view! { <li>{u}</li> }).collect_view()}</ul></div>
                    </div>
                }
            })}
        </Transition>
    }
    .into_any()
}
