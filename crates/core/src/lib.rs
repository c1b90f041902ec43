//! chat-core (being written).
pub mod service;
