use leptos::prelude::*;

use crate::clock::{from_ms, machine_readable, utc_minute};
use crate::components::{PageTitle, SeverityIcon, StateButton};
use crate::live::Live;
use crate::notification_fns::SetStateForm;
use crate::pages::inbox::InboxItem;
use crate::router::notification_id;
use crate::shell::{MeResource, SignedIn, signed_in};

/// One notification, for the detail page.
#[server(endpoint = "notification", output = crate::codec::JsonText)]
pub async fn notification_detail(id: String) -> Result<InboxItem, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    let n = herald_core::notifications::get(&hub.db, &user, &id).await.map_err(fail)?;
    Ok(InboxItem::new(n))
}

/// `/notifications/{id}`, one notification in full to a signed-in user. Its code is a
/// separate chunk, loaded when the page is first shown.
///
/// The resource is created here, outside `SignedIn`'s suspense, which may build its children
/// more than once on the server (see `SignedIn`).
#[leptos::lazy]
pub(crate) fn page() -> AnyView {
    let me = expect_context::<MeResource>();
    let live = expect_context::<Live>();
    let location = crate::router::use_location();
    let set_state = ServerAction::<SetStateForm>::new();
    let item = Resource::new(
        move || {
            let id = notification_id(&location.path()).unwrap_or_default().to_string();
            (id, set_state.version().get(), live.resets.get())
        },
        move |(id, ..)| async move {
            signed_in(me, false).await?;
            notification_detail(id).await
        },
    );
    view! { <SignedIn><Detail item set_state /></SignedIn> }.into_any()
}

/// Loads [`page`]'s code, if it is not loaded yet.
#[cfg(feature = "hydrate")]
pub(crate) async fn preload() {
    __preload_page().await;
}

/// The notification, once loaded.
#[component]
fn Detail(item: Resource<Result<InboxItem, ServerFnError>>, set_state: ServerAction<SetStateForm>) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match item.await {
                    Ok(n) => {
                        let severity = n.severity;
                        let created = from_ms(n.created);
                        let id = n.id.clone();
                        let toggle = move |field: &'static str, value: bool, label: &'static str| {
                            view! { <StateButton action=set_state id=id.clone() field value label class="button" /> }
                        };
                        view! {
                            <PageTitle text=n.title.clone() />
                            <article class="detail" data-testid="detail">
                                <p><a href="/">"← Inbox"</a></p>
                                <h1 class="detail-title"><SeverityIcon severity />" "{n.title.clone()}</h1>
                                <p class="meta">
                                    <span>{format!("{severity} severity")}</span>" · "
                                    <span class="origin">{n.origin.clone()}</span>
                                    {n.topic.clone().map(|t| view! { " · " <span class="chip">{t}</span> })}
                                    " · "<time datetime=machine_readable(created)>{utc_minute(created)}</time>
                                    {n.updated.map(from_ms).map(|u| view! { " · updated " <time datetime=machine_readable(u)>{utc_minute(u)}</time> })}
                                </p>
                                {n.description_html.map(|html| view! { <div class="description" inner_html=html></div> })}
                                <div class="detail-actions">
                                    {n.link.clone().map(|l| view! {
                                        <a class="button primary" href=format!("/open/{}", n.id) rel="external" title=l>"Open link"</a>
                                    })}
                                    {if n.unread { toggle("read", true, "Mark as read") } else { toggle("read", false, "Mark as unread") }}
                                    {if !n.saved { toggle("saved", true, "Save") } else { toggle("saved", false, "Unsave") }}
                                    {if !n.archived { toggle("archived", true, "Done") } else { toggle("archived", false, "Undo done") }}
                                </div>
                            </article>
                        }
                        .into_any()
                    }
                    Err(_) => {
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::NOT_FOUND);
                        }
                        view! {
                            <section class="empty-state">
                                <h1>"Not found"</h1>
                                <p>"This notification does not exist or is not yours. " <a href="/">"Back to the inbox"</a></p>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}
