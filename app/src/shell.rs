use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::{SideNav, TopBar};
use crate::pages::{AdminPage, InboxPage, NotFound, SettingsPage, SignInPage};
use crate::session::{whoami, Me};

/// The HTML document the server renders around the application.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Who is signed in, loaded once per page and shared with every component.
pub type MeResource = Resource<Result<Option<Me>, ServerFnError>>;

/// The application: top bar, navigation and the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me: MeResource = Resource::new(|| (), |_| whoami());
    provide_context(me);

    // Effects run only in the browser, after hydration: the marker tells tests (and styles)
    // that the page is interactive.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/herald.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="color-scheme" content="light dark" />
        <Title formatter=|text: String| if text.is_empty() { "Herald".to_string() } else { format!("{text} · Herald") } />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <TopBar />
            <div class="layout">
                <SideNav />
                <main id="main" class="content" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound /> }>
                        <Route path=path!("/") view=InboxPage />
                        <Route path=path!("/settings") view=SettingsPage />
                        <Route path=path!("/admin") view=AdminPage />
                        <Route path=path!("/signin") view=SignInPage />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
