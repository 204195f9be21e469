use herald_model::{ListResponse, Notification};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::SeverityIcon;
use crate::live::Live;
use crate::shell::{MeResource, Session};

/// The first page of the signed-in user's inbox.
#[server(endpoint = "inbox")]
pub async fn inbox_page(offset: i64, limit: i64) -> Result<ListResponse, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::notifications::{list, ListQuery};
    let hub = hub()?;
    let user = require_user().await?;
    let (notifications, total_count) = list(&hub.db, &user, &ListQuery { offset, limit, ..ListQuery::default() })
        .await
        .map_err(fail)?;
    Ok(ListResponse { total_count, notifications })
}

/// The inbox.
#[component]
pub fn InboxPage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let session = expect_context::<Session>();
    let live = expect_context::<Live>();
    // Reload when someone signs in or out, and when the live stream says something changed.
    let page = Resource::new(
        move || (session.version(), live.arrivals.with(Vec::len), live.last_update.get(), live.resets.get()),
        |_| inbox_page(0, 50),
    );
    view! {
        <Title text="Inbox" />
        <h1 class="page-title">"Inbox"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                if !matches!(me.await, Ok(Some(_))) {
                    return view! {
                        <section class="empty-state">
                            <p>"Sign in to see your notifications."</p>
                            <A href="/signin" attr:class="button primary">"Sign in"</A>
                        </section>
                    }.into_any();
                }
                match page.await {
                    Ok(list) if list.notifications.is_empty() => view! {
                        <section class="empty-state"><p>"You're all caught up."</p></section>
                    }.into_any(),
                    Ok(list) => view! {
                        <p class="muted">{format!("{} notifications", list.total_count)}</p>
                        <ul class="notification-list" data-testid="notification-list">
                            {list.notifications.into_iter().map(|n| view! { <NotificationRow n /> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One row of the list.
#[component]
fn NotificationRow(n: Notification) -> impl IntoView {
    let severity = n.payload.severity;
    let class = format!("notification sev-{}{}", severity, if n.read.is_none() { " unread" } else { "" });
    view! {
        <li class=class>
            <SeverityIcon severity />
            <div class="notification-main">
                {match n.payload.link.clone() {
                    Some(link) => view! { <a class="title" href=link>{n.payload.title.clone()}</a> }.into_any(),
                    None => view! { <span class="title">{n.payload.title.clone()}</span> }.into_any(),
                }}
                <span class="meta">
                    <span class="origin">{n.origin.clone()}</span>
                    {n.payload.topic.clone().map(|t| view! { <span class="chip">{t}</span> })}
                    <time datetime=n.created.to_rfc3339() title=n.created.format("%Y-%m-%d %H:%M:%S UTC").to_string()>
                        {n.created.format("%b %e, %H:%M").to_string()}
                    </time>
                </span>
            </div>
        </li>
    }
}

