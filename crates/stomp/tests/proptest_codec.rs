//! Property tests: encode→decode round trip and chunking invariance.

use bytes::{Bytes, BytesMut};
use chat_stomp::{Command, DecodeError, Decoder, Frame, Headers, Item, Limits, encode, encode_heartbeat};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    prop::sample::select(Command::ALL.to_vec())
}

/// Header text: arbitrary Unicode, biased towards characters needing escapes.
fn text(allow_specials: bool) -> BoxedStrategy<String> {
    let special = if allow_specials {
        prop::sample::select(vec!['\r', '\n', ':', '\\', 'c', 'r', 'é', '€', '😀', '\0']).boxed()
    } else {
        prop::sample::select(vec!['\\', 'c', 'r', 'é', '€', '😀', '\0', ' ']).boxed()
    };
    let any = any::<char>().prop_filter("plain", move |c| allow_specials || !matches!(c, '\r' | '\n' | ':'));
    prop::collection::vec(prop_oneof![special, any], 0..12).prop_map(|v| v.into_iter().collect()).boxed()
}

fn frame() -> impl Strategy<Value = Frame> {
    command().prop_flat_map(|command| {
        // CONNECT/CONNECTED headers are not escaped: they cannot hold CR/LF,
        // and a name cannot hold ':' (a value can).
        let escaped = command.escapes_headers();
        let name = text(escaped)
            .prop_filter("name", move |n| !n.is_empty() && n != "content-length" && (escaped || !n.contains(':')));
        let value = if escaped { text(true) } else { text(false).prop_map(|v| format!("{v}:{v}")).boxed() };
        let headers = prop::collection::vec((name, value), 0..6);
        let body = prop::collection::vec(any::<u8>(), 0..64);
        (headers, body).prop_map(move |(headers, body)| Frame {
            command,
            headers: Headers::from(headers),
            body: Bytes::from(body),
        })
    })
}

fn without_content_length(mut f: Frame) -> Frame {
    f.headers.remove_all("content-length");
    f
}

type Outcome = (Vec<Item>, Option<DecodeError>);

fn decode_chunks<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut dec = Decoder::new(limits);
    let mut items = Vec::new();
    for chunk in chunks {
        if let Err(e) = dec.decode_all(chunk, &mut items) {
            return (items, Some(e));
        }
        assert!(dec.buffer_capacity() <= limits.max_frame_bytes);
    }
    (items, None)
}

/// Splits `bytes` at the given (unsorted, possibly out of range) points.
fn split_at_points(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut prev = 0;
    let mut out = Vec::new();
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_round_trips(frames in prop::collection::vec(frame(), 1..5)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, &mut buf).unwrap();
        }
        let (items, err) = decode_chunks(Limits::default(), [&buf[..]]);
        prop_assert_eq!(err, None);
        let decoded: Vec<Frame> = items
            .into_iter()
            .filter_map(|i| match i { Item::Frame(f) => Some(without_content_length(f)), Item::HeartBeat => None })
            .collect();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn chunking_does_not_change_decoded_frames(
        frames in prop::collection::vec((frame(), 0usize..3), 1..5),
        points in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut buf = BytesMut::new();
        for (f, beats) in &frames {
            encode(f, &mut buf).unwrap();
            for _ in 0..*beats {
                encode_heartbeat(&mut buf);
            }
        }
        let whole = decode_chunks(Limits::default(), [&buf[..]]);
        prop_assert_eq!(&whole.1, &None);
        let chunks = split_at_points(&buf, &points);
        let split = decode_chunks(Limits::default(), chunks.iter().map(Vec::as_slice));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn chunking_does_not_change_outcome_of_arbitrary_bytes(
        parts in prop::collection::vec(prop_oneof![
            Just(b"SEND\n".to_vec()), Just(b"\n".to_vec()), Just(b"\r\n".to_vec()), Just(b"\0".to_vec()),
            Just(b"content-length:3\n".to_vec()), Just(b"a:b\\c\n".to_vec()), Just(b"\\t".to_vec()),
            Just("é€".as_bytes().to_vec()), prop::collection::vec(any::<u8>(), 0..8),
        ], 0..24),
        points in prop::collection::vec(any::<usize>(), 0..12),
        small in any::<bool>(),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let limits = if small {
            Limits { max_frame_bytes: 40, max_headers: 2, max_header_line_bytes: 12, max_body_bytes: 8 }
        } else {
            Limits::default()
        };
        let whole = decode_chunks(limits, [&bytes[..]]);
        let chunks = split_at_points(&bytes, &points);
        prop_assert_eq!(decode_chunks(limits, chunks.iter().map(Vec::as_slice)), whole.clone());
        prop_assert_eq!(decode_chunks(limits, bytes.chunks(1)), whole);
    }
}

fn version() -> impl Strategy<Value = chat_stomp::Version> {
    prop::sample::select(vec![chat_stomp::Version::V1_0, chat_stomp::Version::V1_1, chat_stomp::Version::V1_2])
}

proptest! {
    /// The pre-escaped MESSAGE encoder writes exactly what building the frame with
    /// `server::message` and encoding it writes, and fails exactly when that fails.
    #[test]
    fn message_encoder_matches_the_frame_encoder(
        version in version(),
        destination in text(true),
        id_prefix in text(true),
        subscription in text(true),
        content_type in prop::option::of(text(true)),
        ack in any::<bool>(),
        n in any::<u64>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let fast = chat_stomp::MessageEncoder::new(
            version, &destination, &id_prefix, &subscription, content_type.as_deref(), ack,
        );
        let message_id = format!("{id_prefix}-{n}");
        let frame = chat_stomp::server::message(
            &destination,
            &message_id,
            &subscription,
            content_type.as_deref(),
            Bytes::from(body.clone()),
            ack.then_some(("ack", message_id.as_str())),
        );
        let mut want = BytesMut::new();
        let slow = chat_stomp::encode_for_version(&frame, version, &mut want);
        match fast {
            Ok(enc) => {
                prop_assert!(slow.is_ok(), "the frame encoder refused: {slow:?}");
                let mut got = BytesMut::from(&b"before"[..]);
                enc.encode(n, &body, &mut got);
                prop_assert_eq!(&got[..6], b"before");
                prop_assert_eq!(&got[6..], &want[..]);
            }
            Err(e) => prop_assert!(slow.is_err(), "only the pre-escaped encoder refused: {e}"),
        }
    }
}
