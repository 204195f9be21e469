//! The inbox: views, filters, sorting and paging held in the URL; per-row actions as forms
//! that work without JavaScript and in place with it.

mod bulk;
mod bursts;
pub mod keyboard;
mod row;

use std::collections::BTreeSet;

#[cfg(feature = "ssr")]
use herald_model::Notification;
use herald_model::Severity;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::{GetForm, InPlaceForm, PageTitle};
use crate::live::Live;
use crate::notification_fns::{BulkForm, MarkAllRead, SetStateForm, SnoozeForm};
use crate::shell::{MeResource, Session, SignedIn, signed_in};
use row::{Row, RowContext};

/// The inbox's state, as it appears in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxQuery {
    /// unread, all (default), saved, done or snoozed.
    pub view: String,
    /// Minimum severity, or empty.
    pub severity: String,
    pub topic: String,
    /// 24h, 7d, or empty for any time.
    pub since: String,
    pub q: String,
    /// newest (default), oldest, severity, topic, origin.
    pub sort: String,
    /// 1-based.
    pub page: i64,
    /// 20, 50 or 100.
    pub per: i64,
}

impl InboxQuery {
    fn from_map(get: impl Fn(&str) -> Option<String>) -> Self {
        InboxQuery {
            view: get("view").unwrap_or_default(),
            severity: get("severity").unwrap_or_default(),
            topic: get("topic").unwrap_or_default(),
            since: get("since").unwrap_or_default(),
            q: get("q").unwrap_or_default(),
            sort: get("sort").unwrap_or_default(),
            page: get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
            per: get("per").and_then(|p| p.parse().ok()).filter(|p| [20, 50, 100].contains(p)).unwrap_or(20),
        }
    }

    /// The URL of this state with some parameters changed.
    fn href(&self, change: impl FnOnce(&mut InboxQuery)) -> String {
        let mut q = self.clone();
        change(&mut q);
        let mut parts = Vec::new();
        for (k, v) in [
            ("view", &q.view),
            ("severity", &q.severity),
            ("topic", &q.topic),
            ("since", &q.since),
            ("q", &q.q),
            ("sort", &q.sort),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if q.page > 1 {
            parts.push(format!("page={}", q.page));
        }
        if q.per != 20 {
            parts.push(format!("per={}", q.per));
        }
        if parts.is_empty() { "/".into() } else { format!("/?{}", parts.join("&")) }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A notification as the inbox's rows and the detail page show it, its description rendered
/// (sanitized) on the server.
///
/// Not the API's `Notification`: the browser would read that with chrono's parsers for its
/// times and serde_json's `Value` for metadata no page shows, code the bundle every page
/// loads carried for it. Times are milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: String,
    pub origin: String,
    pub title: String,
    pub description_html: Option<String>,
    pub link: Option<String>,
    pub severity: Severity,
    pub topic: Option<String>,
    pub scope: Option<String>,
    pub created: i64,
    pub updated: Option<i64>,
    pub unread: bool,
    pub saved: bool,
    pub archived: bool,
    pub snoozed_until: Option<i64>,
}

#[cfg(feature = "ssr")]
impl InboxItem {
    /// What the pages show of `n`.
    pub fn new(n: Notification) -> InboxItem {
        InboxItem {
            description_html: n.payload.description.as_deref().map(herald_core::markdown::render),
            id: n.id,
            origin: n.origin,
            title: n.payload.title,
            link: n.payload.link,
            severity: n.payload.severity,
            topic: n.payload.topic,
            scope: n.payload.scope,
            created: n.created.timestamp_millis(),
            updated: n.updated.map(|t| t.timestamp_millis()),
            unread: n.read.is_none(),
            saved: n.saved.is_some(),
            archived: n.archived.is_some(),
            snoozed_until: n.snoozed_until.map(|t| t.timestamp_millis()),
        }
    }
}

/// One page of the inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxData {
    pub total: i64,
    pub items: Vec<InboxItem>,
    pub topics: Vec<String>,
    /// When the server read the page, in milliseconds since the epoch.
    pub rendered_at: i64,
}

/// Loads a page of the signed-in user's inbox.
#[server(endpoint = "inbox", output = crate::codec::JsonText)]
pub async fn inbox_page(query: InboxQuery) -> Result<InboxData, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::notifications::{ListQuery, list, topics};
    let hub = hub()?;
    let user = require_user().await?;
    let filter = crate::notification_fns::filter_of(&query);
    let order = crate::notification_fns::order_of(&query.sort);
    let q = ListQuery { filter: filter.clone(), order, offset: (query.page - 1) * query.per, limit: query.per };
    let (notifications, total) = list(&hub.db, &user, &q).await.map_err(fail)?;
    let all_topics = topics(&hub.db, &user, &herald_core::notifications::Filter::default()).await.map_err(fail)?;
    let items = notifications.into_iter().map(InboxItem::new).collect();
    Ok(InboxData { total, items, topics: all_topics, rendered_at: herald_core::time::now_ms() })
}

