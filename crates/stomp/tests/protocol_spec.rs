//! Encoder and client/server frame tests, named after the spec rule they check.

use bytes::{Bytes, BytesMut};
use chat_stomp::encoder::encode_to_bytes;
use chat_stomp::{
    AckMode, ClientFrame, ClientFrameError, Command, Decoder, EncodeError, Frame, HeartBeat, Item, ParseOptions,
    Version, encode, encode_for_version, encode_heartbeat, server,
};

fn parse(bytes: &[u8]) -> Result<ClientFrame, ClientFrameError> {
    let mut out = Vec::new();
    Decoder::default().decode_all(bytes, &mut out).unwrap();
    match out.pop() {
        Some(Item::Frame(f)) => ClientFrame::from_frame(f),
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn enc(frame: &Frame) -> Vec<u8> {
    encode_to_bytes(frame).unwrap().to_vec()
}

#[test]
fn encoder_escapes_header_names_and_values() {
    let f = Frame::new(Command::Message).with_header("a:b", "x\ny\rz\\w:");
    assert_eq!(enc(&f), b"MESSAGE\na\\cb:x\\ny\\rz\\\\w\\c\ncontent-length:0\n\n\0");
}

#[test]
fn encoder_does_not_escape_connect_and_connected() {
    let f = Frame::new(Command::Connected).with_header("server", "a:b\\c");
    assert_eq!(enc(&f), b"CONNECTED\nserver:a:b\\c\n\n\0");
    let f = Frame::new(Command::Connect).with_header("passcode", "p:w");
    assert_eq!(enc(&f), b"CONNECT\npasscode:p:w\n\n\0");
}

#[test]
fn unencodable_connected_header_fails_without_writing() {
    let mut dst = BytesMut::from(&b"prefix"[..]);
    let f = Frame::new(Command::Connected).with_header("session", "a\nb");
    assert!(matches!(encode(&f, &mut dst), Err(EncodeError::UnencodableHeader { octet: b'\n', .. })));
    let f = Frame::new(Command::Connected).with_header("se:ssion", "ab");
    assert!(matches!(encode(&f, &mut dst), Err(EncodeError::UnencodableHeader { octet: b':', .. })));
    let f = Frame::new(Command::Message).with_header("", "x");
    assert_eq!(encode(&f, &mut dst), Err(EncodeError::EmptyHeaderName));
    assert_eq!(&dst[..], b"prefix");
}

#[test]
fn encoder_escaping_follows_version() {
    let f = Frame::new(Command::Receipt).with_header("receipt-id", "a\rb");
    let mut dst = BytesMut::new();
    assert!(encode_for_version(&f, Version::V1_1, &mut dst).is_err());
    let f = Frame::new(Command::Receipt).with_header("receipt-id", "a:b\\");
    encode_for_version(&f, Version::V1_0, &mut dst).unwrap();
    assert_eq!(&dst[..], b"RECEIPT\nreceipt-id:a:b\\\n\n\0");
}

#[test]
fn encoder_always_writes_content_length_for_bodies() {
    let f = server::message("/q", "m1", "s1", None, Bytes::from_static(b"a\0b"), []);
    assert_eq!(enc(&f), b"MESSAGE\ndestination:/q\nmessage-id:m1\nsubscription:s1\ncontent-length:3\n\na\0b\0");
    let e = server::error("boom", None, Bytes::new());
    assert_eq!(enc(&e), b"ERROR\nmessage:boom\ncontent-length:0\n\n\0");
    // A stale content-length header is replaced by the real one.
    let f = Frame::new(Command::Send).with_header("content-length", "99").with_body("é");
    assert_eq!(enc(&f), "SEND\ncontent-length:2\n\né\0".as_bytes());
    // Frames that carry no body get no content-length.
    assert_eq!(enc(&server::receipt("7")), b"RECEIPT\nreceipt-id:7\n\n\0");
}

#[test]
fn several_frames_and_heart_beats_append_to_one_buffer() {
    let mut dst = BytesMut::new();
    for i in 0..3 {
        let f = server::message("/q", &i.to_string(), "s", Some("text/plain"), format!("m{i}"), []);
        encode(&f, &mut dst).unwrap();
    }
    encode_heartbeat(&mut dst);
    let mut out = Vec::new();
    Decoder::default().decode_all(&dst, &mut out).unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[3], Item::HeartBeat);
    let Item::Frame(f) = &out[2] else { panic!() };
    assert_eq!((f.header("message-id"), &f.body[..]), (Some("2"), &b"m2"[..]));
}

#[test]
fn heart_beat_is_a_single_eol() {
    let mut dst = BytesMut::new();
    encode_heartbeat(&mut dst);
    assert_eq!(&dst[..], b"\n");
}

#[test]
fn connect_requires_accept_version_and_host_for_1_2() {
    let ClientFrame::Connect(c) =
        parse(b"CONNECT\naccept-version:1.1,1.2\nhost:chat\nlogin:u\npasscode:p\nheart-beat:100,200\n\n\0").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.negotiate_version(), Ok(Version::V1_2));
    assert_eq!(c.host.as_deref(), Some("chat"));
    assert_eq!((c.login.as_deref(), c.passcode.as_deref()), (Some("u"), Some("p")));
    assert_eq!(c.heart_beat, HeartBeat { send_ms: 100, receive_ms: 200 });
    assert!(!c.stomp_command);
    let missing_host = parse(b"STOMP\naccept-version:1.2\n\n\0");
    assert_eq!(missing_host, Err(ClientFrameError::MissingHeader { command: Command::Stomp, header: "host" }));
}

