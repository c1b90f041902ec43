//! `heart-beat` header parsing and negotiation (spec "Heart-beating").

use std::fmt;
use std::time::Duration;

/// A `heart-beat` header value `x,y`, in milliseconds, from the point of view of
/// the side that sends it (spec "Heart-beating"):
/// * `send_ms` (`cx` / `sx`): the smallest interval at which the sender can
///   guarantee to send heart-beats; 0 = it cannot send any.
/// * `receive_ms` (`cy` / `sy`): the interval at which the sender would like to
///   receive heart-beats; 0 = it does not want any.
///
/// The default (header absent) is `0,0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HeartBeat {
    /// `cx`/`sx`: can send every this many ms (0 = never).
    pub send_ms: u32,
    /// `cy`/`sy`: wants to receive every this many ms (0 = never).
    pub receive_ms: u32,
}

/// Invalid `heart-beat` header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid heart-beat header '{0}': expected two non-negative integers 'x,y' (milliseconds)")]
pub struct HeartBeatError(pub String);

impl HeartBeat {
    /// `0,0`: no heart-beating in either direction.
    pub const NONE: HeartBeat = HeartBeat { send_ms: 0, receive_ms: 0 };

    /// Parses `"x,y"`: exactly two comma-separated decimal integers (ASCII digits
    /// only, each fitting `u32`); spaces around each number are tolerated.
    ///
    /// # Errors
    /// [`HeartBeatError`] for anything else (negative, signed, non-numeric,
    /// empty, missing or extra fields, overflow).
    pub fn parse(value: &str) -> Result<HeartBeat, HeartBeatError> {
        let err = || HeartBeatError(crate::version::truncate(value, 32));
        let (x, y) = value.split_once(',').ok_or_else(err)?;
        let num = |s: &str| {
            let s = s.trim_matches(' ');
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            s.parse::<u32>().map_err(|_| err())
        };
        Ok(HeartBeat { send_ms: num(x)?, receive_ms: num(y)? })
    }
}

impl fmt::Display for HeartBeat {
    /// Header value form `send_ms,receive_ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.send_ms, self.receive_ms)
    }
}

/// The server's heart-beat policy.
///
/// `send_ms` / `receive_ms` are the server's `sx` / `sy` (0 disables that
/// direction). Non-zero values are raised to `min_send_ms` / `min_receive_ms`, so
/// neither configuration mistakes nor clients can force a tight loop: the
/// negotiated intervals are `max(...)` of the server's values and so never
/// below the minimums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartBeatConfig {
    /// `sx`: the server can send heart-beats every this many ms (0 = never). Default 10 000.
    pub send_ms: u32,
    /// `sy`: the server wants heart-beats every this many ms (0 = never). Default 10 000.
    pub receive_ms: u32,
    /// Floor applied to a non-zero `send_ms`. Default 1 000.
    pub min_send_ms: u32,
    /// Floor applied to a non-zero `receive_ms`. Default 1 000.
    pub min_receive_ms: u32,
    /// Receive timeout = receive interval × this factor (spec: the receiver
    /// "SHOULD ... take into account an error margin"). Default 2 (values below 1
    /// are treated as 1).
    pub timeout_factor: u32,
}

impl Default for HeartBeatConfig {
    fn default() -> Self {
        Self { send_ms: 10_000, receive_ms: 10_000, min_send_ms: 1_000, min_receive_ms: 1_000, timeout_factor: 2 }
    }
}

/// Result of [`HeartBeatConfig::negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedHeartBeat {
    /// The value to put in the CONNECTED frame's `heart-beat` header (the
    /// server's clamped `sx,sy`; the client derives the same intervals from it).
    pub reply: HeartBeat,
    /// How often the server must send something (a frame or an EOL) to the
    /// client; `None` = no server-to-client heart-beating.
    pub send_interval: Option<Duration>,
    /// How often the client promised to send something; `None` = the client
    /// does not heart-beat.
    pub receive_interval: Option<Duration>,
    /// Close the connection when nothing was received for this long
    /// (`receive_interval × timeout_factor`); `None` when not heart-beating.
    pub receive_timeout: Option<Duration>,
}

