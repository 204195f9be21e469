//! The browser side of the live stream: one `EventSource` per tab, feeding signals that the
//! badge, the title, the toasts and the inbox read.
//!
//! The browser's own `EventSource` is used rather than leptos-use's `use_event_source`:
//! after a dropped connection the native object reconnects by itself and sends
//! `Last-Event-ID`, which is exactly what the server's replay needs; leptos-use reconnects by
//! creating a new `EventSource`, which starts without that header.

use herald_model::{NotificationStatus, Severity};
use leptos::prelude::*;
use serde::Deserialize;

/// Whether the stream is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    /// Not signed in, or not started (e.g. without JavaScript).
    Off,
    Connecting,
    Live,
    Reconnecting,
}

impl LiveState {
    /// The state's name, as the indicator's `data-state` says it.
    pub fn name(self) -> &'static str {
        match self {
            LiveState::Off => "off",
            LiveState::Connecting => "connecting",
            LiveState::Live => "live",
            LiveState::Reconnecting => "reconnecting",
        }
    }
}

/// A notification that arrived on the stream, as a toast shows it: the event's JSON is the
/// API's notification, of which this reads only what a toast and the system notification
/// show (reading it whole took chrono's parsers and serde_json's `Value` into the bundle).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Toast {
    pub id: String,
    pub origin: String,
    /// Whether it arrived read (the API's `read` time, whatever it is).
    #[serde(default, rename = "read", deserialize_with = "present")]
    pub arrived_read: bool,
    pub payload: ToastPayload,
}

/// What a toast shows of a notification's payload.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ToastPayload {
    pub title: String,
    pub description: Option<String>,
    pub link: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    pub topic: Option<String>,
}

/// Whether an optional field holds a value (rather than `null`), without reading it.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<serde::de::IgnoredAny>::deserialize(d)?.is_some())
}

/// A change of state the user made (in any tab), as far as this tab acts on it.
#[derive(Deserialize)]
struct StateUpdate {
    ids: Vec<String>,
    read: Option<bool>,
    archived: Option<bool>,
}

/// The live state of this tab, provided as context.
#[derive(Clone, Copy)]
pub struct Live {
    pub state: RwSignal<LiveState>,
    /// The unread count from the stream; `None` until the first `status` event.
    pub unread: RwSignal<Option<i64>>,
    /// Toasts on screen, oldest first.
    pub toasts: RwSignal<Vec<Toast>>,
    /// The ids of the notifications that arrived since the page loaded, newest last (the
    /// inbox and the critical banner reload when it grows).
    pub arrivals: RwSignal<Vec<String>>,
    /// Bumped by every change of state the user makes, in any tab: lists showing the same
    /// notifications reload.
    pub updates: RwSignal<u32>,
    /// Bumped when the stream says the page's data is stale and must be refetched.
    pub resets: RwSignal<u32>,
}

impl Live {
    /// Fresh, disconnected state.
    pub fn new() -> Live {
        Live {
            state: RwSignal::new(LiveState::Off),
            unread: RwSignal::new(None),
            toasts: RwSignal::new(vec![]),
            arrivals: RwSignal::new(vec![]),
            updates: RwSignal::new(0),
            resets: RwSignal::new(0),
        }
    }

    /// The document title for a page titled `text`, with the unread count in front once the
    /// stream has sent one. The count comes only from the browser's stream, so the server
    /// never has one, and does not read the signal: a title rendered at the end of a
    /// response, when under load the page's owner, whose arena holds the signal, can be gone
    /// already, would panic reading it (`try_get` too: the arena lookup itself does).
    pub fn title(&self, text: &str) -> String {
        let unread = if cfg!(feature = "hydrate") { self.unread.get() } else { None };
        title_with_count(text, unread)
    }

    /// Applies one stream event.
    pub fn apply(&self, kind: &str, data: &str) {
        match kind {
            "notification" => {
                let Ok(n) = serde_json::from_str::<Toast>(data) else { return };
                let seen = self.arrivals.with_untracked(|a| a.contains(&n.id));
                if !seen && !n.arrived_read {
                    self.unread.update(|u| {
                        if let Some(u) = u {
                            *u += 1;
                        }
                    });
                }
                self.arrivals.update(|a| {
                    a.retain(|x| *x != n.id);
                    a.push(n.id.clone());
                });
                #[cfg(feature = "hydrate")]
                if !n.arrived_read {
                    system_notification::show(&n);
                }
                self.toasts.update(|t| {
                    t.retain(|x| x.id != n.id);
                    t.push(n);
                });
            }
            "update" => {
                if let Ok(u) = serde_json::from_str::<StateUpdate>(data) {
                    if u.read == Some(true) || u.archived == Some(true) {
                        self.toasts.update(|t| t.retain(|x| !u.ids.contains(&x.id)));
                    }
                    self.updates.update(|n| *n += 1);
                }
            }
            "status" => {
                if let Ok(s) = serde_json::from_str::<NotificationStatus>(data) {
                    self.unread.set(Some(s.unread));
                }
            }
            "reset" => self.resets.update(|r| *r += 1),
            _ => {}
        }
    }

