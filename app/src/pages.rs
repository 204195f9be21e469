//! One module per page.

mod admin;
mod inbox;
mod not_found;
mod settings;
mod sign_in;

pub use admin::AdminPage;
pub use inbox::InboxPage;
pub use not_found::NotFound;
pub use settings::SettingsPage;
pub use sign_in::SignInPage;
