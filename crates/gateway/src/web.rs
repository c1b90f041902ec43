//! The built-in web client: a small vanilla-JS chat page served by the gateway, so that a
//! person who starts `chat-sys serve` can open `http://localhost:8082/` and chat.
//!
//! # Routes (when [`crate::config::WebConfig::enabled`])
//! * `GET /` (and `/index.html`): the page (`text/html`), with a Content-Security-Policy
//!   that allows scripts, styles and frames from this origin only and network calls to the
//!   REST API on another origin.
//! * `GET /assets/{path}`: its stylesheet, ES modules (`text/javascript`) and the vendored
//!   browser bundles of @stomp/stompjs and sockjs-client (`/assets/vendor/...`, copied from
//!   the npm packages by `crates/gateway/web/build.sh` and committed). Every file is compiled
//!   into the binary (`include_bytes!`): nothing is read from disk or downloaded at run time.
//! * `GET /config.json`: `{"restUrl", "restPort", "webSocketPath", "sockJsPath",
//!   "sockJsWebSocket"}`: where the page finds the REST API (an empty `restUrl` means the
//!   page's own scheme and host with port `restPort`) and the STOMP endpoints (`sockJsPath`
//!   is `null` when SockJS is off).
//!
//! Responses carry `ETag` (a hash of the content; `If-None-Match` gets 304),
//! `Cache-Control: no-cache` (revalidate, so a new binary's files are picked up) and
//! `X-Content-Type-Options: nosniff`. An unknown asset is a 404.
//!
//! These routes do not collide with the STOMP and SockJS routes, which all live under `/ws`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use crate::config::GatewayConfig;

/// Path of the sockjs-client bundle the gateway serves (also the default
/// [`crate::config::SockJsConfig::client_url`], which `/ws/iframe.html` loads).
pub const SOCKJS_CLIENT_PATH: &str = "/assets/vendor/sockjs.min.js";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The page's Content-Security-Policy: its own scripts, styles and frames (the SockJS
/// iframe transports load `/ws/...` pages), network calls to any http(s)/ws(s) origin (the
/// REST API's origin is only known in the browser), downloads as `blob:` URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self' http: https: ws: wss:; frame-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One compiled-in file: its path under `/assets/` (`index.html` is served at `/`), its media
/// type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// `asset!("js/main.js", JAVASCRIPT)`: the file `crates/gateway/web/static/js/main.js`.
macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/static/", $path)),
        }
    };
}

/// Every file of the web client (`crates/gateway/web/static/`).
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("js/main.js", JAVASCRIPT),
    asset!("js/api.js", JAVASCRIPT),
    asset!("js/live.js", JAVASCRIPT),
    asset!("js/store.js", JAVASCRIPT),
    asset!("js/dom.js", JAVASCRIPT),
    asset!("js/sidebar.js", JAVASCRIPT),
    asset!("js/conversation.js", JAVASCRIPT),
    asset!("js/message.js", JAVASCRIPT),
    asset!("js/thread.js", JAVASCRIPT),
    asset!("js/search.js", JAVASCRIPT),
    asset!("js/login.js", JAVASCRIPT),
    asset!("vendor/stomp.umd.min.js", JAVASCRIPT),
    asset!("vendor/sockjs.min.js", JAVASCRIPT),
    asset!("vendor/VERSIONS.txt", TEXT),
];

/// A file ready to serve: bytes, media type and entity tag.
struct Served {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Served {
    fn new(body: Bytes, content_type: &'static str) -> Served {
        // Fixed keys: the same bytes give the same tag on every node of one build.
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).expect("hex is a valid header");
        Served { body, content_type, etag }
    }

    fn respond(&self, request: &HeaderMap, extra: &[(header::HeaderName, &'static str)]) -> Response {
        let matches = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag || t.trim() == "*"));
        let mut res = if matches {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut res = self.body.clone().into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
            res
        };
        let headers = res.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        for (name, value) in extra {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        res
    }
}

/// State of the web routes.
struct Web {
    index: Served,
    assets: HashMap<&'static str, Served>,
    config: Served,
}

/// The JSON of `/config.json` for `cfg`.
fn config_json(cfg: &GatewayConfig) -> Bytes {
    let body = serde_json::json!({
        "restUrl": cfg.web.rest_url.trim_end_matches('/'),
        "restPort": cfg.web.effective_rest_port(),
        "webSocketPath": "/ws/websocket",
        "sockJsPath": cfg.sockjs.enabled.then_some("/ws"),
        "sockJsWebSocket": cfg.sockjs.enabled && cfg.sockjs.websocket,
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The web client's routes (see the module docs).
pub(crate) fn router(cfg: &GatewayConfig) -> Router {
    let mut index = None;
    let mut assets = HashMap::new();
    for asset in ASSETS {
        let served = Served::new(Bytes::from_static(asset.body), asset.content_type);
        if asset.path == "index.html" {
            index = Some(served);
        } else {
            assets.insert(asset.path, served);
        }
    }
    let web = Arc::new(Web {
        index: index.expect("index.html is in ASSETS"),
        assets,
        config: Served::new(config_json(cfg), JSON),
    });
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/config.json", get(config))
        .route("/assets/{*path}", get(asset))
        .with_state(web)
}

async fn page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    web.index.respond(&headers, &[(header::CONTENT_SECURITY_POLICY, CSP), (header::REFERRER_POLICY, "no-referrer")])
}

async fn config(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    web.config.respond(&headers, &[])
}

async fn asset(State(web): State<Arc<Web>>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    match web.assets.get(path.as_str()) {
        Some(served) => served.respond(&headers, &[]),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, TEXT)], "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_non_empty_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(seen.insert(a.path), "{} listed twice", a.path);
        }
        assert!(ASSETS.iter().any(|a| format!("/assets/{}", a.path) == SOCKJS_CLIENT_PATH));
    }

    #[test]
    fn config_json_names_the_endpoints() {
        let mut cfg = GatewayConfig::default();
        cfg.web.rest_url = "https://api.example.com/".into();
        let v: serde_json::Value = serde_json::from_slice(&config_json(&cfg)).unwrap();
        assert_eq!(v["restUrl"], "https://api.example.com");
        assert_eq!(v["restPort"], 8081);
        assert_eq!(v["sockJsPath"], "/ws");
        cfg.sockjs.enabled = false;
        let v: serde_json::Value = serde_json::from_slice(&config_json(&cfg)).unwrap();
        assert!(v["sockJsPath"].is_null());
        assert_eq!(v["sockJsWebSocket"], false);
    }
}
