//! The parts of the page around the routed content.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::shell::{MeResource, Session};

/// Text of the unread badge: the count, capped at "99+".
pub fn badge_text(unread: i64) -> String {
    if unread > 99 { "99+".to_string() } else { unread.to_string() }
}

/// The slim bar at the top: product mark, unread badge and the signed-in user.
#[component]
pub fn TopBar() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let sign_out = expect_context::<Session>().sign_out;
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                <img src="/favicon.svg" alt="" width="24" height="24" />
                <span class="brand-name">"Herald"</span>
            </A>
            <div class="topbar-right">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(me)) => {
                                let label = format!("{} unread notifications", me.unread);
                                view! {
                                    <A href="/?view=unread" attr:class="unread-badge" attr:aria-label=label attr:data-testid="unread-badge">
                                        {badge_text(me.unread)}
                                    </A>
                                    <span class="user" data-testid="signed-in-user" title=me.user_ref.clone()>
                                        {me.display_name.clone()}
                                    </span>
                                    <ActionForm action=sign_out attr:class="inline-form">
                                        <button type="submit" class="link-button">"Sign out"</button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            _ => view! { <A href="/signin" attr:class="button">"Sign in"</A> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

/// The navigation rail (a menu button on narrow screens).
#[component]
pub fn SideNav() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let (open, set_open) = signal(false);
    view! {
        <nav class="sidenav" aria-label="Main" class:open=open>
            <button
                type="button"
                class="menu-button"
                aria-controls="nav-links"
                aria-expanded=move || open.get().to_string()
                data-testid="menu-button"
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                "Menu"
            </button>
            <ul id="nav-links">
                <li><A href="/">"Inbox"</A></li>
                <li><A href="/settings">"Settings"</A></li>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let admin = matches!(me.await, Ok(Some(Me { is_admin: true, .. })));
                        admin.then(|| view! { <li><A href="/admin">"Admin"</A></li> })
                    })}
                </Transition>
            </ul>
        </nav>
    }
}

use crate::session::Me;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_caps_at_99() {
        assert_eq!(badge_text(0), "0");
        assert_eq!(badge_text(99), "99");
        assert_eq!(badge_text(100), "99+");
    }
}
