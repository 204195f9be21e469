use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::{InPlaceForm, PageTitle, typed};
use crate::session::SignIn;
use crate::shell::Session;

/// How this instance lets people sign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// The built-in password form is offered.
    pub password: bool,
    /// Single sign-on through a reverse proxy is configured.
    pub proxy: bool,
}

/// How this instance lets people sign in.
#[server(endpoint = "signin-options", output = crate::codec::JsonText)]
pub async fn sign_in_options() -> Result<SignInMethods, ServerFnError> {
    let hub = crate::server::hub()?;
    Ok(SignInMethods { password: hub.auth.password_login, proxy: hub.auth.proxy.is_some() })
}

/// `/signin`: its code is a separate chunk, loaded when the page is first shown, which for
/// most people is once.
#[leptos::lazy]
pub(crate) fn page() -> AnyView {
    view! { <SignInPage /> }.into_any()
}

/// Loads [`page`]'s code, if it is not loaded yet.
#[cfg(feature = "hydrate")]
pub(crate) async fn preload() {
    __preload_page().await;
}

/// The sign-in form. Works without JavaScript: the form posts to the server function, which
/// sets the session cookie and redirects.
#[component]
fn SignInPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let action = ServerAction::<SignIn>::new();
    // Whoever is signed in is read again (the server function then redirects to `next`).
    Effect::new(move |_| {
        if action.value().with(|v| matches!(v, Some(Ok(())))) {
            session.record_sign_in();
        }
    });
    let options = Resource::new(|| (), |_| sign_in_options());
    let query = crate::router::use_query();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    let error = move || action.value().get().and_then(|r| r.err()).map(crate::components::error_text);
    let (username, password) = (NodeRef::<leptos::html::Input>::new(), NodeRef::<leptos::html::Input>::new());
    let signing_in = move |_: &_| SignIn { username: typed(username), password: typed(password), next: Some(next()) };
    view! {
        <PageTitle text="Sign in" />
        <section class="signin">
            <h1>"Sign in to Herald"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let o = options.await.unwrap_or(SignInMethods { password: true, proxy: false });
                    view! {
                        {o.proxy.then(|| view! {
                            <div class="notice" data-testid="sso-notice">
                                <p>
                                    "This Herald signs you in through your organisation's single sign-on. "
                                    "Open Herald at the address your company uses for it and you are signed in automatically; "
                                    "if you got here from that address, your sign-on session may have ended — reload to sign on again."
                                </p>
                                {o.password.then(|| view! { <p>"Accounts without single sign-on can use a password below."</p> })}
                            </div>
                        })}
                        {o.password.then(|| view! {
                            <InPlaceForm action input=signing_in attr:class="stack" attr:data-testid="signin-form">
                                <input type="hidden" name="next" value=next />
                                <label for="username">"User name"</label>
                                <input id="username" name="username" type="text" autocomplete="username" required node_ref=username />
                                <label for="password">"Password"</label>
                                <input id="password" name="password" type="password" autocomplete="current-password" required node_ref=password />
                                <button type="submit" class="button primary">"Sign in"</button>
                            </InPlaceForm>
                        })}
                        {(!o.password && !o.proxy).then(|| view! {
                            <p class="notice">"Sign-in is not configured on this Herald. Ask its administrator to enable password sign-in or single sign-on."</p>
                        })}
                    }
                })}
            </Suspense>
            <p class="error" role="alert" data-testid="signin-error">{error}</p>
        </section>
    }
}
