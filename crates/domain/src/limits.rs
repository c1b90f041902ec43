//! Configurable limits of the domain (documented defaults; the gateway has its own frame
//! limits).

use serde::{Deserialize, Serialize};

/// Limits on user input. All lengths are in bytes of UTF-8 unless noted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum message text length (default 16,384 bytes).
    pub max_message_bytes: usize,
    /// Maximum channel name length (default 80).
    pub max_name_bytes: usize,
    /// Maximum topic length (default 1,024).
    pub max_topic_bytes: usize,
    /// Maximum members of a group DM, creator included (default 16).
    pub max_group_dm_members: usize,
    /// Maximum page size of list endpoints (default 500).
    pub max_page: i64,
    /// Maximum emoji length (default 64).
    pub max_emoji_bytes: usize,
    /// Maximum client message id length (default 128).
    pub max_client_msg_id_bytes: usize,
    /// Sends per second one user may make, over every interface together (REST, STOMP,
    /// gRPC); 0 disables the limit (default 50).
    pub sends_per_user_per_sec: u32,
    /// Burst of sends above that rate a user may make at once (default 200).
    pub send_burst_per_user: u32,
    /// Maximum size of one uploaded attachment in bytes (default 10 MiB).
    pub max_attachment_bytes: u64,
    /// Maximum attachments on one message (default 10).
    pub max_attachments_per_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 * 1024,
            max_name_bytes: 80,
            max_topic_bytes: 1024,
            max_group_dm_members: 16,
            max_page: 500,
            max_emoji_bytes: 64,
            max_client_msg_id_bytes: 128,
            sends_per_user_per_sec: 50,
            send_burst_per_user: 200,
            max_attachment_bytes: 10 * 1024 * 1024,
            max_attachments_per_message: 10,
        }
    }
}
