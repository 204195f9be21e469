use leptos::prelude::*;
use leptos_meta::Title;

/// Personal settings.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings" />
        <section>
            <h1>"Settings"</h1>
            <p class="muted">"Choose what reaches you, per channel, origin and topic."</p>
        </section>
    }
}
