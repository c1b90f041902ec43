//! The `[presence]` section: presence tracking of the core (`chat_core::service::Realtime`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Presence settings (see `chat_core::service::presence`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceSettings {
    /// Milliseconds a user whose last connection closed stays `ONLINE` before `OFFLINE` is
    /// announced; reconnecting within it announces nothing. 0 announces at once. Default
    /// 10,000.
    pub offline_grace_ms: u64,
    /// Milliseconds between sweeps for users whose connections all expired (no heart-beat
    /// within the registry TTL). Default 5,000; at least 10.
    pub sweep_interval_ms: u64,
    /// Most users one presence change is pushed to (the users sharing a conversation with
    /// the user). Default 10,000.
    pub max_recipients: usize,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        let d = chat_core::service::RealtimeConfig::default();
        PresenceSettings {
            offline_grace_ms: millis(d.presence_offline_grace),
            sweep_interval_ms: millis(d.presence_sweep_interval),
            max_recipients: d.max_presence_recipients,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl PresenceSettings {
    /// The core's real-time settings with these presence values (the rest at their
    /// defaults).
    pub fn realtime_config(&self) -> chat_core::service::RealtimeConfig {
        chat_core::service::RealtimeConfig {
            presence_offline_grace: Duration::from_millis(self.offline_grace_ms),
            presence_sweep_interval: Duration::from_millis(self.sweep_interval_ms.max(10)),
            max_presence_recipients: self.max_recipients,
            ..Default::default()
        }
    }
}