    /// Removes a toast.
    pub fn dismiss(&self, id: &str) {
        self.toasts.update(|t| t.retain(|x| x.id != id));
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

/// An open live stream (browser only): the current `EventSource`, replaced when the
/// connection has to be reopened by hand.
#[cfg(feature = "hydrate")]
#[derive(Clone)]
pub struct Connection {
    current: std::rc::Rc<std::cell::RefCell<Option<web_sys::EventSource>>>,
    last_id: std::rc::Rc<std::cell::Cell<i64>>,
    stopped: std::rc::Rc<std::cell::Cell<bool>>,
}

#[cfg(feature = "hydrate")]
impl Connection {
    /// Opens the stream after event `since` (the position the page was rendered at, so
    /// nothing published between rendering and connecting is missed).
    pub fn open(live: Live, since: i64) -> Connection {
        let conn = Connection {
            current: Default::default(),
            last_id: std::rc::Rc::new(std::cell::Cell::new(since)),
            stopped: Default::default(),
        };
        conn.connect(live, 0);
        conn
    }

    /// Closes the stream for good (sign-out).
    pub fn close(&self) {
        self.stopped.set(true);
        if let Some(s) = self.current.borrow_mut().take() {
            s.close();
        }
    }

    fn connect(&self, live: Live, attempt: u32) {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;

        if self.stopped.get() {
            return;
        }
        let url = format!("/api/notifications/stream?since={}", self.last_id.get());
        let Ok(source) = web_sys::EventSource::new(&url) else { return };
        live.state.set(if attempt == 0 { LiveState::Connecting } else { LiveState::Reconnecting });
        for kind in ["notification", "update", "status", "reset"] {
            let last_id = self.last_id.clone();
            let on_event = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Ok(id) = e.last_event_id().parse::<i64>() {
                    last_id.set(id);
                }
                if let Some(data) = e.data().as_string() {
                    live.apply(kind, &data);
                }
            });
            let _ = source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
            // Listeners live as long as their EventSource.
            on_event.forget();
        }
        let on_open = Closure::<dyn FnMut()>::new(move || live.state.set(LiveState::Live));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        let this = self.clone();
        let failed = source.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            live.state.set(LiveState::Reconnecting);
            // After a network error the browser reconnects by itself, sending Last-Event-ID.
            // After an HTTP error (the server restarting, 429, 503) it gives up: reopen by
            // hand with backoff, from the last event seen.
            if failed.ready_state() == web_sys::EventSource::CLOSED {
                let delay = std::time::Duration::from_millis((1000u64 << attempt.min(5)).min(30_000));
                let this = this.clone();
                set_timeout(move || this.connect(live, attempt + 1), delay);
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        if let Some(old) = self.current.borrow_mut().replace(source) {
            old.close();
        }
    }
}

/// Browser (system) notifications through the Web Notification API: off until the user turns
/// them on in Settings, which is also when the browser asks for permission.
#[cfg(feature = "hydrate")]
pub mod system_notification {
    use super::Toast;
    use web_sys::{NotificationOptions, NotificationPermission};

    const KEY: &str = "herald.browserNotifications";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    /// Whether the user turned them on (and the browser still allows them).
    pub fn enabled() -> bool {
        let on = storage().and_then(|s| s.get_item(KEY).ok().flatten()).is_some_and(|v| v == "on");
        on && web_sys::Notification::permission() == NotificationPermission::Granted
    }