impl HeartBeatConfig {
    /// The server's `sx,sy` after applying the minimums.
    pub fn server_heart_beat(&self) -> HeartBeat {
        let clamp = |v: u32, min: u32| if v == 0 { 0 } else { v.max(min).max(1) };
        HeartBeat {
            send_ms: clamp(self.send_ms, self.min_send_ms),
            receive_ms: clamp(self.receive_ms, self.min_receive_ms),
        }
    }

    /// Negotiates with the client's CONNECT `heart-beat` (`cx,cy`; pass
    /// [`HeartBeat::NONE`] when the header is absent), per spec "Heart-beating":
    /// * client→server: none if `cx == 0` or `sy == 0`, else every `max(cx, sy)` ms;
    /// * server→client: none if `sx == 0` or `cy == 0`, else every `max(sx, cy)` ms.
    pub fn negotiate(&self, client: HeartBeat) -> NegotiatedHeartBeat {
        let server = self.server_heart_beat();
        let interval = |a: u32, b: u32| (a != 0 && b != 0).then(|| Duration::from_millis(u64::from(a.max(b))));
        let send_interval = interval(server.send_ms, client.receive_ms);
        let receive_interval = interval(client.send_ms, server.receive_ms);
        let receive_timeout = receive_interval.map(|d| d.saturating_mul(self.timeout_factor.max(1)));
        NegotiatedHeartBeat { reply: server, send_interval, receive_interval, receive_timeout }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn hb(send_ms: u32, receive_ms: u32) -> HeartBeat {
        HeartBeat { send_ms, receive_ms }
    }

    #[test]
    fn heart_beat_header_is_two_comma_separated_integers() {
        assert_eq!(HeartBeat::parse("0,0"), Ok(HeartBeat::NONE));
        assert_eq!(HeartBeat::parse("10000,20000"), Ok(hb(10_000, 20_000)));
        assert_eq!(HeartBeat::parse("100, 200"), Ok(hb(100, 200)));
    }

    #[test]
    fn invalid_heart_beat_is_rejected() {
        for bad in ["", "1", "1,", ",1", "-1,0", "0,-5", "+1,0", "a,b", "1,2,3", "1.5,2", "99999999999,0"] {
            assert!(HeartBeat::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn heart_beat_display_is_header_form() {
        assert_eq!(hb(5, 7).to_string(), "5,7");
    }

    #[test]
    fn no_heart_beating_when_either_side_is_zero() {
        let cfg = HeartBeatConfig { send_ms: 5_000, receive_ms: 5_000, ..Default::default() };
        let n = cfg.negotiate(HeartBeat::NONE);
        assert_eq!((n.send_interval, n.receive_interval, n.receive_timeout), (None, None, None));
        let off = HeartBeatConfig { send_ms: 0, receive_ms: 0, ..Default::default() };
        let n = off.negotiate(hb(1_000, 1_000));
        assert_eq!((n.send_interval, n.receive_interval), (None, None));
        assert_eq!(n.reply, HeartBeat::NONE);
    }

    #[test]
    fn negotiated_interval_is_max_of_both_sides() {
        let cfg = HeartBeatConfig { send_ms: 4_000, receive_ms: 6_000, ..Default::default() };
        let n = cfg.negotiate(hb(10_000, 1_000));
        // client->server: max(cx=10000, sy=6000); server->client: max(sx=4000, cy=1000)
        assert_eq!(n.receive_interval, Some(Duration::from_millis(10_000)));
        assert_eq!(n.send_interval, Some(Duration::from_millis(4_000)));
        assert_eq!(n.receive_timeout, Some(Duration::from_millis(20_000)));
        assert_eq!(n.reply, hb(4_000, 6_000));
    }

    #[test]
    fn client_asking_for_1ms_cannot_make_server_loop() {
        let cfg =
            HeartBeatConfig { send_ms: 1, receive_ms: 1, min_send_ms: 500, min_receive_ms: 800, timeout_factor: 3 };
        let n = cfg.negotiate(hb(1, 1));
        assert_eq!(n.send_interval, Some(Duration::from_millis(500)));
        assert_eq!(n.receive_interval, Some(Duration::from_millis(800)));
        assert_eq!(n.receive_timeout, Some(Duration::from_millis(2_400)));
        assert_eq!(n.reply, hb(500, 800));
    }
}
