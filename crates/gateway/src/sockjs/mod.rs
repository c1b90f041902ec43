//! SockJS (protocol 0.3.3, as sockjs-node serves it) under `/ws`, carrying the same STOMP
//! sessions as raw WebSocket (seed: SockJS clients use `http://host:8082/ws`).
//!
//! # Endpoints
//! * `GET /ws`, `GET /ws/`: `Welcome to SockJS!\n` (a WebSocket upgrade on `/ws` is raw STOMP).
//! * `GET /ws/info`: `{"websocket":…,"origins":["*:*"],"cookie_needed":…,"entropy":<u32>}`,
//!   no-cache, CORS; `OPTIONS /ws/info`: 204 preflight (`OPTIONS, GET`), cached for a year.
//! * `GET /ws/iframe.html` (and `/ws/iframe<[0-9a-z._-]*>.html`): the page that loads
//!   sockjs-client from [`crate::config::SockJsConfig::client_url`]; `ETag` (MD5), 304 on a
//!   matching `If-None-Match`.
//! * `/ws/{server}/{session}/{transport}` (`server`, `session`: non-empty, no `/` or `.`):
//!   receiving transports `xhr` (POST, polling), `xhr_streaming` (POST, 2049-byte `h`
//!   prelude), `eventsource` (GET, `data:` lines), `htmlfile` (GET, `?c=callback`), `jsonp`
//!   (GET, `?c=callback`, polling); sending transports `xhr_send` (POST, 204) and
//!   `jsonp_send` (POST, `d=` form field or raw body, 200 `ok`); `websocket` (GET upgrade,
//!   SockJS framing, when [`crate::config::SockJsConfig::websocket`]). `OPTIONS` on the xhr
//!   paths answers the CORS preflight.
//! * `GET /ws/websocket`: raw STOMP over WebSocket (see [`crate::server`]).
//!
//! Streaming responses carry `X-Accel-Buffering: no` so that proxies do not buffer them, and
//! end after [`crate::config::SockJsConfig::streaming_limit_bytes`] (the client reconnects).
//! A send to an unknown session is answered 404 at once.
//!
//! # Mapping to STOMP
//! Each string of a client message array is one chunk of STOMP bytes (what one WebSocket
//! message is on raw WebSocket); each coalesced STOMP write is one string of an `a[...]`
//! frame. See [`session`] for the session lifecycle and buffering.

mod frames;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;

use self::frames::Framing;
use self::session::{Attach, CreateError, ReceiveOptions, Sessions};
use crate::Shared;
use crate::session::Peer;

const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";
/// One year, sockjs-node's `cache_for`.
const CACHE_SECONDS: u64 = 365 * 24 * 60 * 60;
const TEXT: &str = "text/plain; charset=UTF-8";
const JAVASCRIPT: &str = "application/javascript; charset=UTF-8";

/// State of the SockJS endpoints.
struct SockJs {
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
    iframe: String,
    iframe_etag: String,
}

/// The SockJS routes (`/ws/` and everything under `/ws/` except `/ws/websocket`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let iframe = frames::iframe_page(&shared.cfg.sockjs.client_url);
    let iframe_etag = {
        use std::hash::{Hash, Hasher};
        // Fixed keys: the same page gives the same tag on every node of one build.
        let mut hasher = std::hash::DefaultHasher::new();
        iframe.hash(&mut hasher);
        format!("\"{:016x}\"", hasher.finish())
    };
    let state = Arc::new(SockJs { shared, sessions: Arc::new(Sessions::default()), iframe, iframe_etag });
    Router::new().route("/ws/", any(dispatch)).route("/ws/{*rest}", any(dispatch)).with_state(state)
}

/// `GET /ws` without an upgrade: the welcome text (other methods: 405).
pub(crate) fn welcome(method: &Method) -> Response {
    if method != Method::GET {
        return method_not_allowed(&[Method::GET]);
    }
    ([(header::CONTENT_TYPE, TEXT)], "Welcome to SockJS!\n").into_response()
}

/// The transports under `/ws/{server}/{session}/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Websocket,
    Xhr,
    XhrSend,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp,
    JsonpSend,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "websocket" => Kind::Websocket,
            "xhr" => Kind::Xhr,
            "xhr_send" => Kind::XhrSend,
            "xhr_streaming" => Kind::XhrStreaming,
            "eventsource" => Kind::EventSource,
            "htmlfile" => Kind::HtmlFile,
            "jsonp" => Kind::Jsonp,
            "jsonp_send" => Kind::JsonpSend,
            _ => return None,
        })
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Kind::Xhr | Kind::XhrSend | Kind::XhrStreaming => &[Method::POST, Method::OPTIONS],
            Kind::JsonpSend => &[Method::POST],
            Kind::Websocket | Kind::EventSource | Kind::HtmlFile | Kind::Jsonp => &[Method::GET],
        }
    }
}

