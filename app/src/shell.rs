use leptos::prelude::*;

use crate::components::{CriticalBanner, SideNav, Toasts, TopBar};
use crate::live::Live;
use crate::pages::{InboxPage, NotFound};
use crate::router::{Location, Page};
use crate::session::{ADMINS_ONLY, Me, SIGN_IN_FIRST, whoami};

/// The HTML document the server renders around the application.
#[cfg(feature = "ssr")]
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
                <leptos_meta::MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Hydrates the page the server rendered; the browser bundle's entry point.
///
/// The code of a page that is a separate chunk (every page but the inbox) is loaded first,
/// so that the whole page hydrates at once, as the server rendered it, before any effect
/// runs. Hydrating that page's part after the rest lets the shell's effects run first: the
/// clock starts, and the page's view is then built against a different moment than the
/// server rendered, so hydration no longer matches its markup. If the chunk cannot be
/// fetched, nothing hydrates: the page stays as the server rendered it, which works without
/// JavaScript.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    wasm_bindgen_futures::spawn_local(async {
        let path = window().location().pathname().unwrap_or_default();
        Page::of(&path).load().await;
        leptos::mount::hydrate_body(App);
        // Reached only when the whole page hydrated (a mismatch panics above), and queued
        // behind the effects hydration started: the marker tells tests, and `lazy_page`, that
        // the page is interactive.
        leptos::task::spawn_local(async {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        });
    });
}

/// The view of `page`.
fn page_view(page: Page) -> AnyView {
    match page {
        Page::Inbox => view! { <InboxPage /> }.into_any(),
        Page::Detail => lazy_page(crate::pages::detail::page()),
        Page::Settings => lazy_page(crate::pages::settings::page()),
        Page::Admin => lazy_page(crate::pages::admin::page()),
        Page::SignIn => lazy_page(crate::pages::sign_in::page()),
        Page::NotFound => view! { <NotFound /> }.into_any(),
    }
}

/// The view of a page whose code is a separate chunk (a `#[lazy]` function, `--split`). Every
/// way to a page loads its chunk first (`Page::load`, in `hydrate` and `Location::go`; a chunk
/// that cannot be fetched panics there, in wasm_split), so the view is ready at once, as
/// hydration needs. Were a page shown without that (`Page::load` missing it), the browser
/// loads the page as a new document once the first has hydrated; while the first page
/// hydrates, the empty view does not match the server's markup and the page stays as the
/// server rendered it.
fn lazy_page(view: impl Future<Output = AnyView> + 'static) -> AnyView {
    let mut view = std::pin::pin!(view);
    match view.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(view) => view,
        std::task::Poll::Pending => {
            #[cfg(feature = "hydrate")]
            if document().body().is_some_and(|b| b.has_attribute("data-hydrated")) {
                let _ = window().location().reload();
            }
            ().into_any()
        }
    }
}

/// Who is signed in, shared with every component.
pub type MeResource = Resource<Result<Option<Me>, ServerFnError>>;

/// Counts sign-ins in this document, provided as context. The sign-in page's action (in its
/// own chunk) counts one when it succeeds; signing out loads the sign-in page as a new
/// document (see `components::TopBar`).
#[derive(Clone, Copy)]
pub struct Session {
    sign_ins: RwSignal<usize>,
}

impl Session {
    /// Changes whenever someone signs in: resources that depend on who is signed in read it
    /// so they reload.
    pub fn version(&self) -> usize {
        self.sign_ins.get()
    }

    /// Someone signed in.
    pub fn record_sign_in(&self) {
        self.sign_ins.update(|n| *n += 1);
    }
}

/// The application: top bar, navigation and the routed page.
#[component]
pub fn App() -> impl IntoView {
    // The title is written into the head by leptos_meta on the server only (`PageTitle`).
    #[cfg(feature = "ssr")]
    leptos_meta::provide_meta_context();
    let location = Location::provide();
    let session = Session { sign_ins: RwSignal::new(0) };
    let me: MeResource = Resource::new(move || session.version(), |_| whoami());
    provide_context(me);
    provide_context(session);
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
        <a class="skip-link" href="#main">"Skip to content"</a>
        <TopBar />
        <CriticalBanner />
        <div class="layout">
            <SideNav />
            // Pages render in `SsrMode::Async` (see the server's routes): the server waits for
            // their data, so the HTML is complete without JavaScript. A page changes when the
            // path does, not when the query does: the inbox reads its query itself.
            <main id="main" class="content" tabindex="-1">
                {move || page_view(location.page.get())}
            </main>
        </div>
        <Toasts />
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
    let location = crate::router::use_location();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(_)) => children.with_value(|c| c()).into_any(),
                    _ => {
                        let here = location.href_untracked();
                        let next = if here.is_empty() { "/".to_string() } else { here };
                        let target = format!("/signin?next={}", next.replace('%', "%25").replace('&', "%26").replace('#', "%23").replace('?', "%3F"));
                        location.redirect(&target);
                        ().into_any()
                    }
                }
            })}
        </Suspense>
    }
}
