use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::shell::Session;

/// The sign-in form. Works without JavaScript: the form posts to the server function, which
/// sets the session cookie and redirects.
#[component]
pub fn SignInPage() -> impl IntoView {
    let action = expect_context::<Session>().sign_in;
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    let error = move || {
        action.value().get().and_then(|r| r.err()).map(|e| match e {
            ServerFnError::ServerError(m) => m,
            other => other.to_string(),
        })
    };
    view! {
        <Title text="Sign in" />
        <section class="signin">
            <h1>"Sign in to Herald"</h1>
            <ActionForm action=action attr:class="stack" attr:data-testid="signin-form">
                <input type="hidden" name="next" value=next />
                <label for="username">"User name"</label>
                <input id="username" name="username" type="text" autocomplete="username" required />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required />
                <button type="submit" class="button primary">"Sign in"</button>
            </ActionForm>
            <p class="error" role="alert" data-testid="signin-error">{error}</p>
        </section>
    }
}
