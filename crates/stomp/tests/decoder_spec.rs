//! Decoder tests, one per rule of the STOMP 1.2 spec (named after the rule).

use chat_stomp::{Command, DecodeError, Decoder, Frame, Item, Limits, Version};

/// Decodes `bytes` in one chunk; returns the items and the error, if any.
fn decode(bytes: &[u8]) -> (Vec<Item>, Option<DecodeError>) {
    decode_with(Decoder::default(), bytes)
}

fn decode_with(mut dec: Decoder, bytes: &[u8]) -> (Vec<Item>, Option<DecodeError>) {
    let mut out = Vec::new();
    let err = dec.decode_all(bytes, &mut out).err();
    (out, err)
}

fn frames(items: Vec<Item>) -> Vec<Frame> {
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f),
            Item::HeartBeat => None,
        })
        .collect()
}

/// Decodes a stream that must hold exactly one frame and nothing else.
fn one_frame(bytes: &[u8]) -> Frame {
    let (items, err) = decode(bytes);
    assert_eq!(err, None);
    let mut f = frames(items);
    assert_eq!(f.len(), 1, "expected exactly one frame");
    f.pop().unwrap()
}

fn err_of(bytes: &[u8]) -> DecodeError {
    decode(bytes).1.expect("expected a decode error")
}

fn err_with(limits: Limits, bytes: &[u8]) -> DecodeError {
    decode_with(Decoder::new(limits), bytes).1.expect("expected a decode error")
}

