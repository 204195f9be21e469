//! One module per page.

mod admin;
mod detail;
pub mod inbox;
mod not_found;
mod settings;
mod sign_in;

pub use admin::AdminRoute;
pub use detail::DetailRoute;
pub use inbox::{InboxPage, InboxQuery};
pub use not_found::NotFound;
pub use settings::SettingsRoute;
pub use sign_in::SignInRoute;
