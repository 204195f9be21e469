//! The parts of the page around the routed content.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use herald_model::Severity;

use crate::live::{Live, LiveState, Toast, badge_text};
use crate::notification_fns::{SetStateForm, set_state};
use crate::router::NavLink;
use crate::session::SignOut;
use crate::shell::{MeResource, Session};

/// The slim bar at the top: product mark, unread badge and the signed-in user.
#[component]
pub fn TopBar() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let live = expect_context::<Live>();
    view! {
        <header class="topbar">
            <a href="/" class="brand">
                <img src="/favicon.svg" alt="" width="24" height="24" />
                <span class="brand-name">"Herald"</span>
            </a>
            <div class="topbar-right">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(me)) => {
                                let unread = move || live.unread.get().unwrap_or(me.unread);
                                let label = move || format!("{} unread notifications", unread());
                                view! {
                                    <LiveIndicator />
                                    <a href="/?view=unread" class="unread-badge" aria-label=label data-testid="unread-badge">
                                        {move || badge_text(unread())}
                                    </a>
                                    <span class="user" data-testid="signed-in-user" title=me.user_ref.clone()>
                                        {me.display_name.clone()}
                                    </span>
                                    // A plain form, with or without JavaScript: the server
                                    // ends the session and sends the browser to the sign-in
                                    // page, a new document, so nothing of this one (its live
                                    // stream, what its pages hold) outlives the session.
                                    <form action=SignOut::url() method="post" class="inline-form">
                                        <button type="submit" class="link-button">"Sign out"</button>
                                    </form>
                                }
                                    .into_any()
                            }
                            _ => view! { <a href="/signin" class="button">"Sign in"</a> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

/// The navigation rail (a menu button on narrow screens).
#[component]
pub fn SideNav() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let (open, set_open) = signal(false);
    view! {
        <nav class="sidenav" aria-label="Main" class:open=open>
            <button
                type="button"
                class="menu-button"
                aria-controls="nav-links"
                aria-expanded=move || open.get().to_string()
                data-testid="menu-button"
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                "Menu"
            </button>
            <ul id="nav-links">
                <li><NavLink href="/">"Inbox"</NavLink></li>
                <li><NavLink href="/settings">"Settings"</NavLink></li>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let admin = matches!(me.await, Ok(Some(Me { is_admin: true, .. })));
                        admin.then(|| view! { <li><NavLink href="/admin">"Admin"</NavLink></li> })
                    })}
                </Transition>
            </ul>
        </nav>
    }
}

use crate::session::Me;

/// Sets the document's title: `text` · Herald, with the unread count in front once the live
/// stream has sent one (`Live::title`). The server writes it into the head (leptos_meta);
/// the browser sets `document.title` itself, so leptos_meta's head management is not in the
/// bundle. Renders nothing, the same on both sides, so hydration matches.
#[component]
pub fn PageTitle(#[prop(into)] text: String) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        // Creating the component registers the title with the response's head; its view
        // would render nothing here, but is not the same nothing as the browser's `()`
        // (hydration would expect another marker), so it is dropped.
        drop(view! { <leptos_meta::Title text=crate::live::title_with_count(&text, None) /> });
    }
    #[cfg(not(feature = "ssr"))]
    {
        let live = expect_context::<Live>();
        Effect::new(move |_| document().set_title(&live.title(&text)));
    }
}

/// Whether the live stream is connected.
#[component]
fn LiveIndicator() -> impl IntoView {
    let live = expect_context::<Live>();
    let label = move || match live.state.get() {
        LiveState::Live => "Live",
        LiveState::Connecting => "Connecting…",
        LiveState::Reconnecting => "Reconnecting…",
        LiveState::Off => "Offline",
    };
    view! {
        <span class="live-indicator" data-testid="live-indicator" data-state=move || live.state.get().name() title=label>
            <span class="live-dot" aria-hidden="true"></span>
            <span class="live-label">{label}</span>
        </span>
    }
}

/// New notifications, bottom right: at most three, then "N more"; announced to screen readers.
#[component]
pub fn Toasts() -> impl IntoView {
    let live = expect_context::<Live>();
    let shown = move || {
        let all = live.toasts.get();
        let hidden = all.len().saturating_sub(3);
        (all[hidden..].to_vec(), hidden)
    };
    view! {
        <section class="toasts" aria-live="polite" aria-label="New notifications" data-testid="toasts">
            <For each=move || shown().0 key=|t| t.id.clone() let:toast>
                <ToastCard toast />
            </For>
            {move || {
                let more = shown().1;
                (more > 0).then(|| view! { <p class="toast-more" data-testid="toast-more">{format!("{more} more")}</p> })
            }}
        </section>
    }
}