#[test]
fn host_requirement_can_be_relaxed_for_lenient_clients() {
    let mut out = Vec::new();
    Decoder::default().decode_all(b"STOMP\naccept-version:1.2\nauthorization:Bearer t\n\n\0", &mut out).unwrap();
    let Some(Item::Frame(f)) = out.pop() else { panic!() };
    let r = ClientFrame::from_frame_with(f, &ParseOptions { require_host: false, ..ParseOptions::default() }).unwrap();
    let ClientFrame::Connect(c) = &r else { panic!() };
    assert!(c.stomp_command && c.host.is_none());
    assert_eq!(c.authorization.as_deref(), Some("Bearer t"));
    assert_eq!(r.command(), Command::Stomp);
}

#[test]
fn ack_uses_message_id_before_1_2() {
    let mut out = Vec::new();
    Decoder::default().decode_all(b"ACK\nsubscription:s\nmessage-id:m7\n\n\0NACK\n\n\0", &mut out).unwrap();
    let opts = ParseOptions { version: Version::V1_1, ..ParseOptions::default() };
    let [Item::Frame(ack), Item::Frame(nack)] = <[Item; 2]>::try_from(out).unwrap() else { panic!() };
    let ClientFrame::Ack(a) = ClientFrame::from_frame_with(ack.clone(), &opts).unwrap() else { panic!() };
    assert_eq!(a.id, "m7");
    assert_eq!(
        ClientFrame::from_frame_with(nack, &opts),
        Err(ClientFrameError::MissingHeader { command: Command::Nack, header: "message-id" })
    );
    assert_eq!(
        ClientFrame::from_frame(ack),
        Err(ClientFrameError::MissingHeader { command: Command::Ack, header: "id" })
    );
}

#[test]
fn missing_accept_version_means_stomp_1_0() {
    let ClientFrame::Connect(c) = parse(b"CONNECT\nlogin:u\n\n\0").unwrap() else { panic!() };
    assert_eq!(c.negotiate_version(), Ok(Version::V1_0));
    assert_eq!(c.heart_beat, HeartBeat::NONE);
}

#[test]
fn no_common_version_is_an_error() {
    let ClientFrame::Connect(c) = parse(b"CONNECT\naccept-version:2.0\nhost:h\n\n\0").unwrap() else { panic!() };
    assert!(c.negotiate_version().is_err());
}

#[test]
fn invalid_connect_heart_beat_is_rejected() {
    let r = parse(b"CONNECT\naccept-version:1.2\nhost:h\nheart-beat:-1,5\n\n\0");
    assert!(matches!(r, Err(ClientFrameError::InvalidHeartBeat(_))));
}

#[test]
fn required_headers_per_frames_and_headers_table() {
    let cases: [(&[u8], Command, &str); 9] = [
        (b"SEND\n\n\0", Command::Send, "destination"),
        (b"SUBSCRIBE\nid:1\n\n\0", Command::Subscribe, "destination"),
        (b"SUBSCRIBE\ndestination:/q\n\n\0", Command::Subscribe, "id"),
        (b"UNSUBSCRIBE\n\n\0", Command::Unsubscribe, "id"),
        (b"ACK\ntransaction:t\n\n\0", Command::Ack, "id"),
        (b"NACK\n\n\0", Command::Nack, "id"),
        (b"BEGIN\n\n\0", Command::Begin, "transaction"),
        (b"COMMIT\n\n\0", Command::Commit, "transaction"),
        (b"ABORT\n\n\0", Command::Abort, "transaction"),
    ];
    for (bytes, command, header) in cases {
        assert_eq!(parse(bytes), Err(ClientFrameError::MissingHeader { command, header }));
    }
    assert_eq!(
        parse(b"SEND\ndestination:\n\n\0"),
        Err(ClientFrameError::EmptyHeader { command: Command::Send, header: "destination" })
    );
}

