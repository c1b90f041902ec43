//! The OpenAPI document and the health endpoints.

mod common;

use common::{assert_problem, spawn_app};
use reqwest::Method;
use serde_json::Value;

/// The endpoints the REST API promises (method, path).
const EXPECTED: &[(&str, &str)] = &[
    ("post", "/auth/login"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("post", "/oauth2/token"),
    ("get", "/api/v1/users/me"),
    ("get", "/api/v1/users/{userId}"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{userId}/presence"),
    ("get", "/api/v1/conversations/{id}/presence"),
    ("post", "/api/v1/conversations"),
    ("get", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/public"),
    ("get", "/api/v1/conversations/{id}"),
    ("patch", "/api/v1/conversations/{id}"),
    ("post", "/api/v1/conversations/{id}/join"),
    ("post", "/api/v1/conversations/{id}/leave"),
    ("get", "/api/v1/conversations/{id}/members"),
    ("post", "/api/v1/conversations/{id}/members"),
    ("delete", "/api/v1/conversations/{id}/members/{userId}"),
    ("post", "/api/v1/conversations/{id}/messages"),
    ("get", "/api/v1/conversations/{id}/messages"),
    ("get", "/api/v1/messages/{id}"),
    ("patch", "/api/v1/messages/{id}"),
    ("delete", "/api/v1/messages/{id}"),
    ("get", "/api/v1/messages/{id}/versions"),
    ("get", "/api/v1/messages/{id}/replies"),
    ("put", "/api/v1/messages/{id}/reactions/{emoji}"),
    ("delete", "/api/v1/messages/{id}/reactions/{emoji}"),
    ("get", "/api/v1/messages/{id}/reactions"),
    ("put", "/api/v1/messages/{id}/pin"),
    ("delete", "/api/v1/messages/{id}/pin"),
    ("get", "/api/v1/conversations/{id}/pins"),
    ("post", "/api/v1/conversations/{id}/ack"),
    ("get", "/api/v1/conversations/{id}/events"),
    ("post", "/api/v1/conversations/{id}/attachments"),
    ("get", "/api/v1/attachments/{id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/actuator/health"),
    ("get", "/openapi.json"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

async fn document() -> (common::TestApp, Value) {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    (app, doc)
}

#[tokio::test]
async fn openapi_is_3_1_with_bearer_jwt_scheme() {
    let (_app, doc) = document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(doc, serde_json::to_value(chat_core::rest::openapi()).unwrap());
}

#[tokio::test]
async fn every_promised_endpoint_is_documented() {
    let (_app, doc) = document().await;
    for (method, path) in EXPECTED {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} documented");
    }
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let (_app, doc) = document().await;
    let mut seen = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let id = item[*method]["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} operationId"));
            assert!(seen.insert(id.to_string()), "duplicate operationId {id}");
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (app, doc) = document().await;
    let id = uuid::Uuid::now_v7().to_string();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let url = path.replace("{id}", &id).replace("{userId}", &id).replace("{emoji}", "%F0%9F%91%8D");
            let res = app.client.request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), app.url(&url));
            let res = res.send().await.unwrap();
            let status = res.status().as_u16();
            assert_ne!(status, 405, "{method} {path} routed");
            if status == 404 {
                let body: Value = res.json().await.unwrap();
                assert!(!body["detail"].as_str().unwrap_or("").starts_with("no route"), "{method} {path} routed");
            }
            count += 1;
        }
    }
    assert!(count >= EXPECTED.len(), "{count} operations");
}

#[tokio::test]
async fn every_operation_documents_success_and_problem_errors() {
    let (_app, doc) = document().await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|k| k.starts_with('2')), "{method} {path}: a success response");
            assert!(responses.contains_key("500"), "{method} {path}: 500");
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}: 401/403");
            }
            if op.get("requestBody").is_some() && path != "/oauth2/token" {
                for s in ["413", "415", "422"] {
                    assert!(responses.contains_key(s), "{method} {path}: {s}");
                }
            }
            for (status, response) in responses.iter().filter(|(k, _)| !k.starts_with('2')) {
                let content = response["content"].as_object().unwrap();
                if path == "/oauth2/token" {
                    assert!(content.contains_key("application/json"), "{method} {path} {status}: OAuth error JSON");
                } else {
                    let schema = &content["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
                }
            }
        }
    }
}

#[tokio::test]
async fn liveness_and_seed_health_are_up() {
    let app = spawn_app().await;
    for path in ["/healthz", "/actuator/health", "/readyz"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "UP", "{path}");
    }
}

#[tokio::test]
async fn readyz_is_503_problem_when_the_database_is_down() {
    let app = spawn_app().await;
    app.sql.close().await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_problem(res, 503).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
