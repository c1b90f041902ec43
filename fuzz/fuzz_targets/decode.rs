//! Fuzz target `decode`: arbitrary bytes, arbitrary chunking, varied limits and
//! versions. Invariants checked:
//! 1. no panic;
//! 2. the decoder's buffer capacity never exceeds `max_frame_bytes`;
//! 3. decoding in one chunk and in arbitrary chunks gives identical items and
//!    the identical error (if any), and every chunk is fully consumed;
//! 4. every decoded frame re-encodes successfully, and decoding the encoding
//!    gives back the same frame (ignoring `content-length` headers).
#![no_main]

use bytes::BytesMut;
use chat_stomp::{DecodeError, Decoder, Frame, Item, Limits, Version, encode_for_version};
use libfuzzer_sys::fuzz_target;

fn run<'a>(
    limits: Limits,
    version: Version,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Item>, Option<DecodeError>) {
    let mut dec = Decoder::new(limits);
    dec.set_version(version);
    let mut items = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        loop {
            let r = dec.decode_next(&mut rest);
            assert!(dec.buffer_capacity() <= limits.max_frame_bytes, "buffer exceeds frame limit");
            match r {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(dec.decode_next(&mut &b"\n"[..]), Err(e.clone()), "decoder not poisoned");
                    return (items, Some(e));
                }
            }
        }
        assert!(rest.is_empty(), "chunk not fully consumed");
    }
    (items, None)
}

fn normalized(frame: &Frame) -> Frame {
    let mut f = frame.clone();
    f.headers.remove_all("content-length");
    f
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (ctl, data) = data.split_at(3);
    let version = match ctl[0] % 3 {
        0 => Version::V1_2,
        1 => Version::V1_1,
        _ => Version::V1_0,
    };
    let limits = if ctl[0] & 0x80 != 0 {
        let s = usize::from(ctl[1]);
        Limits {
            max_frame_bytes: 16 + s * 2,
            max_headers: s % 5,
            max_header_line_bytes: 1 + s % 40,
            max_body_bytes: s % 64,
        }
    } else {
        Limits::default()
    };
    // Chunk sizes from a small xorshift PRNG seeded by ctl[2].
    let mut state = u32::from(ctl[2]) | 0x100;
    let max_chunk = usize::from(ctl[2] % 13) + 1;
    let mut chunks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % max_chunk + 1).min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }

    let whole = run(limits, version, [data]);
    let split = run(limits, version, chunks.iter().copied());
    assert_eq!(whole, split, "chunking changed the result");
    let bytewise = run(limits, version, data.chunks(1));
    assert_eq!(whole, bytewise, "byte-at-a-time changed the result");

    let big = Limits {
        max_frame_bytes: usize::MAX,
        max_headers: usize::MAX,
        max_header_line_bytes: usize::MAX,
        max_body_bytes: usize::MAX,
    };
    for item in &whole.0 {
        let Item::Frame(frame) = item else { continue };
        let mut buf = BytesMut::new();
        encode_for_version(frame, version, &mut buf).expect("decoded frame must re-encode");
        let (items, err) = run(big, version, [&buf[..]]);
        assert_eq!(err, None, "re-encoded frame failed to decode");
        assert_eq!(items.len(), 1);
        let Item::Frame(again) = &items[0] else { panic!("expected a frame") };
        assert_eq!(normalized(again), normalized(frame), "round trip changed the frame");
    }
});