/// The inbox, to a signed-in user. Its actions and resource are created here, outside
/// `SignedIn`'s suspense, which may build its children more than once on the server (see
/// `SignedIn`).
#[component]
pub fn InboxPage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let session = expect_context::<Session>();
    let live = expect_context::<Live>();
    let set_state = ServerAction::<SetStateForm>::new();
    let snooze = ServerAction::<SnoozeForm>::new();
    let bulk = ServerAction::<BulkForm>::new();
    let mark_all = ServerAction::<MarkAllRead>::new();
    let params = crate::router::use_query();
    let query = Memo::new(move |_| params.with(|p| InboxQuery::from_map(|k| p.get(k))));
    // Reload when the URL, the session or the data changes (here or in another tab).
    let page = Resource::new(
        move || {
            (
                query.get(),
                session.version(),
                set_state.version().get(),
                snooze.version().get(),
                bulk.version().get(),
                mark_all.version().get(),
                live.arrivals.with(Vec::len),
                live.updates.get(),
                live.resets.get(),
            )
        },
        move |(q, ..)| async move {
            signed_in(me, false).await?;
            inbox_page(q).await
        },
    );
    let state = InboxState { set_state, snooze, bulk, mark_all, query, page };
    view! { <SignedIn><Inbox state /></SignedIn> }
}

/// The inbox page's actions, its query and the page of results they reload.
#[derive(Clone, Copy)]
struct InboxState {
    set_state: ServerAction<SetStateForm>,
    snooze: ServerAction<SnoozeForm>,
    bulk: ServerAction<BulkForm>,
    mark_all: ServerAction<MarkAllRead>,
    query: Memo<InboxQuery>,
    page: Resource<Result<InboxData, ServerFnError>>,
}

