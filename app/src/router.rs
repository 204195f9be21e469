//! Which page a path shows, and moving between pages without loading a new document.
//!
//! Herald's pages are few and none nests in another, so the application matches its paths
//! itself rather than through leptos_router, whose generic route matching, history handling
//! and components weighed more in the browser bundle than all this module does
//! (`docs/performance.md`, twenty-seventh sitting). What it keeps of a client-side router:
//! a link or GET form to one of the pages changes the page in place (with a history entry,
//! so back and forward work), a page whose code is a separate chunk has it loaded before it
//! is shown, and a server function that redirects (signing in) moves to where it says.
//! Everything else (another site, `/open/…`, the API, a file) the browser loads itself.

use leptos::prelude::*;

/// A page of the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Inbox,
    Detail,
    Settings,
    Admin,
    SignIn,
    NotFound,
}

impl Page {
    /// The paths the server renders the application at, in axum's syntax, and their pages.
    /// Any other path renders [`Page::NotFound`] (through the server's fallback).
    pub const ROUTES: [(&'static str, Page); 5] = [
        ("/", Page::Inbox),
        ("/notifications/{id}", Page::Detail),
        ("/settings", Page::Settings),
        ("/admin", Page::Admin),
        ("/signin", Page::SignIn),
    ];

    /// The page `path` shows; one trailing slash is ignored.
    pub fn of(path: &str) -> Page {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        match path {
            "/" => Page::Inbox,
            "/settings" => Page::Settings,
            "/admin" => Page::Admin,
            "/signin" => Page::SignIn,
            p if notification_id(p).is_some() => Page::Detail,
            _ => Page::NotFound,
        }
    }

    /// Loads the page's code if it is a separate chunk (`cargo leptos build --split`); at
    /// once if it is loaded already or is in the main module.
    #[cfg(feature = "hydrate")]
    pub async fn load(self) {
        match self {
            Page::Detail => crate::pages::detail::preload().await,
            Page::Settings => crate::pages::settings::preload().await,
            Page::Admin => crate::pages::admin::preload().await,
            Page::SignIn => crate::pages::sign_in::preload().await,
            Page::Inbox | Page::NotFound => {}
        }
    }
}

/// The notification a detail page's path names (`/notifications/{id}`, one trailing slash
/// ignored), as the path writes it.
pub fn notification_id(path: &str) -> Option<&str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.strip_prefix("/notifications/").filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The location the page shows: a path and its query, without the fragment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Url {
    /// The path, as the browser sends it (percent-encoded).
    pub path: String,
    /// The query without its `?`, as the browser sends it.
    pub search: String,
}

impl Url {
    /// The location of the document being rendered: the request's on the server, the
    /// address bar's in the browser.
    fn current() -> Url {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .map(|parts| Url {
                    path: parts.uri.path().to_string(),
                    search: parts.uri.query().unwrap_or_default().to_string(),
                })
                .unwrap_or_default()
        }
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            let location = window().location();
            let search = location.search().unwrap_or_default();
            Url {
                path: location.pathname().unwrap_or_default(),
                search: search.strip_prefix('?').unwrap_or(&search).to_string(),
            }
        }
        #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
        Url::default()
    }

    /// A path on this site with its query (`/signin?next=%2F`); `None` for anything else
    /// (another origin, a relative reference).
    pub fn of_href(href: &str) -> Option<Url> {
        if !href.starts_with('/') || href.starts_with("//") {
            return None;
        }
        let href = href.split('#').next().unwrap_or_default();
        let (path, search) = href.split_once('?').unwrap_or((href, ""));
        Some(Url { path: path.to_string(), search: search.to_string() })
    }

    /// The path and query as one link (`/?view=unread`).
    pub fn href(&self) -> String {
        if self.search.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.search) }
    }
}

