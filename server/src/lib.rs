//! The `herald` server: configuration, HTTP routes, start-up and the command line. Domain
//! rules live in `herald-core`; this crate wires them to the outside world.

pub mod cli;
pub mod config;
pub mod delivery;
pub mod http;
pub mod send;
pub mod serve;
pub mod startup;
pub mod telemetry;
