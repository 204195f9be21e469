//! Server functions that change notifications, shared by the inbox, toasts and detail page.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Sets read/saved/archived on the signed-in user's notifications (`None` leaves a state as
/// it is). The same core function backs `POST /api/notifications/notifications/update`.
#[server(endpoint = "notifications/state", input = Json)]
pub async fn set_state(ids: Vec<String>, read: Option<bool>, saved: Option<bool>, archived: Option<bool>) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::notifications::{update, StateChange};
    let hub = hub()?;
    let user = require_user().await?;
    update(&hub.db, &user, &ids, StateChange { read, saved, archived }).await.map_err(fail)?;
    Ok(())
}