/// One toast. Critical ones stay until dismissed; the others leave after ten seconds.
#[component]
fn ToastCard(toast: Toast) -> impl IntoView {
    let live = expect_context::<Live>();
    let id = toast.id.clone();
    if toast.payload.severity != Severity::Critical {
        let id = id.clone();
        set_timeout(move || live.dismiss(&id), std::time::Duration::from_secs(10));
    }
    let mark_read = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            live.dismiss(&id);
            leptos::task::spawn_local(async move {
                let _ = set_state(vec![id], Some(true), None, None).await;
            });
        }
    };
    let open = {
        let id = id.clone();
        let link = toast.payload.link.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            let id = id.clone();
            let link = link.clone();
            live.dismiss(&id);
            leptos::task::spawn_local(async move {
                let _ = set_state(vec![id], Some(true), None, None).await;
                if let Some(link) = link {
                    let _ = window().location().set_href(&link);
                }
            });
        }
    };
    let dismiss = {
        let id = id.clone();
        move |_| live.dismiss(&id)
    };
    let severity = toast.payload.severity;
    view! {
        <article class=format!("toast sev-{severity}") data-testid="toast" data-id=id.clone()>
            <SeverityIcon severity />
            <div class="toast-body">
                <p class="toast-title">{toast.payload.title.clone()}</p>
                <p class="toast-meta">{toast.origin.clone()}{toast.payload.topic.clone().map(|t| format!(" · {t}"))}</p>
                <div class="toast-actions">
                    {toast.payload.link.clone().map(|link| view! { <a href=link class="toast-action" on:click=open>"Open"</a> })}
                    <button type="button" class="toast-action" on:click=mark_read>"Mark read"</button>
                </div>
            </div>
            <button type="button" class="toast-close" aria-label="Dismiss" on:click=dismiss>"×"</button>
        </article>
    }
}

/// What a failed server function says to the person: the server's own words, or the
/// failure's description.
pub fn error_text(e: ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m,
        other => other.to_string(),
    }
}

/// Severity as an icon plus a word for screen readers: never colour alone.
#[component]
pub fn SeverityIcon(severity: Severity) -> impl IntoView {
    // The shapes as markup, one view for all four: as four views they were four view types,
    // each with its own code to build and hydrate in the browser bundle.
    let shape = match severity {
        Severity::Critical => {
            r#"<path d="M5 1h6l4 4v6l-4 4H5l-4-4V5z" fill="currentColor"></path><path d="M8 4v5M8 11v1.5" stroke="white" stroke-width="2" stroke-linecap="round"></path>"#
        }
        Severity::High => {
            r#"<path d="M8 1l7.5 14H.5z" fill="currentColor"></path><path d="M8 6v4M8 12v.5" stroke="white" stroke-width="2" stroke-linecap="round"></path>"#
        }
        Severity::Normal => {
            r#"<circle cx="8" cy="8" r="7" fill="currentColor"></circle><path d="M8 7v5M8 4v.5" stroke="white" stroke-width="2" stroke-linecap="round"></path>"#
        }
        Severity::Low => {
            r#"<circle cx="8" cy="8" r="5.5" fill="none" stroke="currentColor" stroke-width="2"></circle>"#
        }
    };
    view! {
        <span class=format!("severity sev-{severity}") title=severity.as_str()>
            <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" inner_html=shape></svg>
            <span class="visually-hidden">{format!("{severity} severity")}</span>
        </span>
    }
}

/// A one-button form that sets one state (`read`, `saved` or `archived`) of one notification:
/// posts without JavaScript, runs in place with it.
#[component]
pub fn StateButton(
    action: ServerAction<SetStateForm>,
    id: String,
    field: &'static str,
    value: bool,
    label: &'static str,
    class: &'static str,
    /// The key that presses this button in the inbox (see `pages::inbox::keyboard`).
    #[prop(optional)]
    shortcut: &'static str,
) -> impl IntoView {
    let input = {
        let id = id.clone();
        move |_: &_| SetStateForm { id: id.clone(), field: field.to_string(), value: value.to_string() }
    };
    view! {
        <InPlaceForm action input attr:class="inline-form">
            <input type="hidden" name="id" value=id />
            <input type="hidden" name="field" value=field />
            <input type="hidden" name="value" value=value.to_string() />
            <button type="submit" class=class data-shortcut=(!shortcut.is_empty()).then_some(shortcut)>
                {label}
            </button>
        </InPlaceForm>
    }
}

