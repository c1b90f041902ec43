//! chat-gateway (being written).
