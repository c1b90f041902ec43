//! The `chat-sys` process: configuration, command line, and the wiring of each role.
//!
//! API boundary: [`config::Config`] is the one documented configuration struct;
//! [`serve::run`] starts every role in one process and is what the binary and the
//! integration tests call. Nothing here holds business logic: it builds the store, the
//! authenticator and the core service, then hands listeners to the role crates.

pub mod cli;
pub mod config;
pub mod reindex;
pub mod roles;
pub mod serve;
