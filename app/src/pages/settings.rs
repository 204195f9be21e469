use leptos::prelude::*;
use leptos_meta::Title;

/// Personal settings.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings" />
        <h1 class="page-title">"Settings"</h1>
        <p class="muted">"Choose what reaches you, per channel, origin and topic."</p>
        <BrowserNotifications />
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
        <section class="settings-section">
            <h2>"Browser notifications"</h2>
            <label class="switch">
                <input
                    type="checkbox"
                    data-testid="browser-notifications"
                    prop:checked=move || enabled.get()
                    disabled=move || !ready.get()
                    on:change=toggle
                />
                " Show a system notification when a notification arrives while Herald is in the background"
            </label>
            <p class="muted" role="status">{move || note.get()}</p>
            <noscript><p class="muted">"Browser notifications need JavaScript."</p></noscript>
        </section>
    }
}
