//! Herald's Leptos application: the page shell, pages, components and the server functions
//! they call. Compiled twice: with `ssr` into the server (rendering and server functions) and
//! with `hydrate` into the browser bundle.

mod clock;
mod codec;
mod components;
pub mod live;
mod notification_fns;
mod pages;
pub mod router;
#[cfg(feature = "ssr")]
pub mod server;
pub mod session;
mod shell;

pub use shell::App;
#[cfg(feature = "hydrate")]
pub use shell::hydrate;
#[cfg(feature = "ssr")]
pub use shell::shell;
