//! Fuzz target `message_encoder`: arbitrary subscription headers, message numbers and bodies.
//! Invariants checked:
//! 1. no panic;
//! 2. `MessageEncoder` refuses exactly the headers the frame encoder refuses;
//! 3. when it accepts, its bytes equal `encode_for_version(server::message(..))`, and the
//!    decoder reads back one MESSAGE with the same headers and body.
#![no_main]

use bytes::{Bytes, BytesMut};
use chat_stomp::{Decoder, Item, Limits, MessageEncoder, Version, encode_for_version, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let version = [Version::V1_0, Version::V1_1, Version::V1_2][usize::from(data[0] % 3)];
    let ack = data[0] & 4 != 0;
    let with_type = data[0] & 8 != 0;
    let n = u64::from_le_bytes(data[1..9].try_into().unwrap());
    // Fields separated by 0xff (never valid UTF-8, so it cannot appear inside a field).
    let mut fields = data[9..].split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let destination = fields.next().unwrap_or_default();
    let prefix = fields.next().unwrap_or_default();
    let subscription = fields.next().unwrap_or_default();
    let content_type = fields.next().unwrap_or_default();
    let body: Vec<u8> = fields.next().unwrap_or_default().into_owned().into_bytes();
    let content_type = with_type.then_some(&*content_type);

    let message_id = format!("{prefix}-{n}");
    let frame = server::message(
        &destination,
        &message_id,
        &subscription,
        content_type,
        Bytes::from(body.clone()),
        ack.then_some(("ack", message_id.as_str())),
    );
    let mut want = BytesMut::new();
    let slow = encode_for_version(&frame, version, &mut want);
    match MessageEncoder::new(version, &destination, &prefix, &subscription, content_type, ack) {
        Err(_) => assert!(slow.is_err(), "only the pre-escaped encoder refused"),
        Ok(enc) => {
            assert!(slow.is_ok(), "only the frame encoder refused");
            let mut got = BytesMut::new();
            enc.encode(n, &body, &mut got);
            assert_eq!(got, want);
            let mut dec = Decoder::new(Limits {
                max_frame_bytes: 1 << 20,
                max_header_line_bytes: 1 << 20,
                max_body_bytes: 1 << 20,
                ..Limits::default()
            });
            dec.set_version(version);
            let mut rest = &got[..];
            match dec.decode_next(&mut rest) {
                Ok(Some(Item::Frame(f))) => {
                    assert_eq!(f.body, Bytes::from(body));
                    assert_eq!(f.headers.get("message-id"), Some(message_id.as_str()));
                    assert_eq!(f.headers.get("subscription"), Some(&*subscription));
                }
                other => panic!("decoding the encoded MESSAGE: {other:?}"),
            }
        }
    }
});
