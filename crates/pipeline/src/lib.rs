//! chat-pipeline (being written).