#[test]
fn frames_with_all_required_headers_parse() {
    let ok: [&[u8]; 8] = [
        b"UNSUBSCRIBE\nid:1\nreceipt:r\n\n\0",
        b"ACK\nid:1\ntransaction:t\n\n\0",
        b"NACK\nid:1\n\n\0",
        b"BEGIN\ntransaction:t\n\n\0",
        b"COMMIT\ntransaction:t\n\n\0",
        b"ABORT\ntransaction:t\n\n\0",
        b"DISCONNECT\nreceipt:77\n\n\0",
        b"DISCONNECT\n\n\0",
    ];
    for bytes in ok {
        parse(bytes).unwrap();
    }
    assert_eq!(parse(b"DISCONNECT\nreceipt:77\n\n\0").unwrap().receipt(), Some("77"));
    let ClientFrame::Ack(a) = parse(b"ACK\nid:9\ntransaction:t\n\n\0").unwrap() else { panic!() };
    assert_eq!((a.id.as_str(), a.transaction.as_deref()), ("9", Some("t")));
}

#[test]
fn send_exposes_fields_body_and_user_headers() {
    let r = parse(
        b"SEND\ndestination:/q\ntransaction:t\nreceipt:r\ncontent-type:text/plain\ncontent-length:2\nx-a:1\n\nhi\0",
    );
    let ClientFrame::Send(s) = r.unwrap() else { panic!() };
    assert_eq!(s.destination, "/q");
    assert_eq!(s.transaction.as_deref(), Some("t"));
    assert_eq!(s.receipt.as_deref(), Some("r"));
    assert_eq!(s.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&s.body[..], b"hi");
    assert_eq!(s.user_headers().collect::<Vec<_>>(), [("x-a", "1")]);
}

#[test]
fn subscribe_ack_modes() {
    for (v, m) in
        [("auto", AckMode::Auto), ("client", AckMode::Client), ("client-individual", AckMode::ClientIndividual)]
    {
        let ClientFrame::Subscribe(s) =
            parse(format!("SUBSCRIBE\nid:0\ndestination:/q\nack:{v}\n\n\0").as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.ack, m);
        assert_eq!(m.as_str(), v);
    }
    let ClientFrame::Subscribe(s) = parse(b"SUBSCRIBE\nid:0\ndestination:/q\nresume:42\n\n\0").unwrap() else {
        panic!()
    };
    assert_eq!(s.ack, AckMode::Auto);
    assert_eq!(s.headers.get("resume"), Some("42"));
    assert!(matches!(
        parse(b"SUBSCRIBE\nid:0\ndestination:/q\nack:manual\n\n\0"),
        Err(ClientFrameError::InvalidAckMode(_))
    ));
}

#[test]
fn only_send_may_have_a_body() {
    assert_eq!(
        parse(b"SUBSCRIBE\nid:0\ndestination:/q\n\nx\0"),
        Err(ClientFrameError::UnexpectedBody(Command::Subscribe))
    );
}

#[test]
fn server_frames_from_a_client_are_rejected() {
    for c in [Command::Connected, Command::Message, Command::Receipt, Command::Error] {
        let f = Frame::new(c);
        assert_eq!(ClientFrame::try_from(f), Err(ClientFrameError::NotAClientCommand(c)));
    }
}

#[test]
fn connected_frame_round_trips_without_escaping() {
    let f = server::connected(Version::V1_2, HeartBeat { send_ms: 10, receive_ms: 20 }, Some("chat/0.1"), Some("s:1"));
    let bytes = enc(&f);
    assert_eq!(bytes, b"CONNECTED\nversion:1.2\nheart-beat:10,20\nserver:chat/0.1\nsession:s:1\n\n\0");
    let mut out = Vec::new();
    Decoder::default().decode_all(&bytes, &mut out).unwrap();
    assert_eq!(out, [Item::Frame(f)]);
}

#[test]
fn error_frame_message_header_is_escaped() {
    let e = server::error("undefined escape sequence '\\t' in header", Some("r:1"), "detail");
    let bytes = enc(&e);
    let mut out = Vec::new();
    Decoder::default().decode_all(&bytes, &mut out).unwrap();
    let Item::Frame(back) = &out[0] else { panic!() };
    assert_eq!(back.header("message"), e.header("message"));
    assert_eq!(back.header("receipt-id"), Some("r:1"));
    assert_eq!(&back.body[..], b"detail");
}