    /// Turns them on (asking the browser for permission) or off; returns the new state.
    pub async fn set_enabled(on: bool) -> bool {
        let Some(storage) = storage() else { return false };
        if !on {
            let _ = storage.remove_item(KEY);
            return false;
        }
        if let Ok(promise) = web_sys::Notification::request_permission() {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
        let granted = web_sys::Notification::permission() == NotificationPermission::Granted;
        if granted {
            let _ = storage.set_item(KEY, "on");
        }
        granted
    }

    /// Shows one while the tab is in the background. The notification id is the tag, so
    /// several open tabs show a single system notification.
    pub fn show(n: &Toast) {
        let hidden = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.visibility_state() != web_sys::VisibilityState::Visible);
        if !hidden || !enabled() {
            return;
        }
        let options = NotificationOptions::new();
        options.set_tag(&n.id);
        options.set_body(n.payload.description.as_deref().unwrap_or(&n.origin));
        let _ = web_sys::Notification::new_with_options(&n.payload.title, &options);
    }
}

/// Text of the unread badge: the count, capped at "99+".
pub fn badge_text(unread: i64) -> String {
    if unread > 99 { "99+".to_string() } else { unread.to_string() }
}

/// The document title with the unread count in front, as mail clients do.
pub fn title_with_count(text: &str, unread: Option<i64>) -> String {
    let base = if text.is_empty() { "Herald".to_string() } else { format!("{text} · Herald") };
    match unread {
        Some(n) if n > 0 => format!("({}) {base}", badge_text(n)),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_caps_at_99_and_the_title_shows_the_count() {
        assert_eq!(badge_text(99), "99");
        assert_eq!(badge_text(100), "99+");
        assert_eq!(title_with_count("Inbox", Some(3)), "(3) Inbox · Herald");
        assert_eq!(title_with_count("Inbox", Some(0)), "Inbox · Herald");
        assert_eq!(title_with_count("", None), "Herald");
    }

    #[test]
    fn a_title_rendered_after_the_page_is_gone_does_not_read_the_count() {
        // leptos_axum renders the <title> at the end of a response, when under load the
        // page's owner, whose arena holds the signals, can already be dropped.
        let live = {
            let page = Owner::new();
            page.with(Live::new)
        };
        assert_eq!(live.title("Inbox"), "Inbox · Herald");
    }

    #[test]
    fn stream_events_move_the_count_and_the_toasts() {
        let owner = Owner::new();
        owner.set();
        let live = Live::new();
        live.apply("status", r#"{"unread":2,"read":1}"#);
        assert_eq!(live.unread.get_untracked(), Some(2));
        let n = r#"{"id":"a","user":"user:default/x","created":"2024-01-01T00:00:00Z","read":null,"saved":null,"origin":"o","payload":{"title":"t","severity":"high"}}"#;
        live.apply("notification", n);
        live.apply("notification", n);
        assert_eq!(live.unread.get_untracked(), Some(3), "a repeated event is counted once");
        assert_eq!(live.toasts.get_untracked().len(), 1);
        live.apply("update", r#"{"ids":["a"],"read":true}"#);
        assert!(live.toasts.get_untracked().is_empty(), "reading elsewhere removes the toast");
        live.apply("reset", "{}");
        assert_eq!(live.resets.get_untracked(), 1);
    }

    #[test]
    fn a_toast_reads_what_the_server_sends() {
        // The event's data is the API's notification, times, metadata and all; the toast reads
        // only what it shows, and one that arrives read does not count as unread.
        use herald_model::{Notification, NotificationPayload};
        let owner = Owner::new();
        owner.set();
        let live = Live::new();
        live.apply("status", r#"{"unread":0,"read":0}"#);
        let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        let mut metadata = serde_json::Map::new();
        metadata.insert("build".into(), serde_json::json!({"number": 42, "green": false}));
        let n = Notification {
            id: "b".into(),
            user: Some("user:default/x".into()),
            created: at,
            updated: Some(at),
            read: Some(at),
            saved: None,
            archived: None,
            snoozed_until: None,
            origin: "ci".into(),
            payload: NotificationPayload {
                title: "Build failed".into(),
                description: Some("**red**".into()),
                link: Some("https://ci.example/42".into()),
                severity: Severity::High,
                topic: Some("builds".into()),
                metadata: Some(metadata),
                ..NotificationPayload::default()
            },
        };
        live.apply("notification", &serde_json::to_string(&n).unwrap());
        assert_eq!(live.unread.get_untracked(), Some(0), "it arrived read");
        let toasts = live.toasts.get_untracked();
        assert_eq!(toasts.len(), 1);
        let t = &toasts[0];
        assert!(t.arrived_read);
        assert_eq!((t.id.as_str(), t.origin.as_str()), ("b", "ci"));
        assert_eq!(t.payload.title, "Build failed");
        assert_eq!(t.payload.link.as_deref(), Some("https://ci.example/42"));
        assert_eq!(t.payload.severity, Severity::High);
        assert_eq!(t.payload.topic.as_deref(), Some("builds"));
        assert_eq!(live.arrivals.get_untracked(), vec!["b".to_string()]);
    }
}