/// A parsed path under `/ws`.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Welcome,
    Info,
    Iframe,
    RawWebsocket,
    Transport { session: String, kind: Kind },
}

impl Route {
    /// `rest` is the path after `/ws` (sockjs-node's dispatcher: an optional trailing `/`).
    fn parse(rest: &str) -> Option<Route> {
        if rest.is_empty() || rest == "/" {
            return Some(Route::Welcome);
        }
        let trimmed = rest.strip_suffix('/').unwrap_or(rest);
        match trimmed {
            "/info" => return Some(Route::Info),
            "/websocket" => return Some(Route::RawWebsocket),
            _ => {}
        }
        if let Some(name) = trimmed.strip_prefix("/iframe").and_then(|n| n.strip_suffix(".html"))
            && name.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Some(Route::Iframe);
        }
        let mut parts = trimmed.strip_prefix('/')?.split('/');
        let (server, session, transport) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let valid_id = |s: &str| !s.is_empty() && !s.contains('.');
        if !valid_id(server) || !valid_id(session) {
            return None;
        }
        Some(Route::Transport { session: session.to_owned(), kind: Kind::parse(transport)? })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::Welcome | Route::Iframe | Route::RawWebsocket => &[Method::GET],
            Route::Info => &[Method::OPTIONS, Method::GET],
            Route::Transport { kind, .. } => kind.methods(),
        }
    }
}

async fn dispatch(State(sj): State<Arc<SockJs>>, req: Request) -> Response {
    let rest = req.uri().path().strip_prefix("/ws").unwrap_or_default();
    let Some(route) = Route::parse(rest) else { return not_found() };
    if let Route::Transport { kind: Kind::Websocket, .. } = route
        && !sj.shared.cfg.sockjs.websocket
    {
        return not_found();
    }
    if !route.methods().contains(req.method()) {
        return method_not_allowed(route.methods());
    }
    if !matches!(route, Route::Welcome | Route::Iframe)
        && let Some(refused) = refuse_origin(&sj.shared, req.headers())
    {
        return refused;
    }
    match route {
        Route::Welcome => welcome(req.method()),
        Route::Iframe => sj.iframe(req.headers()),
        Route::RawWebsocket => crate::server::raw_websocket(sj.shared.clone(), req).await,
        Route::Info if req.method() == Method::OPTIONS => {
            let mut headers = sj.base_headers(req.headers(), true);
            options_headers(&mut headers, "OPTIONS, GET");
            (StatusCode::NO_CONTENT, headers).into_response()
        }
        Route::Info => sj.info(req.headers()),
        Route::Transport { kind, .. } if req.method() == Method::OPTIONS => {
            let _ = kind;
            let mut headers = sj.base_headers(req.headers(), true);
            options_headers(&mut headers, "OPTIONS, POST");
            (StatusCode::NO_CONTENT, headers).into_response()
        }
        Route::Transport { session, kind } => match kind {
            Kind::Websocket => sj.websocket(req).await,
            Kind::XhrSend | Kind::JsonpSend => sj.send(&session, kind, req).await,
            _ => sj.receive(&session, kind, &req),
        },
    }
}

/// 403 when the request's `Origin` is not in `allowed_origins` (when that list is set).
fn refuse_origin(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())?;
    let allowed = &shared.cfg.allowed_origins;
    if allowed.is_empty() || allowed.iter().any(|a| a == origin) {
        return None;
    }
    Some((StatusCode::FORBIDDEN, "origin not allowed").into_response())
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, TEXT)], "404 Error: Page not found\n").into_response()
}

fn method_not_allowed(methods: &[Method]) -> Response {
    let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response()
}

/// sockjs-node's error answer: the status and a plain message.
fn error(mut headers: HeaderMap, status: StatusCode, message: &'static str) -> Response {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    (status, headers, message).into_response()
}

/// `Cache-Control`/`Expires` for one year (sockjs-node's `cache_for`).
fn cache_for(headers: &mut HeaderMap) {
    let cache = format!("public, max-age={CACHE_SECONDS}");
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).expect("ascii"));
    let expires = http_date(SystemTime::now() + Duration::from_secs(CACHE_SECONDS));
    if let Ok(v) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, v);
    }
}