/// A query's parameters, decoded as a browser decodes a form (`+` is a space).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a query string (without its `?`).
    pub fn parse(search: &str) -> Query {
        Query(
            search
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

/// Decodes one component of a form-encoded query: `+` is a space, `%XX` a byte; bytes that
/// are not UTF-8 become U+FFFD, and a `%` not followed by two hex digits stays as it is.
fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(|&d| hex(d)), bytes.get(i + 2).and_then(|&d| hex(d))) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// Where the application is, shared with every component (`use_location`).
#[derive(Clone, Copy)]
pub struct Location {
    url: RwSignal<Url>,
    /// The page the path shows.
    pub page: Memo<Page>,
    /// The query's parameters.
    pub query: Memo<Query>,
    /// Counts navigations, so that one that waited for its page's code does not override a
    /// later one that did not (browser only).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    navigations: StoredValue<u64>,
}

impl Location {
    /// Reads the document's location and provides it as context; in the browser, also
    /// takes over links to the application's pages, back and forward, and server functions'
    /// redirects.
    pub fn provide() -> Location {
        let url = RwSignal::new(Url::current());
        let location = Location {
            url,
            page: Memo::new(move |_| url.with(|u| Page::of(&u.path))),
            query: Memo::new(move |_| url.with(|u| Query::parse(&u.search))),
            navigations: StoredValue::new(0),
        };
        provide_context(location);
        #[cfg(feature = "hydrate")]
        location.listen();
        location
    }

    /// The path (tracked).
    pub fn path(&self) -> String {
        self.url.with(|u| u.path.clone())
    }

    /// Whether the path is `path` or below it (tracked).
    pub fn is_at(&self, path: &str) -> bool {
        self.url.with(|u| within(&u.path, path))
    }

    /// The path and query, as one link (untracked).
    pub fn href_untracked(&self) -> String {
        self.url.with_untracked(Url::href)
    }

    /// Shows `href` in place of the current page, as a new history entry or, with
    /// `replace`, instead of the current one. A link that is not to one of the
    /// application's pages is loaded as a new document. Does nothing on the server.
    pub fn navigate(&self, href: &str, replace: bool) {
        #[cfg(feature = "hydrate")]
        match Url::of_href(href) {
            Some(url) if Page::of(&url.path) != Page::NotFound => self.go(url, Some((href.to_string(), replace))),
            _ => {
                let _ = window().location().set_href(href);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (href, replace);
    }

    /// Sends the visitor to `path`: the server answers with a redirect, the browser changes
    /// the page in place (replacing the current history entry).
    pub fn redirect(&self, path: &str) {
        #[cfg(feature = "ssr")]
        leptos_axum::redirect(path);
        #[cfg(not(feature = "ssr"))]
        self.navigate(path, true);
    }

    /// Moves to `url` once its page's code is loaded, writing `history` (the link, and
    /// whether it replaces the current entry) first, then scrolling as a new document would;
    /// without `history`, the address bar already shows `url` (back and forward).
    #[cfg(feature = "hydrate")]
    fn go(self, url: Url, history: Option<(String, bool)>) {
        let navigation = self.navigations.get_value().wrapping_add(1);
        self.navigations.set_value(navigation);
        leptos::task::spawn_local(async move {
            Page::of(&url.path).load().await;
            if self.navigations.get_value() != navigation {
                return;
            }
            let Some((href, replace)) = history else {
                // Back or forward: the browser restores where the page was scrolled to.
                self.url.set(url);
                return;
            };
            if let Ok(h) = window().history() {
                let same = self.url.with_untracked(|u| *u == url);
                let _ = if replace || same {
                    h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
                } else {
                    h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
                };
            }
            self.url.set(url);
            // Once the page has rendered, its top, as a new document would be shown; then
            // the element the link's fragment names, once it is there.
            let fragment = href.split_once('#').map(|(_, f)| f.to_string());
            request_animation_frame(move || {
                window().scroll_to_with_x_and_y(0.0, 0.0);
                if let Some(id) = fragment {
                    scroll_to_element(id, 60);
                }
            });
        });
    }

    #[cfg(feature = "hydrate")]
    fn listen(self) {
        // For the document's life: the application is never unmounted.
        let _ = window_event_listener(leptos::ev::click, move |ev| self.follow(&ev));
        let _ = window_event_listener(leptos::ev::popstate, move |_| self.go(Url::current(), None));
        // Signing in redirects to where the visitor was going. The action's value is set a
        // frame before the page changes, as leptos_router does.
        let _ = leptos::server_fn::redirect::set_redirect_hook(move |to: &str| {
            let to = to.to_string();
            request_animation_frame(move || self.navigate(&to, false));
        });
    }

    /// Follows a click on a link to one of the application's pages in place. Leaves to the
    /// browser: a click with a modifier or another button, a link with a target, `download`
    /// or `rel="external"`, to another origin or another path, and one to a fragment of
    /// this page (the browser scrolls to it).
    #[cfg(feature = "hydrate")]
    fn follow(self, ev: &web_sys::MouseEvent) {
        use wasm_bindgen::JsCast;
        if ev.default_prevented()
            || ev.button() != 0
            || ev.meta_key()
            || ev.alt_key()
            || ev.ctrl_key()
            || ev.shift_key()
        {
            return;
        }
        let anchor = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok());
        let Some(a) = anchor else { return };
        let external = a.get_attribute("rel").is_some_and(|rel| rel.split_ascii_whitespace().any(|r| r == "external"));
        if !a.target().is_empty() || a.has_attribute("download") || external {
            return;
        }
        if window().location().origin().ok() != Some(a.origin()) {
            return;
        }
        let search = a.search();
        let url = Url { path: a.pathname(), search: search.strip_prefix('?').unwrap_or(&search).to_string() };
        if Page::of(&url.path) == Page::NotFound || (!a.hash().is_empty() && self.url.with_untracked(|u| *u == url)) {
            return;
        }
        ev.prevent_default();
        let href = format!("{}{}", url.href(), a.hash());
        self.go(url, Some((href, false)));
    }
}

/// Scrolls to the element `id` names once it is rendered, which for a page's data is after
/// it arrives: looked for on each of the next `frames` frames (60: about a second).
#[cfg(feature = "hydrate")]
fn scroll_to_element(id: String, frames: u32) {
    request_animation_frame(move || match document().get_element_by_id(&id) {
        Some(element) => element.scroll_into_view(),
        None if frames > 0 => scroll_to_element(id, frames - 1),
        None => {}
    });
}

/// Whether `path` is `section` or below it; every path is below `/`, which only `/` is at.
fn within(path: &str, section: &str) -> bool {
    path == section
        || (section != "/" && path.strip_prefix(section).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// Where the application is.
pub fn use_location() -> Location {
    expect_context::<Location>()
}

/// The query's parameters.
pub fn use_query() -> Memo<Query> {
    use_location().query
}

/// A link in the navigation, marked as the current page (`aria-current`) while the path is
/// its own or below it.
#[component]
pub fn NavLink(href: &'static str, children: Children) -> impl IntoView {
    let location = use_location();
    view! { <a href=href aria-current=move || location.is_at(href).then_some("page")>{children()}</a> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_shows_its_page() {
        for (route, page) in Page::ROUTES {
            assert_eq!(Page::of(&route.replace("{id}", "0192c3d4")), page, "{route}");
            assert_eq!(Page::of(&format!("{}/", route.replace("{id}", "x")).replace("//", "/")), page, "{route}/");
        }
        for path in ["", "/nope", "/notifications", "/notifications/", "/notifications/a/b", "/settings/x", "/api/x"] {
            assert_eq!(Page::of(path), Page::NotFound, "{path}");
        }
    }

    #[test]
    fn a_detail_page_names_its_notification() {
        assert_eq!(notification_id("/notifications/0192c3d4"), Some("0192c3d4"));
        assert_eq!(notification_id("/notifications/0192c3d4/"), Some("0192c3d4"));
        for path in ["/notifications/", "/notifications", "/notifications/a/b", "/settings"] {
            assert_eq!(notification_id(path), None, "{path}");
        }
    }

    #[test]
    fn a_query_decodes_as_a_form() {
        let q = Query::parse("search=a+b%20c&view=unread&empty=&flag&search=second&bad=%zz%4");
        assert_eq!(q.get("search").as_deref(), Some("a b c"));
        assert_eq!(q.get("view").as_deref(), Some("unread"));
        assert_eq!(q.get("empty").as_deref(), Some(""));
        assert_eq!(q.get("flag").as_deref(), Some(""));
        assert_eq!(q.get("bad").as_deref(), Some("%zz%4"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(
            Query::parse("next=%2Fnotifications%2F1%3Fx%3D1%26y").get("next").as_deref(),
            Some("/notifications/1?x=1&y")
        );
        assert_eq!(Query::parse("t=%E2%9C%93%FF").get("t").as_deref(), Some("✓\u{FFFD}"));
        assert_eq!(Query::parse(""), Query::default());
    }

    #[test]
    fn a_navigation_link_is_current_on_its_page_and_below() {
        assert!(within("/", "/"));
        assert!(!within("/settings", "/"), "the inbox's link is current on the inbox only");
        assert!(within("/settings", "/settings"));
        assert!(within("/admin/x", "/admin"));
        assert!(!within("/administrators", "/admin"));
        assert!(!within("/", "/settings"));
    }

    #[test]
    fn links_on_this_site_are_paths() {
        assert_eq!(Url::of_href("/?view=unread#x"), Some(Url { path: "/".into(), search: "view=unread".into() }));
        assert_eq!(Url::of_href("/settings").map(|u| u.href()).as_deref(), Some("/settings"));
        for other in ["https://example.com/", "//example.com/x", "settings", ""] {
            assert_eq!(Url::of_href(other), None, "{other}");
        }
    }
}
