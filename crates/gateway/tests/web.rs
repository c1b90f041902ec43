//! The built-in web client (`crate::web`): the gateway serves the page, its assets and
//! `/config.json` with the right media types and caching headers, next to the STOMP and
//! SockJS routes under `/ws`, and not at all when `web.enabled` is false.

mod common;

use std::net::SocketAddr;

use chat_gateway::{GatewayConfig, WebConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{Stack, WAIT, test_config};

/// A response: status, headers (lower-case names) and body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

/// `GET path` with `Connection: close`; the body is read to the end of the stream.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("response in time").expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ascii headers");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp { status, headers, body: raw[split + 4..].to_vec() }
}

#[tokio::test]
async fn page_assets_and_config_have_the_right_media_types() {
    let stack = Stack::start(test_config()).await;
    let addr = stack.addr;

    let page = get(addr, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    for script in ["/assets/vendor/stomp.umd.min.js", "/assets/vendor/sockjs.min.js", "/assets/js/main.js"] {
        assert!(html.contains(script), "the page loads {script}");
    }
    let csp = page.header("content-security-policy").expect("CSP on the page");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-src 'self'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(get(addr, "/index.html", &[]).await.body, page.body);

    let cases = [
        ("/assets/app.css", "text/css; charset=utf-8", "#messages"),
        ("/assets/js/main.js", "text/javascript; charset=utf-8", "import"),
        ("/assets/js/live.js", "text/javascript; charset=utf-8", "resume"),
        ("/assets/vendor/stomp.umd.min.js", "text/javascript; charset=utf-8", "StompJs"),
        ("/assets/vendor/sockjs.min.js", "text/javascript; charset=utf-8", "sockjs-client v1.6.1"),
    ];
    for (path, content_type, needle) in cases {
        let r = get(addr, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert!(r.text().contains(needle), "{path} contains {needle:?}");
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()), "{path}");
    }
}

#[tokio::test]
async fn every_module_the_page_imports_is_served() {
    let stack = Stack::start(test_config()).await;
    let main = get(stack.addr, "/assets/js/main.js", &[]).await.text();
    let mut pending: Vec<String> = vec![main];
    let mut seen = std::collections::HashSet::new();
    while let Some(source) = pending.pop() {
        for line in source.lines().filter(|l| l.starts_with("import ")) {
            let module = line.rsplit_once("from '").map(|(_, m)| m.trim_end_matches("';")).expect("from '...'");
            let name = module.strip_prefix("./").expect("relative import");
            if seen.insert(name.to_owned()) {
                let r = get(stack.addr, &format!("/assets/js/{name}"), &[]).await;
                assert_eq!(r.status, 200, "imported module {name}");
                assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
                pending.push(r.text());
            }
        }
    }
    assert!(seen.len() >= 8, "modules found: {seen:?}");
}

#[tokio::test]
async fn etag_revalidation_and_unknown_asset() {
    let stack = Stack::start(test_config()).await;
    let first = get(stack.addr, "/assets/js/store.js", &[]).await;
    let etag = first.header("etag").expect("etag").to_owned();
    let again = get(stack.addr, "/assets/js/store.js", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = get(stack.addr, "/assets/js/store.js", &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(other.status, 200);

    let missing = get(stack.addr, "/assets/js/nope.js", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("text/plain; charset=utf-8"));
    let traversal = get(stack.addr, "/assets/../Cargo.toml", &[]).await;
    assert_eq!(traversal.status, 404);
}

#[tokio::test]
async fn config_json_tells_the_page_where_the_apis_are() {
    let mut cfg = test_config();
    cfg.web.rest_port = Some(18081);
    let stack = Stack::start(cfg).await;
    let r = get(stack.addr, "/config.json", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["restUrl"], "");
    assert_eq!(v["restPort"], 18081);
    assert_eq!(v["webSocketPath"], "/ws/websocket");
    assert_eq!(v["sockJsPath"], "/ws");
    assert_eq!(v["sockJsWebSocket"], true);

    let cfg = GatewayConfig {
        web: WebConfig { rest_url: "https://api.example.com/".into(), ..WebConfig::default() },
        ..test_config()
    };
    let stack = Stack::start(cfg).await;
    let v: serde_json::Value = serde_json::from_slice(&get(stack.addr, "/config.json", &[]).await.body).expect("json");
    assert_eq!(v["restUrl"], "https://api.example.com");
    assert_eq!(v["restPort"], 8081, "unset: the REST listener's default port");
}

#[tokio::test]
async fn sockjs_iframe_loads_the_served_client_and_routes_do_not_collide() {
    let stack = Stack::start(test_config()).await;
    let iframe = get(stack.addr, "/ws/iframe.html", &[]).await;
    assert_eq!(iframe.status, 200);
    assert!(iframe.text().contains("<script src=\"/assets/vendor/sockjs.min.js\">"), "{}", iframe.text());
    let welcome = get(stack.addr, "/ws", &[]).await;
    assert_eq!(welcome.text(), "Welcome to SockJS!\n");
    let info = get(stack.addr, "/ws/info", &[]).await;
    assert_eq!(info.status, 200);
    assert!(info.text().contains("\"websocket\":true"));
}

#[tokio::test]
async fn web_client_can_be_switched_off() {
    let cfg = GatewayConfig { web: WebConfig { enabled: false, ..WebConfig::default() }, ..test_config() };
    let stack = Stack::start(cfg).await;
    assert_eq!(get(stack.addr, "/", &[]).await.status, 404);
    assert_eq!(get(stack.addr, "/assets/js/main.js", &[]).await.status, 404);
    assert_eq!(get(stack.addr, "/config.json", &[]).await.status, 404);
    assert_eq!(get(stack.addr, "/ws/info", &[]).await.status, 200);
}
