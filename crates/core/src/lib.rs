//! chat-core (being written).
