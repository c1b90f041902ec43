//! chat-auth (being written).