/// The preflight answer's headers (status 204).
fn options_headers(headers: &mut HeaderMap, methods: &'static str) {
    cache_for(headers);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CACHE_SECONDS));
}

/// CORS headers: the request's `Origin` (with credentials) or `*` without one.
fn cors(request: &HeaderMap, out: &mut HeaderMap, null_is_any: bool) {
    match request.get(header::ORIGIN) {
        Some(origin) if !(null_is_any && origin.as_bytes() == b"null") => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        _ => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The pairs of an `application/x-www-form-urlencoded` string, decoded.
fn form_pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (crate::server::percent_decode(k), crate::server::percent_decode(v))
    })
}

/// The value of query parameter `name`, percent-decoded.
fn query_param(req: &Request, name: &str) -> Option<String> {
    form_pairs(req.uri().query()?).find(|(k, _)| k == name).map(|(_, v)| v)
}

fn peer(req: &Request) -> Peer {
    Peer {
        addr: req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        user_agent: req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        query_token: query_param(req, "token"),
    }
}

impl SockJs {
    /// Headers every transport answer carries: `JSESSIONID` when cookies are needed, and CORS
    /// (`with_cors`).
    fn base_headers(&self, request: &HeaderMap, with_cors: bool) -> HeaderMap {
        let mut out = HeaderMap::new();
        if self.shared.cfg.sockjs.cookie_needed {
            let jsid = request
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| c.trim().strip_prefix("JSESSIONID=").map(str::to_owned))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "dummy".into());
            if let Ok(v) = HeaderValue::from_str(&format!("JSESSIONID={jsid}; path=/")) {
                out.insert(header::SET_COOKIE, v);
            }
        }
        if with_cors {
            cors(request, &mut out, false);
        }
        out
    }

    fn info(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::new();
        cors(request, &mut headers, false);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
        let entropy = uuid::Uuid::new_v4().as_u128() as u32;
        let cfg = &self.shared.cfg.sockjs;
        let body = format!(
            r#"{{"websocket":{},"origins":["*:*"],"cookie_needed":{},"entropy":{entropy}}}"#,
            cfg.websocket, cfg.cookie_needed
        );
        (headers, body).into_response()
    }

    fn iframe(&self, request: &HeaderMap) -> Response {
        if request.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == self.iframe_etag.as_bytes()) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        let mut headers = HeaderMap::new();
        cache_for(&mut headers);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
        if let Ok(etag) = HeaderValue::from_str(&self.iframe_etag) {
            headers.insert(header::ETAG, etag);
        }
        (headers, self.iframe.clone()).into_response()
    }

    /// A receiving transport: attach to (or create) the session and stream its frames.
    fn receive(&self, session_id: &str, kind: Kind, req: &Request) -> Response {
        let cfg = &self.shared.cfg.sockjs;
        let mut headers = self.base_headers(req.headers(), matches!(kind, Kind::Xhr | Kind::XhrStreaming));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
        let streaming_limit = cfg.streaming_limit_bytes.max(1);
        let (framing, prelude, limit) = match kind {
            Kind::Xhr => (Framing::Xhr, None, 1),
            Kind::XhrStreaming => {
                let mut prelude = "h".repeat(2048);
                prelude.push('\n');
                (Framing::Xhr, Some(prelude), streaming_limit)
            }
            Kind::EventSource => {
                cors(req.headers(), &mut headers, true);
                (Framing::EventSource, Some("\r\n".to_owned()), streaming_limit)
            }
            Kind::HtmlFile | Kind::Jsonp => {
                let Some(callback) = query_param(req, "c").or_else(|| query_param(req, "callback")) else {
                    return error(headers, StatusCode::INTERNAL_SERVER_ERROR, "\"callback\" parameter required");
                };
                let max_len = (kind == Kind::Jsonp).then_some(32);
                if !frames::valid_callback(&callback, max_len) {
                    return error(headers, StatusCode::INTERNAL_SERVER_ERROR, "invalid \"callback\" parameter");
                }
                if kind == Kind::Jsonp {
                    (Framing::Jsonp(callback), None, 1)
                } else {
                    let prelude = frames::htmlfile_prelude(&callback);
                    (Framing::HtmlFile, Some(prelude), streaming_limit)
                }
            }
            Kind::Websocket | Kind::XhrSend | Kind::JsonpSend => return not_found(),
        };
        let content_type = match kind {
            Kind::EventSource => "text/event-stream",
            Kind::HtmlFile => "text/html; charset=UTF-8",
            _ => JAVASCRIPT,
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if kind == Kind::Jsonp {
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        }
        if limit > 1 {
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        let session = match self.sessions.get_or_create(&self.shared, session_id, peer(req)) {
            Ok(s) => s,
            Err(CreateError::ShuttingDown) => {
                return error(headers, StatusCode::SERVICE_UNAVAILABLE, "shutting down");
            }
            Err(CreateError::TooMany) => {
                tracing::info!(sessions = self.sessions.len(), "SockJS session refused: max_sessions reached");
                return error(headers, StatusCode::SERVICE_UNAVAILABLE, "too many SockJS sessions");
            }
        };
        let body = match session.attach() {
            Attach::Busy => {
                let frame = frames::close_frame(frames::ANOTHER_CONNECTION);
                Body::from(session::single_frame(prelude, &framing, &frame))
            }
            Attach::Attached(attachment) => {
                let heartbeat = Duration::from_millis(cfg.heartbeat_ms.max(1));
                let options = ReceiveOptions { framing, limit, heartbeat };
                Body::from_stream(session::receive_stream(attachment, prelude, options))
            }
        };
        (headers, body).into_response()
    }

    /// xhr_send / jsonp_send: the messages go to the session's STOMP session in order.
    async fn send(&self, session_id: &str, kind: Kind, req: Request) -> Response {
        let mut headers = self.base_headers(req.headers(), kind == Kind::XhrSend);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/x-www-form-urlencoded");
        // JSON escaping can double a STOMP message; a larger body is refused whole.
        let limit = self.shared.cfg.ws_message_limit().saturating_mul(2).max(64 * 1024);
        let body = match axum::body::to_bytes(req.into_body(), limit).await {
            Ok(b) => b,
            Err(_) => return error(headers, StatusCode::PAYLOAD_TOO_LARGE, "Payload too large."),
        };
        let payload: Option<Bytes> = if kind == Kind::JsonpSend && form {
            let body = String::from_utf8_lossy(&body);
            form_pairs(&body).find(|(k, _)| k == "d").map(|(_, v)| Bytes::from(v))
        } else {
            Some(body)
        };
        let Some(payload) = payload.filter(|p| !p.is_empty()) else {
            return error(headers, StatusCode::INTERNAL_SERVER_ERROR, frames::PayloadError::Expected.message());
        };
        let messages = match frames::parse_messages(&payload, false) {
            Ok(m) => m,
            Err(e) => return error(headers, StatusCode::INTERNAL_SERVER_ERROR, e.message()),
        };
        let Some(session) = self.sessions.get(session_id) else {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
            return (StatusCode::NOT_FOUND, headers, "404 Error: Page not found\n").into_response();
        };
        session.deliver(messages).await;
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
        if kind == Kind::XhrSend {
            (StatusCode::NO_CONTENT, headers).into_response()
        } else {
            (headers, "ok").into_response()
        }
    }

    /// The SockJS `websocket` transport.
    async fn websocket(&self, req: Request) -> Response {
        if !crate::server::is_upgrade(req.headers()) {
            return (StatusCode::BAD_REQUEST, "Can \"Upgrade\" only to \"WebSocket\".").into_response();
        }
        if self.shared.shutdown.is_cancelled() {
            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
        }
        let peer = peer(&req);
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            Err(rejection) => return rejection.into_response(),
        };
        let cfg = &self.shared.cfg;
        let limit = cfg.ws_message_limit().saturating_mul(2);
        let ws = ws
            .read_buffer_size(cfg.ws_read_buffer_bytes.max(256))
            .write_buffer_size(0)
            .max_message_size(limit)
            .max_frame_size(limit);
        let shared = self.shared.clone();
        ws.on_upgrade(move |socket| async move {
            let tracker = shared.tasks.clone();
            tracker.track_future(session::serve_websocket(shared, socket, peer)).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse(""), Some(Route::Welcome));
        assert_eq!(Route::parse("/"), Some(Route::Welcome));
        assert_eq!(Route::parse("/info/"), Some(Route::Info));
        assert_eq!(Route::parse("/iframe.html"), Some(Route::Iframe));
        assert_eq!(Route::parse("/iframe-1.2.3_a.html"), Some(Route::Iframe));
        assert_eq!(Route::parse("/iframe-A.html"), None);
        assert_eq!(
            Route::parse("/000/abc/xhr_send/"),
            Some(Route::Transport { session: "abc".into(), kind: Kind::XhrSend })
        );
        assert_eq!(Route::parse("/000/a.b/xhr"), None);
        assert_eq!(Route::parse("//abc/xhr"), None);
        assert_eq!(Route::parse("/000/abc/nope"), None);
        assert_eq!(Route::parse("/000/abc/xhr/x"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }
}
