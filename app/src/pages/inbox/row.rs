//! One row of the inbox and its actions.

use std::collections::BTreeSet;

use leptos::prelude::*;

use super::InboxItem;
use crate::clock::{Clock, RelativeTime};
use crate::components::{InPlaceForm, SeverityIcon, StateButton};
use crate::notification_fns::{SetStateForm, SnoozeForm};

/// What the rows of one inbox page share, provided as context by the page.
#[derive(Clone, Copy)]
pub struct RowContext {
    pub set_state: ServerAction<SetStateForm>,
    pub snooze: ServerAction<SnoozeForm>,
    /// The ids checked for a bulk action.
    pub selected: RwSignal<BTreeSet<String>>,
    /// The row the keyboard acts on.
    pub current: RwSignal<Option<String>>,
    /// When the server rendered the page (see [`crate::clock`]).
    pub rendered_at: i64,
}

/// One notification with its actions. Every action is a form that works without JavaScript;
/// `data-shortcut` marks the buttons the keyboard presses.
#[component]
pub fn Row(item: InboxItem) -> impl IntoView {
    let ctx = expect_context::<RowContext>();
    let unread = item.unread;
    let saved = item.saved;
    let done = item.archived;
    let severity = item.severity;
    let class = format!("notification sev-{severity}{}", if unread { " unread" } else { "" });
    let id = item.id.clone();
    let action = {
        let id = id.clone();
        move |field: &'static str, value: bool, label: &'static str, shortcut: &'static str| {
            view! {
                <StateButton action=ctx.set_state id=id.clone() field value label class="row-action" shortcut />
            }
        }
    };
    let detail = format!("/notifications/{}", item.id);
    let title = item.title.clone();
    let checked = {
        let id = id.clone();
        move || ctx.selected.with(|s| s.contains(&id))
    };
    let toggle = {
        let id = id.clone();
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            ctx.selected.update(|s| {
                if on {
                    s.insert(id.clone());
                } else {
                    s.remove(&id);
                }
            });
        }
    };
    let snoozed = item.snoozed_until.filter(|t| *t > ctx.rendered_at).map(crate::clock::from_ms);
    let is_current = {
        let id = id.clone();
        move || ctx.current.with(|c| c.as_deref() == Some(id.as_str()))
    };
    view! {
        <li class=class class:current=is_current data-testid="notification" data-id=item.id.clone() tabindex="-1">
            <input
                type="checkbox"
                class="row-select"
                form="bulk"
                name=format!("ids[{}{}]", crate::notification_fns::BULK_ID_PREFIX, item.id)
                aria-label=format!("Select “{title}”")
                data-shortcut="x"
                prop:checked=checked
                on:change=toggle
            />
            <SeverityIcon severity />
            <div class="notification-main">
                {match item.link.clone() {
                    // Through Herald, which marks it read (if the user wants that) and
                    // redirects; `rel=external` keeps the application's router out of it.
                    Some(link) => view! {
                        <a class="title" href=format!("/open/{}", item.id) rel="external" title=link>{title.clone()}</a>
                    }
                    .into_any(),
                    None => view! { <a href=detail.clone() class="title">{title.clone()}</a> }.into_any(),
                }}
                {item.description_html.map(|html| view! { <div class="description" inner_html=html></div> })}
                <span class="meta">
                    <span class="origin">{item.origin.clone()}</span>
                    {item.topic.clone().map(|t| view! { <span class="chip">{t}</span> })}
                    <a href=detail>
                        <RelativeTime at=item.created rendered_at=ctx.rendered_at />
                    </a>
                    {snoozed.map(|t| view! {
                        <span class="snoozed-until" data-testid="snoozed-until">
                            "Snoozed until " <time datetime=crate::clock::machine_readable(t)>{crate::clock::weekday_utc_minute(t)}</time>
                        </span>
                    })}
                </span>
            </div>
            <div class="row-actions">
                {if unread { action("read", true, "Mark as read", "u") } else { action("read", false, "Mark as unread", "u") }}
                {if saved { action("saved", false, "Unsave", "s") } else { action("saved", true, "Save", "s") }}
                {if done { action("archived", false, "Undo done", "e") } else { action("archived", true, "Done", "e") }}
                {if snoozed.is_some() {
                    action("snoozed", false, "Unsnooze", "").into_any()
                } else {
                    view! { <SnoozeMenu id=id.clone() /> }.into_any()
                }}
            </div>
        </li>
    }
}

/// "Snooze" with its three choices: a disclosure of three one-button forms, so it works
/// without JavaScript too.
#[component]
fn SnoozeMenu(id: String) -> impl IntoView {
    let ctx = expect_context::<RowContext>();
    let clock = expect_context::<Clock>();
    let choice = move |value: &'static str, label: &'static str| {
        let id = id.clone();
        let input = {
            let id = id.clone();
            move |_: &_| SnoozeForm { id: id.clone(), choice: value.to_string(), tz: Some(clock.tz.get_untracked()) }
        };
        view! {
            <InPlaceForm action=ctx.snooze input=input attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="choice" value=value />
                <input type="hidden" name="tz" prop:value=move || clock.tz.get().to_string() />
                <button type="submit" class="menu-item">{label}</button>
            </InPlaceForm>
        }
    };
    view! {
        <details class="menu snooze-menu">
            <summary class="row-action">"Snooze"</summary>
            <div class="menu-items" role="group" aria-label="Snooze until">
                {choice("1h", "For 1 hour")}
                {choice("tomorrow", "Until tomorrow, 9:00")}
                {choice("nextweek", "Until next week")}
            </div>
        </details>
    }
}
