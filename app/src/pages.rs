//! One module per page.

pub(crate) mod admin;
pub(crate) mod detail;
pub mod inbox;
mod not_found;
pub(crate) mod settings;
pub(crate) mod sign_in;

pub use inbox::{InboxPage, InboxQuery};
pub use not_found::NotFound;
