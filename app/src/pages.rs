//! One module per page.

mod admin;
mod detail;
pub mod inbox;
mod not_found;
mod settings;
mod sign_in;

pub use admin::AdminPage;
pub use detail::DetailPage;
pub use inbox::{InboxPage, InboxQuery};
pub use not_found::NotFound;
pub use settings::SettingsPage;
pub use sign_in::SignInPage;
