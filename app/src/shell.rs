use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{FlatRoutes, Route, Router};
use leptos_router::{Lazy, SsrMode, path};

use crate::components::{CriticalBanner, SideNav, Toasts, TopBar};
use crate::live::Live;
use crate::pages::{AdminRoute, DetailRoute, InboxPage, NotFound, SettingsRoute, SignInRoute};
use crate::session::{ADMINS_ONLY, Me, SIGN_IN_FIRST, SignIn, whoami};

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
                // Static, so rendered here, outside what hydrates: as `leptos_meta` components
                // inside `App`, the browser bundle would carry their code to hydrate them.
                <link id="leptos" rel="stylesheet" href="/pkg/herald.css" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <meta name="color-scheme" content="light dark" />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Hydrates the page the server rendered; the browser bundle's entry point.
///
/// The code of a lazy route (every page but the inbox) is loaded first when the page is
/// one of them, so that the whole page hydrates at once, as the server rendered it, before
/// any effect runs. Hydrating the lazy route's part after the rest (`hydrate_lazy`) lets the
/// shell's effects run first: the clock starts, and the route's view is then built against a
/// different moment than the server rendered, so hydration no longer matches its markup.
/// If the chunk cannot be fetched, nothing hydrates: the page stays as the server rendered
/// it, which works without JavaScript.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    wasm_bindgen_futures::spawn_local(async {
        let path = window().location().pathname().unwrap_or_default();
        load_lazy_route(&path).await;
        leptos::mount::hydrate_body(App);
        // Reached only when the whole page hydrated (a mismatch panics above), and queued
        // behind the effects hydration started: the marker tells tests that the page is
        // interactive.
        leptos::task::spawn_local(async {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        });
    });
}

/// Loads the code of the lazy route at `path`, if it is one (see the routes in [`App`]).
/// Every path the router matches to a lazy route must load it here: `hydrate_body` panics on
/// a lazy route whose code is not loaded yet.
#[cfg(feature = "hydrate")]
async fn load_lazy_route(path: &str) {
    use leptos_router::LazyRoute;
    // The router matches a path with one trailing slash too.
    match path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path) {
        "/settings" => SettingsRoute::preload().await,
        "/admin" => AdminRoute::preload().await,
        "/signin" => SignInRoute::preload().await,
        // Any path under it, so that none the router matches is missed (one that it does not
        // match loads code it does not need, and renders "not found").
        p if p.starts_with("/notifications/") => DetailRoute::preload().await,
        _ => {}
    }
}

/// Who is signed in, shared with every component.
pub type MeResource = Resource<Result<Option<Me>, ServerFnError>>;

/// The action that signs in, provided as context. (Signing out loads the sign-in page as a
/// new document: see `components::TopBar`.)
#[derive(Clone, Copy)]
pub struct Session {
    pub sign_in: ServerAction<SignIn>,
}

impl Session {
    /// Changes whenever someone signs in: resources that depend on who is signed in read it
    /// so they reload.
    pub fn version(&self) -> usize {
        self.sign_in.version().get()
    }
}

/// The application: top bar, navigation and the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let sign_in = ServerAction::<SignIn>::new();
    let me: MeResource = Resource::new(move || sign_in.version().get(), |_| whoami());
    provide_context(me);
    provide_context(Session { sign_in });
    let live = Live::new();
    provide_context(live);
    crate::clock::Clock::provide();

    // The live stream: opened once signed in, closed on sign-out (browser only).
    #[cfg(feature = "hydrate")]
    {
        let connection = StoredValue::new_local(None::<crate::live::Connection>);
        Effect::new(move |_| match me.get().and_then(Result::ok).flatten() {
            Some(me) => {
                if connection.with_value(Option::is_none) {
                    connection.set_value(Some(crate::live::Connection::open(live, me.event_head)));
                }
            }
            None => {
                if let Some(c) = connection.get_value() {
                    c.close();
                }
                connection.set_value(None);
                live.state.set(crate::live::LiveState::Off);
            }
        });
    }
    // A `reset` from the stream means this tab missed events: reload what it shows.
    Effect::new(move |prev: Option<u32>| {
        let resets = live.resets.get();
        if prev.is_some_and(|p| p != resets) {
            me.refetch();
        }
        resets
    });

    view! {
        <Title formatter=move |text: String| live.title(&text) />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <TopBar />
            <CriticalBanner />
            <div class="layout">
                <SideNav />
                // Pages render in `SsrMode::Async`: the server waits for their data, so the
                // HTML is complete without JavaScript. Every page but the inbox (and "not found") is a lazy route:
                // its code is a separate WebAssembly chunk the browser loads when it is first
                // shown (`--split`), so the inbox loads without it. `FlatRoutes`: no route
                // nests, and the nested router's code was 12.8 KB of the gzipped bundle.
                <main id="main" class="content" tabindex="-1">
                    <FlatRoutes fallback=|| view! { <NotFound /> }>
                        <Route path=path!("/") view=InboxPage ssr=SsrMode::Async />
                        // A lazy route's path is also in `load_lazy_route`.
                        <Route path=path!("/notifications/:id") view={Lazy::<DetailRoute>::new()} ssr=SsrMode::Async />
                        <Route path=path!("/settings") view={Lazy::<SettingsRoute>::new()} ssr=SsrMode::Async />
                        <Route path=path!("/admin") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async />
                        <Route path=path!("/signin") view={Lazy::<SignInRoute>::new()} ssr=SsrMode::Async />
                    </FlatRoutes>
                </main>
            </div>
            <Toasts />
        </Router>
    }
}

/// Succeeds once `me` has loaded and someone is signed in (an administrator, with `admin`).
///
/// A page's resources are created around `SignedIn`, so they exist for visitors too. They ask
/// this before calling their server function, which for a visitor would only fail, set the
/// page's status under `SignedIn`'s redirect (401, 403) and cost a round trip.
pub(crate) async fn signed_in(me: MeResource, admin: bool) -> Result<(), ServerFnError> {
    match me.await {
        Ok(Some(me)) if me.is_admin || !admin => Ok(()),
        Ok(Some(_)) => Err(ServerFnError::new(ADMINS_ONLY)),
        Ok(None) => Err(ServerFnError::new(SIGN_IN_FIRST)),
        Err(e) => Err(e),
    }
}

/// Shows its children to a signed-in user; sends a visitor to sign in and back afterwards.
///
/// The children must not create resources: create them in the page, around `SignedIn`.
/// While rendering on the server, a suspense walks its children again each time the
/// resources it waits for arrive, so it may build them two or three times, depending on
/// timing. A resource created in the children would be created, numbered and serialized once
/// per build, while the browser builds them once: it would then hydrate with the data of
/// another build than the markup shows, one whose reactive owner may already have been
/// dropped (its server functions then fail), and hydration breaks. The same holds for the
/// suspenses inside a page: resources are created before them, never in them.
#[component]
pub(crate) fn SignedIn(children: ChildrenFn) -> impl IntoView {
    let me = expect_context::<MeResource>();
    let location = leptos_router::hooks::use_location();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(_)) => children.with_value(|c| c()).into_any(),
                    _ => {
                        let search = location.search.get_untracked();
                        let search = search.trim_start_matches('?');
                        let path = location.pathname.get_untracked();
                        let here = if search.is_empty() { path } else { format!("{path}?{search}") };
                        let next = if here.is_empty() { "/".to_string() } else { here };
                        let target = format!("/signin?next={}", next.replace('%', "%25").replace('&', "%26").replace('#', "%23").replace('?', "%3F"));
                        view! { <leptos_router::components::Redirect path=target /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
