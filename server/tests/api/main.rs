//! Integration tests of the HTTP API: each test starts a real Herald on a free port, once on
//! SQLite and once on PostgreSQL (`both!`), and talks to it over HTTP.

mod helpers;

mod announcements;
mod auth;
mod cli;
mod compat;
mod counts;
mod delivery;
mod directory;
mod faults;
mod hardening;
mod health;
mod inbox;
mod openapi;
mod outages;
mod publish;
mod settings;
mod stream;
mod timeouts;
