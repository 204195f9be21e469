//! The bulk bar: one action for every checked row.
//!
//! Without JavaScript it is a plain form: the rows' checkboxes belong to it through their
//! `form` attribute and the server function reads them as `ids[id:<id>]`. With JavaScript the
//! selection lives in a signal and the bar dispatches the same server function in place.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::clock::Clock;
use crate::notification_fns::{BulkAction, BulkForm};

/// The bar above the list.
#[component]
pub fn BulkBar(
    action: ServerAction<BulkForm>,
    selected: RwSignal<BTreeSet<String>>,
    page_ids: Vec<String>,
) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let choice = NodeRef::<leptos::html::Select>::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(select) = choice.get() else { return };
        let ids: BTreeMap<String, String> = selected
            .get_untracked()
            .into_iter()
            .map(|id| (format!("{}{id}", crate::notification_fns::BULK_ID_PREFIX), "on".to_string()))
            .collect();
        action.dispatch(BulkForm { ids: Some(ids), action: select.value(), tz: Some(clock.tz.get_untracked()) });
    };
    // A finished bulk action clears the selection.
    Effect::new(move |prev: Option<usize>| {
        let version = action.version().get();
        if prev.is_some_and(|p| p != version) && matches!(action.value().get_untracked(), Some(Ok(()))) {
            selected.set(BTreeSet::new());
        }
        version
    });
    let all_checked = {
        let page_ids = page_ids.clone();
        move || !page_ids.is_empty() && selected.with(|s| page_ids.iter().all(|id| s.contains(id)))
    };
    let select_all = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        selected.update(|s| {
            for id in &page_ids {
                if on {
                    s.insert(id.clone());
                } else {
                    s.remove(id);
                }
            }
        });
    };
    let error = move || action.value().get().and_then(Result::err).map(crate::components::error_text);
    view! {
        <form id="bulk" class="bulk-bar" method="post" action=BulkForm::url() on:submit=submit data-testid="bulk-bar">
            <input
                type="checkbox"
                aria-label="Select every notification on this page"
                title="Select all on this page"
                prop:checked=all_checked
                disabled=move || clock.now.get().is_none()
                on:change=select_all
            />
            <span class="muted" data-testid="selected-count">
                {move || match selected.with(BTreeSet::len) {
                    0 => "With selected:".to_string(),
                    n => format!("{n} selected:"),
                }}
            </span>
            <input type="hidden" name="tz" prop:value=move || clock.tz.get().to_string() />
            <label class="visually-hidden" for="bulk-action">"Action for the selected notifications"</label>
            <select id="bulk-action" name="action" node_ref=choice>
                {BulkAction::ALL.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
            </select>
            <button type="submit" class="button">"Apply"</button>
            <span class="error" role="alert">{error}</span>
        </form>
    }
}
