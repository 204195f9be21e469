//! Herald's server-side core: everything that touches the database or enforces a rule, with
//! no HTTP types and no views. The `herald` binary and the Leptos server functions both call
//! into this crate, so each operation has one implementation.

pub mod announcements;
pub mod auth;
pub mod bus;
pub mod db;
pub mod demo;
pub mod directory;
mod error;
pub mod events;
mod group_commit;
mod hub;
pub mod idempotency;
pub mod maintenance;
pub mod markdown;
pub mod notifications;
pub mod outbox;
pub mod preferences;
pub mod recent;
pub mod routing;
pub mod settings;
pub mod time;
pub mod webhooks;

pub use db::{Backend, Db, PoolSettings};
pub use error::{Error, Result, Unavailable};
pub use hub::{AuthPolicy, Hub, ProxyAuth};
