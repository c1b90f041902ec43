//! SockJS (protocol 0.3.3) against a real gateway on port 0, with a raw HTTP/1.1 client
//! (so that the exact bytes of streaming responses are visible) and tokio-tungstenite for
//! the `websocket` transport. Written from the protocol description: greeting, `/info`,
//! preflights, the iframe page, every HTTP transport's framing, sends, session rules (404 for
//! an unknown session, 2010 for a second receiver, timeout, close frames) and escaping.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_gateway::{GatewayConfig, SockJsConfig};
use common::{Stack, WAIT, test_config};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

// ------------------------------------------------------------------ a tiny HTTP client

/// How the body of a response is delimited.
enum BodyMode {
    Length(usize),
    Chunked,
    Eof,
}

/// An HTTP response whose body is read incrementally.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    mode: BodyMode,
    finished: bool,
    /// Body bytes read so far and not yet consumed by `read_until`.
    pending: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The next piece of the body (`None` at its end).
    async fn piece(&mut self) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        match self.mode {
            BodyMode::Length(n) => {
                let mut buf = vec![0; n];
                self.reader.read_exact(&mut buf).await.ok()?;
                self.finished = true;
                Some(buf)
            }
            BodyMode::Eof => {
                let mut buf = vec![0; 65536];
                let n = self.reader.read(&mut buf).await.ok()?;
                if n == 0 {
                    self.finished = true;
                    return None;
                }
                buf.truncate(n);
                Some(buf)
            }
            BodyMode::Chunked => {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.ok()?;
                let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
                if size == 0 {
                    let mut end = String::new();
                    let _ = self.reader.read_line(&mut end).await;
                    self.finished = true;
                    return None;
                }
                let mut buf = vec![0; size + 2];
                self.reader.read_exact(&mut buf).await.ok()?;
                buf.truncate(size);
                Some(buf)
            }
        }
    }

    /// Reads until the unread body contains `needle`; returns the text up to and including
    /// it (the rest stays unread). Panics after `WAIT`.
    async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(pos) = find(&self.pending, needle.as_bytes()) {
                let rest = self.pending.split_off(pos + needle.len());
                let got = std::mem::replace(&mut self.pending, rest);
                return String::from_utf8(got).expect("utf-8 body");
            }
            match tokio::time::timeout_at(deadline, self.piece()).await {
                Ok(Some(p)) => self.pending.extend_from_slice(&p),
                Ok(None) => {
                    panic!("body ended before {needle:?}; unread: {:?}", String::from_utf8_lossy(&self.pending))
                }
                Err(_) => {
                    panic!("timed out waiting for {needle:?}; unread: {:?}", String::from_utf8_lossy(&self.pending))
                }
            }
        }
    }

    /// The rest of the body (panics if it does not end within `WAIT`).
    async fn rest(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut out = std::mem::take(&mut self.pending);
        loop {
            match tokio::time::timeout_at(deadline, self.piece()).await {
                Ok(Some(p)) => out.extend_from_slice(&p),
                Ok(None) => return String::from_utf8(out).expect("utf-8 body"),
                Err(_) => panic!("body did not end; read: {:?}", String::from_utf8_lossy(&out)),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends one request (`Connection: close`) and reads the status line and headers.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(WAIT, reader.read_line(&mut line)).await.expect("status line in time").expect("read");
    let status: u16 = line.split_whitespace().nth(1).expect("status").parse().expect("status code");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header line");
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mode = if status == 204 || status == 304 || method == "HEAD" {
        BodyMode::Length(0)
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        BodyMode::Chunked
    } else if let Some(n) = get("content-length") {
        BodyMode::Length(n.parse().expect("content-length"))
    } else {
        BodyMode::Eof
    };
    Resp { status, headers, reader, mode, finished: false, pending: Vec::new() }
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (Resp, String) {
    let mut r = http(addr, "GET", path, headers, b"").await;
    let body = r.rest().await;
    (r, body)
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (Resp, String) {
    let mut r = http(addr, "POST", path, headers, body.as_bytes()).await;
    let body = r.rest().await;
    (r, body)
}

// ------------------------------------------------------------------ SockJS + STOMP helpers

fn sid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The messages of an `a[...]` frame.
fn messages(frame: &str) -> Vec<String> {
    let json = frame.strip_prefix('a').unwrap_or_else(|| panic!("not a message frame: {frame:?}"));
    serde_json::from_str(json).expect("a[...] is a JSON array of strings")
}

fn connect_frame(token: &str) -> String {
    format!("CONNECT\naccept-version:1.2\nheart-beat:0,0\nAuthorization:Bearer {token}\n\n\0")
}

fn subscribe_frame(id: &str, destination: &str, receipt: &str) -> String {
    format!("SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:{receipt}\n\n\0")
}

fn chat_frame(conv: &impl std::fmt::Display, user: &impl std::fmt::Display, text: &str) -> String {
    let body = serde_json::json!({
        "messageId": uuid::Uuid::new_v4(), "conversationId": conv.to_string(), "userId": user.to_string(), "text": text,
    });
    format!("SEND\ndestination:/app/chat\ncontent-type:application/json\n\n{body}\0")
}

/// POSTs `frames` (each one SockJS message) to `xhr_send`; asserts 204.
async fn xhr_send(addr: SocketAddr, base: &str, frames: &[&str]) {
    let body = serde_json::to_string(frames).unwrap();
    let (r, text) = post(addr, &format!("{base}/xhr_send"), &[("Content-Type", "text/plain")], &body).await;
    assert_eq!(r.status, 204, "xhr_send: {text}");
}

/// One xhr poll: its single frame, without the newline.
async fn poll(addr: SocketAddr, base: &str) -> String {
    let (r, body) = post(addr, &format!("{base}/xhr"), &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/javascript; charset=UTF-8"));
    assert!(body.ends_with('\n') && body.matches('\n').count() == 1, "one frame per poll: {body:?}");
    body.trim_end_matches('\n').to_owned()
}

/// Polls until the STOMP bytes received contain `needle`; returns everything received.
async fn poll_until(addr: SocketAddr, base: &str, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut all = String::new();
    while !all.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} within {WAIT:?}; got {all:?}");
        let frame = poll(addr, base).await;
        if frame.starts_with('a') {
            all.extend(messages(&frame));
        } else {
            assert_eq!(frame, "h", "unexpected frame");
        }
    }
    all
}

/// A session opened with xhr polling and a STOMP session connected (no heart-beats).
async fn connected_polling_session(stack: &Stack, token: &str) -> String {
    let base = format!("/ws/000/{}", sid());
    assert_eq!(poll(stack.addr, &base).await, "o");
    xhr_send(stack.addr, &base, &[&connect_frame(token)]).await;
    let got = poll_until(stack.addr, &base, "\0").await;
    assert!(got.starts_with("CONNECTED\n"), "{got:?}");
    base
}

fn sockjs_config(sockjs: SockJsConfig) -> GatewayConfig {
    GatewayConfig { sockjs, ..test_config() }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn greeting_and_routing() {
    let stack = Stack::start(test_config()).await;
    for path in ["/ws", "/ws/"] {
        let (r, body) = get(stack.addr, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
        assert_eq!(body, "Welcome to SockJS!\n");
    }
    // Raw WebSocket paths without an upgrade.
    let (r, body) = get(stack.addr, "/ws/websocket", &[]).await;
    assert_eq!((r.status, body.as_str()), (400, "Can \"Upgrade\" only to \"WebSocket\"."));
    let (r, _) = get(stack.addr, &format!("/ws/000/{}/websocket", sid()), &[]).await;
    assert_eq!(r.status, 400);
    // Wrong method: 405 with Allow; unknown transport, dotted or empty ids: 404.
    let (r, _) = get(stack.addr, &format!("/ws/000/{}/xhr", sid()), &[]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    let (r, _) = post(stack.addr, "/ws/info", &[], "").await;
    assert_eq!(r.status, 405);
    for path in ["/ws/000/abc/nope", "/ws/0.0/abc/xhr", "/ws/000/a.b/xhr", "/ws//abc/xhr", "/ws/000/abc/xhr/x", "/ws/x"]
    {
        let (r, _) = post(stack.addr, path, &[], "").await;
        assert_eq!(r.status, 404, "{path}");
    }
    // A trailing slash is accepted.
    let (r, body) = post(stack.addr, &format!("/ws/000/{}/xhr/", sid()), &[], "").await;
    assert_eq!((r.status, body.as_str()), (200, "o\n"));
}

#[tokio::test]
async fn info_shape_and_headers() {
    let stack = Stack::start(test_config()).await;
    let (r, body) = get(stack.addr, "/ws/info", &[("Origin", "http://example.com")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; charset=UTF-8"));
    let cache = r.header("cache-control").unwrap();
    assert!(cache.contains("no-store") && cache.contains("no-cache") && cache.contains("max-age=0"), "{cache}");
    assert_eq!(r.header("access-control-allow-origin"), Some("http://example.com"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["websocket"], true);
    assert_eq!(info["cookie_needed"], false);
    assert_eq!(info["origins"], serde_json::json!(["*:*"]));
    let e1 = info["entropy"].as_u64().expect("entropy is a number");
    assert!(e1 <= u64::from(u32::MAX));
    let entropies: std::collections::HashSet<u64> = futures::future::join_all((0..4).map(|_| async {
        let (_, body) = get(stack.addr, "/ws/info", &[]).await;
        serde_json::from_str::<Value>(&body).unwrap()["entropy"].as_u64().unwrap()
    }))
    .await
    .into_iter()
    .collect();
    assert!(entropies.len() > 1, "entropy must be random");
    // Without Origin: any origin, no credentials.
    let (r, _) = get(stack.addr, "/ws/info", &[]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);

    // websocket: false and cookie_needed: true are reported, and cookies are set.
    let stack =
        Stack::start(sockjs_config(SockJsConfig { websocket: false, cookie_needed: true, ..SockJsConfig::default() }))
            .await;
    let (_, body) = get(stack.addr, "/ws/info", &[]).await;
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((info["websocket"].clone(), info["cookie_needed"].clone()), (Value::Bool(false), Value::Bool(true)));
    let (r, _) = get(stack.addr, &format!("/ws/000/{}/websocket", sid()), &[]).await;
    assert_eq!(r.status, 404, "websocket transport disabled");
    let (r, _) = post(stack.addr, &format!("/ws/000/{}/xhr", sid()), &[], "").await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; path=/"));
    let (r, _) = post(stack.addr, &format!("/ws/000/{}/xhr", sid()), &[("Cookie", "a=1; JSESSIONID=abc")], "").await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=abc; path=/"));
    // Without cookie_needed, no cookie.
    let stack = Stack::start(test_config()).await;
    let (r, _) = post(stack.addr, &format!("/ws/000/{}/xhr", sid()), &[], "").await;
    assert_eq!(r.header("set-cookie"), None);
}

#[tokio::test]
async fn options_preflights() {
    let stack = Stack::start(test_config()).await;
    let base = format!("/ws/000/{}", sid());
    for (path, methods) in [
        ("/ws/info".to_owned(), "OPTIONS, GET"),
        (format!("{base}/xhr"), "OPTIONS, POST"),
        (format!("{base}/xhr_send"), "OPTIONS, POST"),
        (format!("{base}/xhr_streaming"), "OPTIONS, POST"),
    ] {
        let headers = [("Origin", "http://example.com"), ("Access-Control-Request-Headers", "a, b")];
        let (r, body) = {
            let mut r = http(stack.addr, "OPTIONS", &path, &headers, b"").await;
            let body = r.rest().await;
            (r, body)
        };
        assert_eq!(r.status, 204, "{path}");
        assert!(body.is_empty());
        assert_eq!(r.header("access-control-allow-methods"), Some(methods), "{path}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000"), "{path}");
        assert!(r.header("expires").is_some_and(|e| e.ends_with(" GMT")), "{path}");
        assert_eq!(r.header("access-control-max-age"), Some("31536000"), "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("http://example.com"));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(r.header("access-control-allow-headers"), Some("a, b"));
    }
    // A preflight creates no session.
    let (r, _) = post(stack.addr, &format!("{base}/xhr_send"), &[], "[\"x\"]").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn iframe_page_with_etag() {
    let url = "http://cdn.example/sockjs.min.js?x=1&y=2";
    let stack = Stack::start(sockjs_config(SockJsConfig { client_url: url.into(), ..SockJsConfig::default() })).await;
    let (r, body) = get(stack.addr, "/ws/iframe.html", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000"));
    assert!(r.header("expires").is_some());
    assert!(body.contains(r#"<script src="http://cdn.example/sockjs.min.js?x=1&amp;y=2"></script>"#), "{body}");
    assert!(body.contains("SockJS.bootstrap_iframe();"));
    let etag = r.header("etag").expect("ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    for path in ["/ws/iframe-1.6.1.html", "/ws/iframe-a_b.html"] {
        let (r2, body2) = get(stack.addr, path, &[]).await;
        assert_eq!((r2.status, body2.as_str(), r2.header("etag")), (200, body.as_str(), Some(etag.as_str())));
    }
    let (r, body) = get(stack.addr, "/ws/iframe.html", &[("If-None-Match", &etag)]).await;
    assert_eq!((r.status, body.as_str()), (304, ""));
    let (r, _) = get(stack.addr, "/ws/iframe.html", &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(r.status, 200);
    let (r, _) = get(stack.addr, "/ws/iframe-A.html", &[]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn xhr_polling_carries_a_stomp_chat() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let conv = stack.channel(&alice, "general", &[&bob]).await;

    // Bob listens with xhr_streaming, Alice talks with xhr polling.
    let bob_base = format!("/ws/000/{}", sid());
    let mut bob_rx = http(stack.addr, "POST", &format!("{bob_base}/xhr_streaming"), &[], b"").await;
    bob_rx.read_until("\no\n").await;
    xhr_send(stack.addr, &bob_base, &[&connect_frame(&bob.token)]).await;
    assert!(messages(bob_rx.read_until("\n").await.trim_end())[0].starts_with("CONNECTED\n"));
    xhr_send(stack.addr, &bob_base, &[&subscribe_frame("m", "/user/queue/messages", "b1")]).await;
    assert!(bob_rx.read_until("\n").await.contains("receipt-id:b1"));

    let alice_base = connected_polling_session(&stack, &alice.token).await;
    // Two STOMP frames in one xhr_send (two SockJS messages), in order.
    xhr_send(
        stack.addr,
        &alice_base,
        &[&subscribe_frame("n", "/user/queue/notifications/private", "a1"), &chat_frame(&conv, &alice.id, "hello bob")],
    )
    .await;
    let got = poll_until(stack.addr, &alice_base, "PERSISTED").await;
    assert!(got.contains("receipt-id:a1"), "{got}");

    // (Earlier events of the conversation, e.g. its creation, may come first.)
    let received = bob_rx.read_until("hello bob").await + &bob_rx.read_until("\n").await;
    let frame = received.lines().last().unwrap();
    let msgs = messages(frame);
    let msg = msgs.iter().find(|m| m.contains("hello bob")).unwrap();
    assert!(msg.starts_with("MESSAGE\n") && msg.contains("\ndestination:/user/queue/messages\n"), "{msg:?}");
    assert_eq!(stack.gateway.session_count(), 2);
}

#[tokio::test]
async fn xhr_streaming_prelude_and_limit() {
    let stack =
        Stack::start(sockjs_config(SockJsConfig { streaming_limit_bytes: 4096, ..SockJsConfig::default() })).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut rx =
        http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[("Origin", "http://x.example")], b"").await;
    assert_eq!(rx.status, 200);
    assert_eq!(rx.header("content-type"), Some("application/javascript; charset=UTF-8"));
    assert_eq!(rx.header("x-accel-buffering"), Some("no"));
    assert_eq!(rx.header("access-control-allow-origin"), Some("http://x.example"));
    assert!(rx.header("cache-control").unwrap().contains("no-store"));
    let prelude = rx.read_until("\n").await;
    assert_eq!(prelude, format!("{}\n", "h".repeat(2048)));
    assert_eq!(rx.read_until("\n").await, "o\n");

    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    assert!(rx.read_until("\n").await.starts_with("a[\"CONNECTED\\n"));
    // Receipts until the response passes 4096 bytes of frames: then it ends.
    let mut received = rx.pending.len();
    let mut ended = false;
    for i in 0..100 {
        let receipt = format!("r{i}-{}", "x".repeat(200));
        let subscribe = format!("SUBSCRIBE\nid:s{i}\ndestination:/user/queue/errors\nreceipt:{receipt}\n\n\0");
        xhr_send(stack.addr, &base, &[&subscribe]).await;
        match tokio::time::timeout(WAIT, rx.piece()).await.expect("frame or end in time") {
            Some(p) => received += p.len(),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the streaming response never ended");
    assert!((3000..4096 + 1024).contains(&received), "ended after {received} bytes");
    // The session lives on: the next streaming request resumes it without a new `o`.
    let mut rx = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    rx.read_until("\n").await;
    xhr_send(stack.addr, &base, &["SUBSCRIBE\nid:z\ndestination:/user/queue/errors\nreceipt:last\n\n\0"]).await;
    let next = rx.read_until("receipt-id:last").await;
    assert!(next.starts_with("a[") && !next.starts_with("o"), "{next:?}");
}

#[tokio::test]
async fn eventsource_framing_and_percent_escape() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut rx = http(stack.addr, "GET", &format!("{base}/eventsource"), &[], b"").await;
    assert_eq!(rx.status, 200);
    assert_eq!(rx.header("content-type"), Some("text/event-stream"));
    assert_eq!(rx.header("x-accel-buffering"), Some("no"));
    assert_eq!(rx.read_until("\r\n").await, "\r\n");
    assert_eq!(rx.read_until("\r\n\r\n").await, "data: o\r\n\r\n");
    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    assert!(rx.read_until("\r\n\r\n").await.starts_with("data: a[\"CONNECTED\\n"));
    xhr_send(stack.addr, &base, &["SUBSCRIBE\nid:1\ndestination:/user/queue/errors\nreceipt:100%\n\n\0"]).await;
    let event = rx.read_until("\r\n\r\n").await;
    assert!(event.starts_with("data: a[") && event.contains("receipt-id:100%25"), "{event:?}");
}

#[tokio::test]
async fn htmlfile_and_jsonp_callbacks() {
    let stack = Stack::start(test_config()).await;
    for transport in ["htmlfile", "jsonp"] {
        let base = format!("/ws/000/{}", sid());
        let (r, body) = get(stack.addr, &format!("{base}/{transport}"), &[]).await;
        assert_eq!((r.status, body.as_str()), (500, "\"callback\" parameter required"), "{transport}");
        let (r, body) = get(stack.addr, &format!("{base}/{transport}?c=%20"), &[]).await;
        assert_eq!((r.status, body.as_str()), (500, "invalid \"callback\" parameter"), "{transport}");
        let (r, body) = get(stack.addr, &format!("{base}/{transport}?c=alert(1)"), &[]).await;
        assert_eq!((r.status, body.as_str()), (500, "invalid \"callback\" parameter"), "{transport}");
        // A refused request created no session.
        let (r, _) = post(stack.addr, &format!("{base}/xhr_send"), &[], "[\"x\"]").await;
        assert_eq!(r.status, 404, "{transport}");
    }
    // jsonp callbacks are at most 32 characters.
    let (r, _) = get(stack.addr, &format!("/ws/000/{}/jsonp?c={}", sid(), "a".repeat(33)), &[]).await;
    assert_eq!(r.status, 500);

    let base = format!("/ws/000/{}", sid());
    let mut rx = http(stack.addr, "GET", &format!("{base}/htmlfile?c=window.cb_1"), &[], b"").await;
    assert_eq!(rx.status, 200);
    assert_eq!(rx.header("content-type"), Some("text/html; charset=UTF-8"));
    let prelude = rx.read_until("\r\n\r\n").await;
    assert!(prelude.len() > 1024, "prelude padded past 1 KiB: {}", prelude.len());
    assert!(prelude.contains("var c = parent.window.cb_1;"));
    assert_eq!(rx.read_until("</script>\r\n").await, "<script>\np(\"o\");\n</script>\r\n");
    xhr_send(stack.addr, &base, &["x"]).await;

    let base = format!("/ws/000/{}", sid());
    let (r, body) = get(stack.addr, &format!("{base}/jsonp?c=cb.x"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/javascript; charset=UTF-8"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(body, "/**/cb.x(\"o\");\r\n");
}

#[tokio::test]
async fn jsonp_send_form_and_raw() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let (_, body) = get(stack.addr, &format!("{base}/jsonp?callback=cb"), &[]).await;
    assert_eq!(body, "/**/cb(\"o\");\r\n");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let d: String = serde_json::to_string(&[connect_frame(&alice.token)]).unwrap();
    let encoded: String = d.bytes().map(|b| format!("%{b:02X}")).collect();
    let (r, body) = post(stack.addr, &format!("{base}/jsonp_send"), &form, &format!("d={encoded}")).await;
    assert_eq!((r.status, body.as_str()), (200, "ok"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let (_, body) = get(stack.addr, &format!("{base}/jsonp?c=cb"), &[]).await;
    let inner: String =
        serde_json::from_str(body.strip_prefix("/**/cb(").unwrap().strip_suffix(");\r\n").unwrap()).unwrap();
    assert!(messages(&inner)[0].starts_with("CONNECTED\n"), "{inner}");
    // Raw body (text/plain).
    let raw = serde_json::to_string(&["SUBSCRIBE\nid:1\ndestination:/user/queue/errors\nreceipt:j\n\n\0"]).unwrap();
    let (r, body) = post(stack.addr, &format!("{base}/jsonp_send"), &[("Content-Type", "text/plain")], &raw).await;
    assert_eq!((r.status, body.as_str()), (200, "ok"));
    let (_, body) = get(stack.addr, &format!("{base}/jsonp?c=cb"), &[]).await;
    assert!(body.contains("receipt-id:j"), "{body}");
    // Errors.
    for (headers, payload, expected) in [
        (&form[..], "", "Payload expected."),
        (&form[..], "d=", "Payload expected."),
        (&form[..], "x=1", "Payload expected."),
        (&form[..], "d=%5B%22x", "Broken JSON encoding."),
        (&[][..], "", "Payload expected."),
        (&[][..], "[\"x", "Broken JSON encoding."),
        (&[][..], "{}", "Payload expected."),
    ] {
        let (r, body) = post(stack.addr, &format!("{base}/jsonp_send"), headers, payload).await;
        assert_eq!((r.status, body.as_str()), (500, expected), "{payload:?}");
    }
}

#[tokio::test]
async fn xhr_send_errors_and_unknown_session() {
    let stack = Stack::start(test_config()).await;
    let base = format!("/ws/000/{}", sid());
    assert_eq!(poll(stack.addr, &base).await, "o");
    for (payload, expected) in
        [("", "Payload expected."), ("[\"x", "Broken JSON encoding."), ("\"x\"", "Payload expected.")]
    {
        let (r, body) = post(stack.addr, &format!("{base}/xhr_send"), &[("Origin", "http://a.example")], payload).await;
        assert_eq!((r.status, body.as_str()), (500, expected), "{payload:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some("http://a.example"), "errors carry CORS");
    }
    let (r, body) = post(stack.addr, &format!("{base}/xhr_send"), &[], "[]").await;
    assert_eq!((r.status, body.as_str()), (204, ""));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    // An unknown session: 404 at once, never a hang (sockjs-client issue 310).
    for transport in ["xhr_send", "jsonp_send"] {
        let started = Instant::now();
        let (r, _) = post(stack.addr, &format!("/ws/000/{}/{transport}", sid()), &[], "[\"x\"]").await;
        assert_eq!(r.status, 404, "{transport}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn second_receiver_gets_2010() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut first = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    first.read_until("\no\n").await;
    let mut second = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    second.read_until("\n").await;
    assert_eq!(second.rest().await, "c[2010,\"Another connection still open\"]\n");
    let (_, body) = post(stack.addr, &format!("{base}/xhr"), &[], "").await;
    assert_eq!(body, "c[2010,\"Another connection still open\"]\n");
    // The first receiver keeps the session.
    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    assert!(first.read_until("\n").await.starts_with("a[\"CONNECTED\\n"));
}

#[tokio::test]
async fn session_times_out_and_ends_the_stomp_session() {
    let stack = Stack::start(sockjs_config(SockJsConfig { session_timeout_ms: 1000, ..SockJsConfig::default() })).await;
    let alice = stack.user("alice").await;
    let base = connected_polling_session(&stack, &alice.token).await;
    assert_eq!(stack.gateway.session_count(), 1);
    // Polls keep it alive past the timeout.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        xhr_send(stack.addr, &base, &["SUBSCRIBE\nid:1\ndestination:/user/queue/errors\n\n\0"]).await;
        let _ = tokio::time::timeout(Duration::from_millis(100), poll(stack.addr, &base)).await;
    }
    xhr_send(stack.addr, &base, &["\n"]).await;
    // Then nothing: gone after the timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (r, _) = post(stack.addr, &format!("{base}/xhr_send"), &[], "[\"x\"]").await;
    assert_eq!(r.status, 404);
    let deadline = Instant::now() + WAIT;
    while stack.gateway.session_count() != 0 {
        assert!(Instant::now() < deadline, "the STOMP session did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The same id now opens a new session.
    assert_eq!(poll(stack.addr, &base).await, "o");
}

#[tokio::test]
async fn json_escaping_of_special_unicode() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let base = connected_polling_session(&stack, &alice.token).await;
    let receipt = "r\u{200c}\u{200f}\u{2028}\u{2029}\u{202f}\u{2060}\u{206f}\u{fff0}\u{ffff}\u{1f600}é\u{7f}\"";
    xhr_send(
        stack.addr,
        &base,
        &[&format!("SUBSCRIBE\nid:1\ndestination:/user/queue/errors\nreceipt:{receipt}\n\n\0")],
    )
    .await;
    let frame = poll(stack.addr, &base).await;
    for escaped in [
        "\\u200c",
        "\\u200f",
        "\\u2028",
        "\\u2029",
        "\\u202f",
        "\\u2060",
        "\\u206f",
        "\\ufff0",
        "\\uffff",
        "\\ud83d\\ude00",
        "\\u0000",
        "\\n",
        "é",
    ] {
        assert!(frame.contains(escaped), "{escaped} in {frame:?}");
    }
    for raw in ['\u{2028}', '\u{200c}', '\u{fff0}', '\u{1f600}', '\0', '\n'] {
        assert!(!frame.contains(raw), "raw {raw:?} in {frame:?}");
    }
    let msgs = messages(&frame);
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].starts_with("RECEIPT\n"));
    // Decoded, the frame is the original.
    assert!(msgs[0].contains(&format!("receipt-id:{receipt}\n")), "{:?}", msgs[0]);
}

#[tokio::test]
async fn close_frame_after_stomp_error_then_again() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut rx = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    rx.read_until("\no\n").await;
    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    rx.read_until("\n").await;
    // Forbidden destination: ERROR, then the session closes with 3000 "Go away!".
    xhr_send(stack.addr, &base, &["SEND\ndestination:/topic/x\n\nhi\0"]).await;
    let rest = rx.rest().await;
    let lines: Vec<&str> = rest.lines().collect();
    assert!(lines[0].starts_with("a[\"ERROR\\n"), "{rest:?}");
    assert_eq!(lines.last(), Some(&"c[3000,\"Go away!\"]"), "{rest:?}");
    // A request on the closed session gets the close frame again.
    assert_eq!(poll(stack.addr, &base).await, "c[3000,\"Go away!\"]");
    let deadline = Instant::now() + WAIT;
    while stack.gateway.session_count() != 0 {
        assert!(Instant::now() < deadline, "the STOMP session did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // DISCONNECT: the RECEIPT, then the close frame.
    let base = connected_polling_session(&stack, &alice.token).await;
    xhr_send(stack.addr, &base, &["DISCONNECT\nreceipt:bye\n\n\0"]).await;
    let got = poll_until(stack.addr, &base, "receipt-id:bye").await;
    assert!(got.starts_with("RECEIPT\n"));
    let mut frame = poll(stack.addr, &base).await;
    if frame == "h" {
        frame = poll(stack.addr, &base).await;
    }
    assert_eq!(frame, "c[3000,\"Go away!\"]");
}

#[tokio::test]
async fn aborted_receiver_interrupts_the_session() {
    let stack = Stack::start(sockjs_config(SockJsConfig { heartbeat_ms: 200, ..SockJsConfig::default() })).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut rx = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    rx.read_until("\no\n").await;
    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    rx.read_until("\n").await;
    assert_eq!(rx.read_until("\n").await, "h\n", "heartbeat frame when idle");
    assert_eq!(stack.gateway.session_count(), 1);
    drop(rx);
    let deadline = Instant::now() + WAIT;
    while stack.gateway.session_count() != 0 {
        assert!(Instant::now() < deadline, "the STOMP session did not end after the abort");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rx = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    rx.read_until("\n").await;
    assert_eq!(rx.rest().await, "c[1002,\"Connection interrupted\"]\n");
}

#[tokio::test]
async fn shutdown_closes_sessions_promptly() {
    // Shutdown must not wait for idle sessions to time out.
    let stack =
        Stack::start(sockjs_config(SockJsConfig { session_timeout_ms: 60_000, ..SockJsConfig::default() })).await;
    let alice = stack.user("alice").await;
    let base = format!("/ws/000/{}", sid());
    let mut rx = http(stack.addr, "POST", &format!("{base}/xhr_streaming"), &[], b"").await;
    rx.read_until("\no\n").await;
    xhr_send(stack.addr, &base, &[&connect_frame(&alice.token)]).await;
    rx.read_until("\n").await;
    let idle = connected_polling_session(&stack, &alice.token).await;
    let started = Instant::now();
    tokio::time::timeout(WAIT, stack.gateway.shutdown()).await.expect("shutdown in time");
    assert!(started.elapsed() < WAIT);
    assert_eq!(rx.rest().await, "c[3000,\"Go away!\"]\n");
    assert_eq!(stack.gateway.session_count(), 0);
    // No new session during shutdown; the idle one is gone.
    let (r, _) = post(stack.addr, &format!("/ws/000/{}/xhr", sid()), &[], "").await;
    assert_eq!(r.status, 503);
    let (r, _) = post(stack.addr, &format!("{idle}/xhr_send"), &[], "[\"x\"]").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn slow_consumer_is_bounded() {
    let cfg = GatewayConfig { outbound_queue_len: 8, ..test_config() };
    let stack = Stack::start(cfg).await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let conv = stack.channel(&alice, "general", &[&bob]).await;
    // Bob subscribes, then stops receiving (no request attached).
    let bob_base = connected_polling_session(&stack, &bob.token).await;
    xhr_send(stack.addr, &bob_base, &[&subscribe_frame("m", "/user/queue/messages", "b")]).await;
    poll_until(stack.addr, &bob_base, "receipt-id:b").await;
    let alice_base = connected_polling_session(&stack, &alice.token).await;
    for i in 0..200 {
        xhr_send(stack.addr, &alice_base, &[&chat_frame(&conv, &alice.id, &format!("m{i}"))]).await;
        if stack.gateway.session_count() == 1 {
            break;
        }
    }
    let deadline = Instant::now() + WAIT;
    while stack.gateway.session_count() != 1 {
        assert!(Instant::now() < deadline, "bob was not closed as a slow consumer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Bob's next requests get what was buffered (bounded), then the close frame.
    let mut frames = 0;
    loop {
        let frame = poll(stack.addr, &bob_base).await;
        if frame.starts_with('c') {
            assert_eq!(frame, "c[3000,\"Go away!\"]");
            break;
        }
        frames += 1;
        assert!(frames <= 32, "more frames buffered than the limits allow");
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// The next text message (`None` once the socket closed).
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("frame in time") {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn websocket_transport() {
    let stack = Stack::start(sockjs_config(SockJsConfig { heartbeat_ms: 300, ..SockJsConfig::default() })).await;
    let alice = stack.user("alice").await;
    let url = format!("ws://{}/ws/000/{}/websocket", stack.addr, sid());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("o"));
    // An array, or a single JSON string.
    let connect = serde_json::to_string(&[connect_frame(&alice.token)]).unwrap();
    ws.send(Message::Text(connect.into())).await.unwrap();
    let frame = next_text(&mut ws).await.unwrap();
    assert!(messages(&frame)[0].starts_with("CONNECTED\n"), "{frame}");
    let sub = serde_json::to_string("SUBSCRIBE\nid:1\ndestination:/user/queue/errors\nreceipt:w\n\n\0").unwrap();
    ws.send(Message::Text(sub.into())).await.unwrap();
    let frame = next_text(&mut ws).await.unwrap();
    assert!(frame.contains("receipt-id:w"), "{frame}");
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("h"), "heartbeat when idle");
    // Server-side close: ERROR, then c[3000,"Go away!"], then the socket closes.
    let bad = serde_json::to_string(&["SEND\ndestination:/topic/x\n\nhi\0"]).unwrap();
    ws.send(Message::Text(bad.into())).await.unwrap();
    let mut frame = next_text(&mut ws).await.unwrap();
    while frame == "h" {
        frame = next_text(&mut ws).await.unwrap();
    }
    assert!(frame.starts_with("a[\"ERROR\\n"), "{frame}");
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("c[3000,\"Go away!\"]"));
    assert_eq!(next_text(&mut ws).await, None);

    // Broken framing ends the session.
    let url = format!("ws://{}/ws/000/{}/websocket", stack.addr, sid());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("o"));
    ws.send(Message::Text("[\"x".into())).await.unwrap();
    let mut ended = false;
    for _ in 0..5 {
        match next_text(&mut ws).await {
            None => {
                ended = true;
                break;
            }
            Some(f) => assert!(f == "h" || f.starts_with('c') || f.starts_with("a[\"ERROR"), "{f}"),
        }
    }
    assert!(ended, "broken framing must end the session");
}

/// Over the SockJS `websocket` transport too, a STOMP client without heart-beats is probed
/// with WebSocket Pings: one whose WebSocket answers stays, one that answers nothing is ended.
#[tokio::test]
async fn websocket_transport_probes_clients_without_heart_beats() {
    let cfg = GatewayConfig { liveness_probe_ms: 300, ..sockjs_config(SockJsConfig::default()) };
    let stack = Stack::start(cfg).await;
    let alice = stack.user("alice").await;
    let url = format!("ws://{}/ws/000/{}/websocket", stack.addr, sid());
    let connect = serde_json::to_string(&[connect_frame(&alice.token)]).unwrap();

    let (mut alive, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    assert_eq!(next_text(&mut alive).await.as_deref(), Some("o"));
    alive.send(Message::Text(connect.clone().into())).await.unwrap();
    assert!(messages(&next_text(&mut alive).await.unwrap())[0].starts_with("CONNECTED\n"));
    // Reading (tungstenite answers each Ping) for five probe intervals: nothing ends it.
    let until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while let Ok(m) = tokio::time::timeout_at(until, alive.next()).await {
        match m {
            Some(Ok(Message::Text(t))) => assert!(!t.starts_with("c[") && !t.contains("ERROR"), "{t}"),
            Some(Ok(_)) => {}
            other => panic!("the answering client was closed: {other:?}"),
        }
    }

    let url = format!("ws://{}/ws/000/{}/websocket", stack.addr, sid());
    let (mut frozen, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    assert_eq!(next_text(&mut frozen).await.as_deref(), Some("o"));
    frozen.send(Message::Text(connect.into())).await.unwrap();
    assert!(messages(&next_text(&mut frozen).await.unwrap())[0].starts_with("CONNECTED\n"));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let frame = next_text(&mut frozen).await.expect("the ERROR");
    assert!(frame.starts_with("a[\"ERROR\\n") && frame.contains("liveness timeout"), "{frame}");
    assert_eq!(next_text(&mut frozen).await.as_deref(), Some("c[3000,\"Go away!\"]"));
}
