use leptos::prelude::*;

use crate::components::PageTitle;

/// Shown for any path no page answers.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <PageTitle text="Not found" />
        <section class="empty-state">
            <h1>"Nothing here"</h1>
            <p>"This page does not exist. " <a href="/">"Go to your inbox"</a> "."</p>
        </section>
    }
}
