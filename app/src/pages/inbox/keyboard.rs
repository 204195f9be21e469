//! Keyboard shortcuts of the inbox, as in mail clients: j/k move, o/Enter open, e done,
//! s save, u read toggle, x select, / search, ? help.
//!
//! The shortcuts press the same buttons a mouse would (each carries `data-shortcut`), so
//! every key goes through the row's own form and its server function.

use leptos::prelude::*;

/// The shortcuts, as (keys, what they do), for the help and the docs.
pub const SHORTCUTS: [(&str, &str); 9] = [
    ("j / k", "Next / previous notification"),
    ("o or Enter", "Open the link"),
    ("e", "Done (or undo done)"),
    ("s", "Save (or unsave)"),
    ("u", "Mark as read / unread"),
    ("x", "Select for a bulk action"),
    ("/", "Search"),
    ("?", "Show these shortcuts"),
    ("Esc", "Close this help / leave the search field"),
];

/// The help listing the shortcuts, shown by `?`. Rendered hidden and shown by its `hidden`
/// attribute, rather than built when shown: one view, where `Show` took two into the bundle.
#[component]
pub fn ShortcutHelp(open: RwSignal<bool>) -> impl IntoView {
    let hidden = move || !open.get();
    view! {
        <div hidden=hidden>
            <div class="dialog-backdrop" on:click=move |_| open.set(false)></div>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title" data-testid="shortcuts">
                <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
                <dl class="shortcuts">
                    {SHORTCUTS
                        .iter()
                        .map(|(keys, what)| view! { <dt><kbd>{*keys}</kbd></dt><dd>{*what}</dd> })
                        .collect_view()}
                </dl>
                <button type="button" class="button" on:click=move |_| open.set(false)>"Close"</button>
            </div>
        </div>
    }
}

/// Listens for the shortcuts while the inbox is on screen (browser only). `current` is the
/// id of the row the keys act on; rows highlight themselves from it, so the highlight
/// survives the list being rendered anew.
pub fn install(help: RwSignal<bool>, current: RwSignal<Option<String>>) {
    #[cfg(feature = "hydrate")]
    {
        let cursor = browser::Cursor { id: current, index: StoredValue::new(0) };
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if browser::on_key(&ev, help, cursor) {
                ev.prevent_default();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (help, current);
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{Element, HtmlElement, KeyboardEvent};

    /// The current row: its id, and its index when last seen (the next row slides into that
    /// index when the current one leaves the view).
    #[derive(Clone, Copy)]
    pub struct Cursor {
        pub id: RwSignal<Option<String>>,
        pub index: StoredValue<usize>,
    }

    /// Handles one key; returns whether it was a shortcut.
    pub fn on_key(ev: &KeyboardEvent, help: RwSignal<bool>, cursor: Cursor) -> bool {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return false;
        }
        let key = ev.key();
        let target = ev.target().and_then(|t| t.dyn_into::<Element>().ok());
        let tag = target.as_ref().map(|t| t.tag_name()).unwrap_or_default();
        if matches!(tag.as_str(), "INPUT" | "TEXTAREA" | "SELECT") {
            if key == "Escape" {
                if let Some(el) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
                    let _ = el.blur();
                }
                return true;
            }
            return false;
        }
        match key.as_str() {
            "j" => step(cursor, 1),
            "k" => step(cursor, -1),
            "o" => press(cursor, "a.title"),
            // Enter on a link or button keeps its own meaning.
            "Enter" if !matches!(tag.as_str(), "A" | "BUTTON" | "SUMMARY") => press(cursor, "a.title"),
            "e" | "s" | "u" | "x" => press(cursor, &format!("[data-shortcut=\"{key}\"]")),
            "/" => {
                if let Some(search) = document().get_element_by_id("q").and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
                    let _ = search.focus();
                }
            }
            "?" => help.update(|h| *h = !*h),
            "Escape" if help.get_untracked() => help.set(false),
            _ => return false,
        }
        true
    }

    /// The rows on screen (rows inside a closed burst are hidden and skipped).
    fn rows() -> Vec<HtmlElement> {
        let Ok(list) = document().query_selector_all("[data-testid=\"notification\"]") else { return vec![] };
        (0..list.length())
            .filter_map(|i| list.item(i)?.dyn_into::<HtmlElement>().ok())
            .filter(|el| el.offset_parent().is_some())
            .collect()
    }

    /// The index of the current row among `rows`, if there is one.
    fn current(rows: &[HtmlElement], cursor: Cursor) -> Option<usize> {
        let id = cursor.id.get_untracked()?;
        let index = cursor.index.get_value();
        rows.iter()
            .position(|r| r.get_attribute("data-id").as_deref() == Some(id.as_str()))
            .or_else(|| (!rows.is_empty()).then(|| index.min(rows.len() - 1)))
    }

    fn step(cursor: Cursor, by: isize) {
        let rows = rows();
        if rows.is_empty() {
            return;
        }
        let next = match current(&rows, cursor) {
            None => 0,
            Some(i) if cursor.id.get_untracked() != rows[i].get_attribute("data-id") => {
                // The current row left the view; the one now in its place is next.
                if by > 0 { i } else { i.saturating_sub(1) }
            }
            Some(i) => (i as isize + by).clamp(0, rows.len() as isize - 1) as usize,
        };
        let row = &rows[next];
        let _ = row.focus();
        cursor.id.set(row.get_attribute("data-id"));
        cursor.index.set_value(next);
    }

    /// Clicks the element matching `selector` in the current row (the first row if none).
    fn press(cursor: Cursor, selector: &str) {
        let rows = rows();
        let Some(i) = current(&rows, cursor).or((!rows.is_empty()).then_some(0)) else { return };
        if let Some(el) = rows[i].query_selector(selector).ok().flatten().and_then(|e| e.dyn_into::<HtmlElement>().ok())
        {
            el.click();
        }
    }
}
