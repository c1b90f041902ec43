//! Cross-origin requests (CORS, the Fetch standard) to the REST API: the web client served by
//! the gateway (port 8082) calls this API on another origin (port 8081).
//!
//! The API authenticates with bearer tokens (`Authorization` header); the policy never allows
//! credentials (`Access-Control-Allow-Credentials` is not sent), so a foreign page cannot make
//! a browser send the HttpOnly token cookies cross-origin and read the answer. A page on an
//! allowed origin only gets what the token it holds already allows. The `accessToken` cookie
//! authenticates safe methods (GET, HEAD) only (`extract::bearer_token`), so a cross-site form
//! post that carries it changes nothing (no CSRF).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which browser origins may call the API cross-origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsPolicy {
    /// Every origin (`Access-Control-Allow-Origin: *`), without credentials. The default: the
    /// gateway's web client may be opened under any host name (`localhost`, an address, a
    /// DNS name).
    #[default]
    AnyOrigin,
    /// Only these origins, exact match (`scheme://host[:port]`, e.g. `http://localhost:8082`),
    /// echoed in `Access-Control-Allow-Origin`, without credentials. An empty list allows none.
    Origins(Vec<HeaderValue>),
    /// No CORS headers at all: browsers refuse cross-origin reads.
    Off,
}

/// A configured origin that is not a valid header value.
#[derive(Debug, thiserror::Error)]
#[error("invalid CORS origin {0:?}: expected scheme://host[:port] in visible ASCII")]
pub struct InvalidOrigin(pub String);

impl CorsPolicy {
    /// The policy of a configured list: `["*"]` is [`CorsPolicy::AnyOrigin`], an empty list is
    /// [`CorsPolicy::Off`], else [`CorsPolicy::Origins`] (trailing `/` removed).
    ///
    /// # Errors
    /// [`InvalidOrigin`] for an entry with characters a header value cannot hold, or without
    /// `://`.
    pub fn from_list(origins: &[String]) -> Result<CorsPolicy, InvalidOrigin> {
        if origins.is_empty() {
            return Ok(CorsPolicy::Off);
        }
        if origins.iter().any(|o| o == "*") {
            return Ok(CorsPolicy::AnyOrigin);
        }
        origins
            .iter()
            .map(|o| {
                let trimmed = o.trim_end_matches('/');
                if !trimmed.contains("://") {
                    return Err(InvalidOrigin(o.clone()));
                }
                HeaderValue::from_str(trimmed).map_err(|_| InvalidOrigin(o.clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(CorsPolicy::Origins)
    }

    /// The tower-http layer of this policy (`None` for [`CorsPolicy::Off`]): methods `GET`,
    /// `POST`, `PUT`, `PATCH`, `DELETE`; request headers `Authorization`, `Content-Type`;
    /// exposed response headers `Location`, `Content-Disposition`, `Retry-After`; preflights
    /// cached for an hour.
    pub fn layer(&self) -> Option<CorsLayer> {
        let origin = match self {
            CorsPolicy::AnyOrigin => AllowOrigin::any(),
            CorsPolicy::Origins(list) => AllowOrigin::list(list.iter().cloned()),
            CorsPolicy::Off => return None,
        };
        Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::LOCATION, header::CONTENT_DISPOSITION, HeaderName::from_static("retry-after")])
                .max_age(Duration::from_secs(3600)),
        )
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(policy: &CorsPolicy) -> Router {
        let router = Router::new().route("/api/v1/x", get(|| async { "ok" }));
        match policy.layer() {
            Some(layer) => router.layer(layer),
            None => router,
        }
    }

    async fn send(app: Router, req: Request<Body>) -> axum::http::Response<Body> {
        app.oneshot(req).await.unwrap()
    }

    fn preflight(origin: &str) -> Request<Body> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/x")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PATCH")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn any_origin_answers_preflight_without_credentials() {
        let res = send(app(&CorsPolicy::AnyOrigin), preflight("http://localhost:8082")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("PATCH"));
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[tokio::test]
    async fn listed_origin_is_echoed_and_others_get_no_header() {
        let policy = CorsPolicy::from_list(&["http://localhost:8082/".into()]).unwrap();
        let req = Request::builder()
            .uri("/api/v1/x")
            .header(header::ORIGIN, "http://localhost:8082")
            .body(Body::empty())
            .unwrap();
        let res = send(app(&policy), req).await;
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:8082");
        let exposed = res.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        assert!(exposed.contains("location"), "{exposed}");
        let res = send(app(&policy), preflight("http://evil.example")).await;
        assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn off_sends_no_cors_headers() {
        assert_eq!(CorsPolicy::from_list(&[]).unwrap(), CorsPolicy::Off);
        let req = Request::builder()
            .uri("/api/v1/x")
            .header(header::ORIGIN, "http://localhost:8082")
            .body(Body::empty())
            .unwrap();
        let res = send(app(&CorsPolicy::Off), req).await;
        assert!(res.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn list_parsing() {
        assert_eq!(CorsPolicy::from_list(&["*".into()]).unwrap(), CorsPolicy::AnyOrigin);
        assert!(CorsPolicy::from_list(&["localhost:8082".into()]).is_err());
        assert!(CorsPolicy::from_list(&["http://a\nb".into()]).is_err());
    }
}