/// The inbox, once signed in.
#[component]
fn Inbox(state: InboxState) -> impl IntoView {
    let InboxState { set_state, snooze, bulk, mark_all, query, page } = state;
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let help = RwSignal::new(false);
    let current = RwSignal::new(None::<String>);
    keyboard::install(help, current);
    view! {
        <PageTitle text="Inbox" />
        <div class="inbox-head">
            <h1 class="page-title">"Inbox"</h1>
            <Views query />
            <button type="button" class="link-button shortcuts-button" on:click=move |_| help.set(true)>
                "Shortcuts " <kbd>"?"</kbd>
            </button>
        </div>
        <keyboard::ShortcutHelp open=help />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(data) => {
                        let q = query.get_untracked();
                        let topics = data.topics.clone();
                        provide_context(RowContext { set_state, snooze, selected, current, rendered_at: data.rendered_at });
                        view! {
                            <Filters query topics />
                            <Results data q mark_all bulk selected />
                        }
                        .into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The view tabs.
#[component]
fn Views(query: Memo<InboxQuery>) -> impl IntoView {
    let tab = move |view: &'static str, label: &'static str| {
        let href = move || {
            query.get().href(|q| {
                q.view = if view == "all" { String::new() } else { view.to_string() };
                q.page = 1;
            })
        };
        let current = move || {
            let v = query.get().view;
            (v == view || (view == "all" && v.is_empty())).then_some("page")
        };
        view! { <a class="view-tab" href=href aria-current=current>{label}</a> }
    };
    view! {
        <nav class="views" aria-label="Views">
            {tab("unread", "Unread")}
            {tab("all", "All")}
            {tab("saved", "Saved")}
            {tab("done", "Done")}
            {tab("snoozed", "Snoozed")}
        </nav>
    }
}

/// The filter form: a plain GET form, so it works without JavaScript.
#[component]
fn Filters(query: Memo<InboxQuery>, topics: Vec<String>) -> impl IntoView {
    let q = move || query.get();
    let selected = move |field: fn(&InboxQuery) -> String, value: &'static str| move || field(&q()) == value;
    view! {
        <GetForm action="/" attr:class="filters" attr:data-testid="filters">
            <input type="hidden" name="view" prop:value=move || q().view />
            <label class="visually-hidden" for="q">"Search"</label>
            <input id="q" name="q" type="search" placeholder="Search (press /)" prop:value=move || q().q />
            <label for="severity">"Severity"</label>
            <select id="severity" name="severity">
                <option value="" selected=selected(|q| q.severity.clone(), "")>"Any"</option>
                {Severity::ALL
                    .iter()
                    .map(|s| {
                        let name = s.as_str();
                        view! { <option value=name selected=selected(|q| q.severity.clone(), name)>{format!("{name} or more")}</option> }
                    })
                    .collect_view()}
            </select>
            <label for="topic">"Topic"</label>
            <select id="topic" name="topic">
                <option value="">"Any"</option>
                {topics.into_iter().map(|t| {
                    let (value, label) = (t.clone(), t.clone());
                    view! { <option value=t selected=move || q().topic == value>{label}</option> }
                }).collect_view()}
            </select>
            <label for="since">"Created"</label>
            <select id="since" name="since">
                <option value="" selected=selected(|q| q.since.clone(), "")>"Any time"</option>
                <option value="24h" selected=selected(|q| q.since.clone(), "24h")>"Last 24 hours"</option>
                <option value="7d" selected=selected(|q| q.since.clone(), "7d")>"Last 7 days"</option>
            </select>
            <label for="sort">"Sort"</label>
            <select id="sort" name="sort">
                <option value="" selected=selected(|q| q.sort.clone(), "")>"Newest"</option>
                <option value="oldest" selected=selected(|q| q.sort.clone(), "oldest")>"Oldest"</option>
                <option value="severity" selected=selected(|q| q.sort.clone(), "severity")>"Severity"</option>
                <option value="topic" selected=selected(|q| q.sort.clone(), "topic")>"Topic"</option>
                <option value="origin" selected=selected(|q| q.sort.clone(), "origin")>"Origin"</option>
            </select>
            <label for="per">"Per page"</label>
            <select id="per" name="per">
                {[20, 50, 100].into_iter().map(|n| view! { <option value=n.to_string() selected=move || q().per == n>{n}</option> }).collect_view()}
            </select>
            <button type="submit" class="button">"Apply"</button>
        </GetForm>
    }
}

/// The list with its count, paging, bulk bar and "Mark all read".
#[component]
fn Results(
    data: InboxData,
    q: InboxQuery,
    mark_all: ServerAction<MarkAllRead>,
    bulk: ServerAction<BulkForm>,
    selected: RwSignal<BTreeSet<String>>,
) -> impl IntoView {
    if data.items.is_empty() {
        let message = match q.view.as_str() {
            "saved" => "Nothing saved yet — press s on a notification to keep it here.",
            "done" => "Nothing is done yet. Press e on a notification to file it here.",
            "snoozed" => "Nothing is snoozed. Snooze a notification to have it come back later.",
            _ if q != InboxQuery { view: q.view.clone(), page: q.page, per: q.per, ..InboxQuery::default() } => {
                "Nothing matches these filters."
            }
            _ => "You're all caught up.",
        };
        return view! { <section class="empty-state" data-testid="empty-state"><p>{message}</p></section> }.into_any();
    }
    let first = (q.page - 1) * q.per + 1;
    let last = first + data.items.len() as i64 - 1;
    let prev = (q.page > 1).then(|| q.href(|x| x.page -= 1));
    let next = (last < data.total).then(|| q.href(|x| x.page += 1));
    let fields = [
        ("view", q.view.clone()),
        ("severity", q.severity.clone()),
        ("topic", q.topic.clone()),
        ("since", q.since.clone()),
        ("q", q.q.clone()),
    ];
    // What "Mark all read" sends: the filters, without the sorting and paging (as its fields).
    let everything = InboxQuery {
        view: q.view.clone(),
        severity: q.severity.clone(),
        topic: q.topic.clone(),
        since: q.since.clone(),
        q: q.q.clone(),
        sort: String::new(),
        page: 1,
        per: 20,
    };
    let page_ids: Vec<String> = data.items.iter().map(|i| i.id.clone()).collect();
    // Bursts only make sense while the list is in time order.
    let groups = if matches!(q.sort.as_str(), "" | "oldest") {
        bursts::group(data.items)
    } else {
        data.items.into_iter().map(|i| vec![i]).collect()
    };
    view! {
        <div class="list-bar">
            <bulk::BulkBar action=bulk selected page_ids />
            <p class="muted" data-testid="count">{format!("{first}–{last} of {}", data.total)}</p>
            <InPlaceForm action=mark_all input=move |_| MarkAllRead { query: everything.clone() } attr:class="inline-form">
                {fields.into_iter().map(|(k, v)| view! { <input type="hidden" name=format!("query[{k}]") value=v /> }).collect_view()}
                <input type="hidden" name="query[sort]" value="" />
                <input type="hidden" name="query[page]" value="1" />
                <input type="hidden" name="query[per]" value="20" />
                <button type="submit" class="button">"Mark all read"</button>
            </InPlaceForm>
        </div>
        <ul class="notification-list" data-testid="notification-list">
            {groups.into_iter().map(|group| view! { <Burst group /> }).collect_view()}
        </ul>
        <nav class="pager" aria-label="Pages">
            {prev.map(|href| view! { <a href=href rel="prev">"← Newer"</a> })}
            {next.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
        </nav>
    }
    .into_any()
}

/// One notification, or a burst: its newest notification and "+N more" that expands (a
/// `<details>`, so it works without JavaScript).
#[component]
fn Burst(group: Vec<InboxItem>) -> impl IntoView {
    let mut items = group.into_iter();
    let Some(head) = items.next() else { return ().into_any() };
    let rest: Vec<InboxItem> = items.collect();
    if rest.is_empty() {
        return view! { <Row item=head /> }.into_any();
    }
    let what = head.topic.clone().or_else(|| head.scope.clone());
    let summary = format!("+{} more from {} · {}", rest.len(), head.origin, what.unwrap_or_default());
    view! {
        <Row item=head />
        <li class="burst">
            <details data-testid="burst">
                <summary>{summary}</summary>
                <ul class="notification-list nested">
                    {rest.into_iter().map(|item| view! { <Row item /> }).collect_view()}
                </ul>
            </details>
        </li>
    }
    .into_any()
}
