use leptos::prelude::*;
use leptos_meta::Title;

use crate::shell::MeResource;

/// The admin console; only administrators see its content.
#[component]
pub fn AdminPage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    view! {
        <Title text="Admin" />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) if me.is_admin => view! {
                        <section>
                            <h1>"Admin"</h1>
                            <p class="muted">"Announcements, tokens, deliveries and the directory."</p>
                        </section>
                    }.into_any(),
                    _ => {
                        #[cfg(feature = "ssr")]
                        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                            response.set_status(http::StatusCode::FORBIDDEN);
                        }
                        view! {
                            <section class="empty-state">
                                <h1>"Admins only"</h1>
                                <p>"This page is for Herald administrators."</p>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