/// A form that works without JavaScript and in place with it. Without, the browser posts its
/// fields to `action`'s server function, which redirects back to the page; with, submitting
/// dispatches `action` with what `input` makes, the same arguments the fields hold.
///
/// Leptos' `ActionForm` does the same by decoding the arguments from the fields with
/// `serde_qs`, whose decoder the browser bundle then carries, instantiated for each form's
/// arguments. A form here says what it sends instead: what it rendered, and what was typed
/// into its fields (read through their `NodeRef`s) or which button submitted it
/// ([`submitted_by`]).
#[component]
pub fn InPlaceForm<S, I>(
    action: ServerAction<S>,
    /// The server function's arguments, as the form's fields hold them when it is submitted.
    input: I,
    children: Children,
) -> impl IntoView
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
    I: Fn(&leptos::ev::SubmitEvent) -> S + 'static,
{
    let submit = move |ev: leptos::ev::SubmitEvent| {
        if !ev.default_prevented() {
            ev.prevent_default();
            action.dispatch(input(&ev));
        }
    };
    view! {
        <form action=S::url() method="post" on:submit=submit>
            {children()}
        </form>
    }
}

/// A form that asks for a page with GET, its fields as the query: the browser loads it without
/// JavaScript; with it, submitting navigates in place to the URL the browser would have
/// loaded.
///
/// Not leptos_router's `Form`, which also posts forms (through `gloo-net`), all of which the
/// browser bundle carried for the inbox's filters.
#[component]
pub fn GetForm(action: &'static str, children: Children) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    let submit = {
        let location = crate::router::use_location();
        move |ev: leptos::ev::SubmitEvent| {
            use wasm_bindgen::JsCast;
            let form = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok());
            let Some(data) = form.and_then(|f| web_sys::FormData::new_with_form(&f).ok()) else { return };
            let Ok(query) = web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data) else { return };
            ev.prevent_default();
            location.navigate(&format!("{action}?{}", String::from(query.to_string())), false);
        }
    };
    #[cfg(not(feature = "hydrate"))]
    let submit = |_: leptos::ev::SubmitEvent| {};
    view! {
        <form method="get" action=action on:submit=submit>
            {children()}
        </form>
    }
}

/// The `value` of the button that submitted a form, as the form would post it with its name.
pub fn submitted_by(ev: &leptos::ev::SubmitEvent) -> Option<String> {
    ev.submitter().and_then(|button| button.get_attribute("value"))
}

/// What is typed into a form's input, as the form would post it.
pub fn typed(input: NodeRef<leptos::html::Input>) -> String {
    input.get_untracked().map(|i| i.value()).unwrap_or_default()
}

/// Active critical announcements the signed-in user has not dismissed (read): (id, title).
#[server(endpoint = "critical-announcements", output = crate::codec::JsonText)]
pub async fn critical_announcements() -> Result<Vec<(String, String)>, ServerFnError> {
    use crate::server::{current_user, fail, hub};
    use herald_core::notifications::{Filter, ListQuery, list};
    let hub = hub()?;
    let Some(user) = current_user().await? else { return Ok(vec![]) };
    let q = ListQuery {
        filter: Filter { read: Some(false), minimum_severity: Some(Severity::Critical), ..Filter::default() },
        limit: 50,
        ..ListQuery::default()
    };
    let (rows, _) = list(&hub.db, &user, &q).await.map_err(fail)?;
    Ok(rows
        .into_iter()
        .filter(|n| n.origin == herald_core::announcements::ORIGIN)
        .map(|n| (n.id, n.payload.title))
        .take(3)
        .collect())
}

/// A site-wide banner for active critical announcements, until the user dismisses them.
#[component]
pub fn CriticalBanner() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let dismiss = ServerAction::<SetStateForm>::new();
    let active = Resource::new(
        move || {
            (
                session.version(),
                dismiss.version().get(),
                live.arrivals.with(Vec::len),
                live.updates.get(),
                live.resets.get(),
            )
        },
        |_| critical_announcements(),
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                active
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, title)| {
                        let href = format!("/notifications/{id}");
                        view! {
                            <div class="banner" role="alert" data-testid="critical-banner">
                                <SeverityIcon severity=Severity::Critical />
                                <p><strong>{title}</strong>" "<a href=href>"Read more"</a></p>
                                <StateButton action=dismiss id=id field="read" value=true label="Dismiss" class="link-button" />
                            </div>
                        }
                    })
                    .collect_view()
            })}
        </Transition>
    }
}
