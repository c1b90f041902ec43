//! HTTP side: the WebSocket endpoints (`/ws`, `/ws/websocket`), the handshake checks (Origin
//! allowlist, subprotocol selection), the SockJS routes (`crate::sockjs`, mounted when
//! enabled; a plain `GET /ws` is then SockJS's welcome page) and [`serve`].
//!
//! Subprotocols: `v12.stomp`, `v11.stomp`, `v10.stomp` are offered by @stomp/stompjs; the
//! server answers with the highest one offered (`v12.stomp`), or with none when the client
//! offered none (stomp.py). The STOMP version itself is negotiated by CONNECT.
//!
//! Logging: the request path is logged, never the query string (it may hold `?token=`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::session::{Peer, Session, Transport};
use crate::{Gateway, Shared};

/// Subprotocols in order of preference.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// The router with the WebSocket endpoints (and SockJS and the web client when enabled).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let router =
        Router::new().route("/ws", get(root)).route("/ws/websocket", get(websocket)).with_state(shared.clone());
    let router = if shared.cfg.web.enabled { router.merge(crate::web::router(&shared.cfg)) } else { router };
    if shared.cfg.sockjs.enabled { router.merge(crate::sockjs::router(shared)) } else { router }
}

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// `GET /ws`: raw STOMP over WebSocket on an upgrade, else SockJS's welcome page.
async fn root(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if shared.cfg.sockjs.enabled && !is_upgrade(req.headers()) {
        return crate::sockjs::welcome(req.method());
    }
    raw_websocket(shared, req).await
}

async fn websocket(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    raw_websocket(shared, req).await
}

/// Raw STOMP over WebSocket; a request without an upgrade gets 400 (as sockjs-node answers).
pub(crate) async fn raw_websocket(shared: Arc<Shared>, req: Request) -> Response {
    if !is_upgrade(req.headers()) {
        return (StatusCode::BAD_REQUEST, "Can \"Upgrade\" only to \"WebSocket\".").into_response();
    }
    let (mut parts, _) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => upgrade(State(shared), parts.headers, parts.uri, parts.extensions, ws).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// The `token` query parameter, percent-decoded.
fn query_token(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding (`%XX`, `+` as space; invalid escapes kept).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    extensions: Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin
        && !shared.cfg.allowed_origins.is_empty()
        && !shared.cfg.allowed_origins.iter().any(|a| a == origin)
    {
        tracing::info!(path = uri.path(), "WebSocket handshake refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let peer = Peer {
        addr: extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        query_token: query_token(&uri),
    };
    let cfg = &shared.cfg;
    let limit = cfg.ws_message_limit();
    let ws = ws
        .protocols(SUBPROTOCOLS)
        .read_buffer_size(cfg.ws_read_buffer_bytes.max(256))
        .write_buffer_size(0)
        .max_message_size(limit)
        .max_frame_size(limit);
    let session_shared = shared.clone();
    // A plain closure returning the session's future (not an `async` block): an async block
    // would keep its captures (the socket, the peer) for the connection's whole life, next
    // to the session future that took them over.
    ws.on_upgrade(move |socket| {
        let (transport, close) = Transport::websocket(socket);
        let tracker = session_shared.tasks.clone();
        tracker.track_future(Session::serve_websocket(session_shared, transport, peer, close))
    })
}

/// Serves `gateway` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// session flush its pending frames and close (at most `shutdown_grace_ms`), and returns.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gateway.router().into_make_service_with_connect_info::<SocketAddr>();
    let gw = gateway.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            gw.begin_shutdown();
        })
        .await;
    gateway.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_read_from_query() {
        let uri: Uri = "/ws?x=1&token=a.b%2Bc&y".parse().unwrap();
        assert_eq!(query_token(&uri).as_deref(), Some("a.b+c"));
        let uri: Uri = "/ws".parse().unwrap();
        assert_eq!(query_token(&uri), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
