//! chat-core: the core service of chat-sys: domain operations ([`service::ChatService`]) and
//! the REST API ([`rest`]).

pub mod rest;
pub mod service;