#[test]
fn frame_is_command_eol_headers_blank_line_body_nul() {
    let f = one_frame(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0");
    assert_eq!(f.command, Command::Send);
    assert_eq!(f.header("destination"), Some("/queue/a"));
    assert_eq!(f.header("content-type"), Some("text/plain"));
    assert_eq!(&f.body[..], b"hello queue a");
}

#[test]
fn every_command_is_recognised() {
    for c in Command::ALL {
        let f = one_frame(format!("{c}\n\n\0").as_bytes());
        assert_eq!(f.command, c);
    }
}

#[test]
fn commands_are_case_sensitive_and_unknown_is_error() {
    assert_eq!(err_of(b"send\n\n\0"), DecodeError::UnknownCommand("send".into()));
    assert_eq!(err_of(b"SEND \n\n\0"), DecodeError::UnknownCommand("SEND ".into()));
    assert!(matches!(err_of(b"FOO\n\n\0"), DecodeError::UnknownCommand(_)));
}

#[test]
fn lines_may_end_with_crlf() {
    let f = one_frame(b"SEND\r\ndestination:/q\r\nfoo:bar\r\n\r\nbody\0");
    assert_eq!(f.header("destination"), Some("/q"));
    assert_eq!(f.header("foo"), Some("bar"));
    assert_eq!(&f.body[..], b"body");
}

#[test]
fn bare_carriage_return_is_error() {
    assert_eq!(err_of(b"SEND\ndest\rination:/q\n\n\0"), DecodeError::BareCarriageReturn);
    assert_eq!(err_of(b"\rSEND\n\n\0"), DecodeError::BareCarriageReturn);
}

#[test]
fn header_escapes_are_decoded() {
    let f = one_frame(b"SEND\na\\cb:x\\ny\\rz\\\\w\\c\n\n\0");
    assert_eq!(f.header("a:b"), Some("x\ny\rz\\w:"));
}

#[test]
fn undefined_escape_is_fatal() {
    assert_eq!(err_of(b"SEND\nfoo:a\\tb\n\n\0"), DecodeError::InvalidEscape("\\t".into()));
    assert_eq!(err_of(b"SEND\nfoo:ab\\\n\n\0"), DecodeError::InvalidEscape("\\".into()));
    assert_eq!(err_of(b"SEND\nf\\x:ab\n\n\0"), DecodeError::InvalidEscape("\\x".into()));
}

#[test]
fn connect_and_connected_headers_are_not_unescaped() {
    let f = one_frame(b"CONNECT\npasscode:a\\tb\\nc\\\\:d\naccept-version:1.2\n\n\0");
    assert_eq!(f.header("passcode"), Some("a\\tb\\nc\\\\:d"));
    let f = one_frame(b"CONNECTED\nserver:x\\cy\n\n\0");
    assert_eq!(f.header("server"), Some("x\\cy"));
    // STOMP is not exempted by the spec's wording: its headers are unescaped.
    let f = one_frame(b"STOMP\nlogin:a\\cb\n\n\0");
    assert_eq!(f.header("login"), Some("a:b"));
}

#[test]
fn escapes_follow_negotiated_version() {
    let mut d11 = Decoder::default();
    d11.set_version(Version::V1_1);
    assert_eq!(decode_with(d11, b"SEND\nx:a\\rb\n\n\0").1, Some(DecodeError::InvalidEscape("\\r".into())));
    let mut d10 = Decoder::default();
    d10.set_version(Version::V1_0);
    let (items, err) = decode_with(d10, b"SEND\nx:a\\tb\n\n\0");
    assert_eq!(err, None);
    assert_eq!(frames(items)[0].header("x"), Some("a\\tb"));
}

#[test]
fn repeated_header_first_entry_wins() {
    let f = one_frame(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(f.header("foo"), Some("World"));
    assert_eq!(f.headers.get_all("foo").collect::<Vec<_>>(), ["World", "Hello"]);
}

#[test]
fn repeated_content_length_first_entry_wins() {
    let f = one_frame(b"SEND\ncontent-length:2\ncontent-length:9\n\nab\0");
    assert_eq!(&f.body[..], b"ab");
}

#[test]
fn header_order_is_preserved_and_values_not_trimmed() {
    let f = one_frame(b"SEND\nb: 1 \na:2\nc:x:y\n\n\0");
    let h: Vec<_> = f.headers.iter().collect();
    assert_eq!(h, [("b", " 1 "), ("a", "2"), ("c", "x:y")]);
}

#[test]
fn header_without_colon_or_name_is_error() {
    assert_eq!(err_of(b"SEND\nnocolon\n\n\0"), DecodeError::MissingColon);
    assert_eq!(err_of(b"SEND\n:value\n\n\0"), DecodeError::EmptyHeaderName);
}

#[test]
fn headers_are_utf8() {
    let f = one_frame("SEND\nnäme:välue€\n\n\0".as_bytes());
    assert_eq!(f.header("näme"), Some("välue€"));
    assert_eq!(err_of(b"SEND\nname:\xff\xfe\n\n\0"), DecodeError::InvalidUtf8);
    assert_eq!(err_of(b"SEND\nname:\xe2\x82\n\n\0"), DecodeError::InvalidUtf8);
}

#[test]
fn content_length_counts_octets_not_characters() {
    let body = "é€😀".as_bytes(); // 2 + 3 + 4 = 9 octets, 3 chars
    let mut frame = b"SEND\ncontent-length:9\n\n".to_vec();
    frame.extend_from_slice(body);
    frame.push(0);
    assert_eq!(&one_frame(&frame).body[..], body);
}

#[test]
fn body_may_contain_nul_when_content_length_given() {
    let f = one_frame(b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&f.body[..], b"a\0b\0c");
}

#[test]
fn body_longer_than_content_length_is_missing_nul_error() {
    assert_eq!(err_of(b"SEND\ncontent-length:3\n\nabcdef\0"), DecodeError::MissingNul);
}

#[test]
fn body_shorter_than_content_length_is_never_silently_truncated() {
    // The NUL and the next frame are consumed as body octets; then no NUL.
    assert_eq!(err_of(b"SEND\ncontent-length:5\n\nab\0SEND\n\n\0"), DecodeError::MissingNul);
    // Not enough data yet: the decoder waits instead of guessing.
    let (items, err) = decode(b"SEND\ncontent-length:5\n\nab\0");
    assert!(items.is_empty() && err.is_none());
}

#[test]
fn without_content_length_body_ends_at_first_nul() {
    let (items, err) = decode(b"SEND\n\nab\0cd\n");
    assert_eq!(err, Some(DecodeError::UnknownCommand("cd".into())));
    assert_eq!(&frames(items)[0].body[..], b"ab");
    let (items, err) = decode(b"SEND\n\nab\0\nSEND\n\n\0");
    assert_eq!(err, None);
    assert_eq!(frames(items).len(), 2);
}

#[test]
fn invalid_content_length_is_error() {
    for v in ["-1", "abc", "", "1.5", " 3", "+3"] {
        let bytes = format!("SEND\ncontent-length:{v}\n\n\0");
        assert!(matches!(err_of(bytes.as_bytes()), DecodeError::InvalidContentLength(_)), "{v:?}");
    }
}

#[test]
fn eols_after_nul_are_allowed() {
    let (items, err) = decode(b"SEND\n\n\0\n\r\n\nSEND\n\n\0\r\n");
    assert_eq!(err, None);
    let kinds: Vec<bool> = items.iter().map(|i| matches!(i, Item::Frame(_))).collect();
    assert_eq!(kinds, [true, false, false, false, true, false]);
}

#[test]
fn heart_beat_eols_between_frames_are_reported() {
    let (items, err) = decode(b"\n\r\n\n");
    assert_eq!(err, None);
    assert_eq!(items, [Item::HeartBeat, Item::HeartBeat, Item::HeartBeat]);
}

#[test]
fn many_frames_in_one_chunk() {
    let mut stream = Vec::new();
    for i in 0..100 {
        stream.extend_from_slice(format!("SEND\ndestination:/q/{i}\ncontent-length:1\n\n{}\0\n", i % 10).as_bytes());
    }
    let (items, err) = decode(&stream);
    assert_eq!(err, None);
    let f = frames(items);
    assert_eq!(f.len(), 100);
    assert_eq!(f[42].header("destination"), Some("/q/42"));
    assert_eq!(&f[42].body[..], b"2");
}

#[test]
fn split_at_every_byte_position_including_inside_multibyte_chars() {
    let stream = "\nSEND\r\ndéstination:/q/€\nx:a\\cb\ncontent-length:6\n\n€\0é\0\r\nMESSAGE\nk:ü\n\nbødy\0".as_bytes();
    let (expected, err) = decode(stream);
    assert_eq!(err, None);
    assert_eq!(frames(expected.clone()).len(), 2);
    for i in 0..=stream.len() {
        for j in i..=stream.len() {
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            for part in [&stream[..i], &stream[i..j], &stream[j..]] {
                dec.decode_all(part, &mut got).unwrap();
            }
            assert_eq!(got, expected, "split at {i},{j}");
            assert!(dec.is_idle());
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    let stream = b"SUBSCRIBE\nid:0\ndestination:/a\n\n\0SEND\ncontent-length:2\n\n\0\0\0";
    let (expected, _) = decode(stream);
    let mut dec = Decoder::default();
    let mut got = Vec::new();
    for b in stream.chunks(1) {
        dec.decode_all(b, &mut got).unwrap();
    }
    assert_eq!(got, expected);
}

#[test]
fn huge_claimed_content_length_is_rejected_without_allocation() {
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    let err = dec.decode_all(b"SEND\ndestination:/q\ncontent-length:2000000000\n\nabc", &mut out);
    assert_eq!(err, Err(DecodeError::BodyTooLarge { limit: 64 * 1024 }));
    assert_eq!(dec.buffer_capacity(), 0);
    // Also when the header arrives split, so the header line is buffered.
    let mut dec = Decoder::default();
    dec.decode_all(b"SEND\ncontent-le", &mut out).unwrap();
    let err = dec.decode_all(b"ngth:99999999999999999999999999\n\nabc", &mut out);
    assert_eq!(err, Err(DecodeError::BodyTooLarge { limit: 64 * 1024 }));
    assert!(dec.buffer_capacity() <= 64);
}

#[test]
fn large_legal_content_length_grows_buffer_only_as_data_arrives() {
    let limits = Limits { max_body_bytes: 1 << 20, max_frame_bytes: 2 << 20, ..Limits::default() };
    let mut dec = Decoder::new(limits);
    let mut out = Vec::new();
    dec.decode_all(b"SEND\ncontent-length:1000000\n\n", &mut out).unwrap();
    assert_eq!(dec.buffer_capacity(), 0);
    dec.decode_all(&[7u8; 100], &mut out).unwrap();
    assert!(dec.buffer_capacity() <= 128, "capacity {}", dec.buffer_capacity());
    let mut fed = 100;
    while fed < 1_000_000 {
        let n = (1_000_000 - fed).min(4096);
        dec.decode_all(&vec![7u8; n], &mut out).unwrap();
        fed += n;
        assert!(dec.buffer_capacity() <= (2 * fed).clamp(64, 1_000_000));
    }
    dec.decode_all(b"\0", &mut out).unwrap();
    assert_eq!(frames(out)[0].body.len(), 1_000_000);
    assert_eq!(dec.buffer_capacity(), 0, "idle decoder must release the large buffer");
}

#[test]
fn idle_decoder_holds_no_large_allocation() {
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    let body = vec![b'x'; 50_000];
    let mut stream = b"SEND\ndestination:/q\n\n".to_vec();
    stream.extend_from_slice(&body);
    stream.push(0);
    for chunk in stream.chunks(1000) {
        dec.decode_all(chunk, &mut out).unwrap();
        assert!(dec.buffer_capacity() <= Limits::default().max_frame_bytes);
    }
    assert_eq!(frames(out)[0].body.len(), 50_000);
    assert!(dec.is_idle());
    assert!(dec.buffer_capacity() <= 1024);
    // A body filling (almost) all of the buffer is handed over without a copy;
    // the decoder then keeps nothing that would pin it.
    let mut out = Vec::new();
    dec.decode_all(b"SEND\ncontent-length:1000\n\n", &mut out).unwrap();
    dec.decode_all(&[b'y'; 999], &mut out).unwrap();
    dec.decode_all(b"y\0", &mut out).unwrap();
    assert_eq!(frames(out)[0].body.len(), 1000);
    assert_eq!(dec.buffer_capacity(), 0);
}

#[test]
fn whole_frame_in_one_chunk_needs_no_buffer() {
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    dec.decode_all(b"SEND\ndestination:/q\ncontent-length:3\n\nabc\0SEND\n\nxyz\0", &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(dec.buffer_capacity(), 0);
}

#[test]
fn header_line_limit() {
    let limits = Limits { max_header_line_bytes: 10, ..Limits::default() };
    assert_eq!(err_with(limits, b"SEND\nabcde:123456\n\n\0"), DecodeError::HeaderLineTooLong { limit: 10 });
    // Exactly at the limit is fine, with LF or CRLF.
    let (_, err) = decode_with(Decoder::new(limits), b"SEND\nabcde:1234\r\n\n\0");
    assert_eq!(err, None);
    // Rejected before the line ends: an endless line is not buffered.
    let mut dec = Decoder::new(limits);
    let err = dec.decode_all(&[b'A'; 1000], &mut Vec::new());
    assert_eq!(err, Err(DecodeError::HeaderLineTooLong { limit: 10 }));
    assert!(dec.buffer_capacity() <= 11);
}

#[test]
fn header_count_limit() {
    let limits = Limits { max_headers: 2, ..Limits::default() };
    assert_eq!(decode_with(Decoder::new(limits), b"SEND\na:1\nb:2\n\n\0").1, None);
    assert_eq!(err_with(limits, b"SEND\na:1\nb:2\nc:3\n\n\0"), DecodeError::TooManyHeaders { limit: 2 });
}

#[test]
fn body_limit_without_content_length() {
    let limits = Limits { max_body_bytes: 4, ..Limits::default() };
    assert_eq!(decode_with(Decoder::new(limits), b"SEND\n\nabcd\0").1, None);
    assert_eq!(err_with(limits, b"SEND\n\nabcde"), DecodeError::BodyTooLarge { limit: 4 });
    assert_eq!(err_with(limits, b"SEND\ncontent-length:5\n\n"), DecodeError::BodyTooLarge { limit: 4 });
}

#[test]
fn frame_limit() {
    let limits = Limits { max_frame_bytes: 20, ..Limits::default() };
    // 5 + 9 + 1 + 4 + 1 = 20 octets: accepted.
    assert_eq!(decode_with(Decoder::new(limits), b"SEND\nab:12345\n\nabcd\0").1, None);
    assert_eq!(err_with(limits, b"SEND\nab:12345\n\nabcde\0"), DecodeError::FrameTooLarge { limit: 20 });
    assert_eq!(err_with(limits, b"SEND\nab:12345\ncontent-length:9\n\n"), DecodeError::FrameTooLarge { limit: 20 });
    // Heart-beats between frames do not count towards the frame.
    let (items, err) = decode_with(Decoder::new(limits), &[b'\n'; 100]);
    assert_eq!((items.len(), err), (100, None));
}

#[test]
fn errors_are_fatal_and_sticky() {
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    let err = dec.decode_all(b"SEND\nx:\\t\n\n\0SEND\n\n\0", &mut out).unwrap_err();
    assert!(out.is_empty());
    assert!(dec.is_failed());
    assert_eq!(dec.decode_all(b"SEND\n\n\0", &mut out), Err(err));
    assert_eq!(dec.buffer_capacity(), 0);
    dec.reset();
    dec.decode_all(b"SEND\n\n\0", &mut out).unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn frames_before_an_error_in_the_same_chunk_are_returned() {
    let (items, err) = decode(b"SEND\n\n\0BOGUS\n\n\0");
    assert_eq!(frames(items).len(), 1);
    assert!(matches!(err, Some(DecodeError::UnknownCommand(_))));
}

#[test]
fn error_messages_are_single_line() {
    let errs = [
        err_of(b"SEND\nx:\\t\n\n\0"),
        err_of(b"NOPE\n\n\0"),
        err_of(b"SEND\ncontent-length:1\n\nab\0"),
        DecodeError::FrameTooLarge { limit: 1 },
    ];
    for e in errs {
        let m = e.to_string();
        assert!(!m.is_empty() && !m.contains('\n') && !m.contains('\r'), "{m:?}");
    }
}
