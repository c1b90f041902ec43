//! The OpenAPI document states what the server enforces, and its response links lead to the
//! operations that take the returned ids (what Schemathesis' stateful phase follows).

mod common;

use common::{TestApp, TestUser, assert_problem, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

async fn document(app: &TestApp) -> Value {
    app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap()
}

/// (path, method, operation) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            ops.push((path.clone(), method.to_string(), item[*method].clone()));
        }
    }
    ops
}

fn operation_by_id<'a>(ops: &'a [(String, String, Value)], id: &str) -> &'a Value {
    &ops.iter().find(|(_, _, op)| op["operationId"] == id).unwrap_or_else(|| panic!("operation {id}")).2
}

/// The operation ids linked from `source`'s `status` response.
fn linked(ops: &[(String, String, Value)], source: &str, status: &str) -> Vec<String> {
    let links = operation_by_id(ops, source)["responses"][status]["links"].as_object().cloned().unwrap_or_default();
    links.values().map(|l| l["operationId"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn created_ids_link_to_every_operation_that_takes_them() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let under = |base: &str| -> Vec<String> {
        ops.iter()
            .filter(|(path, _, _)| path == base || path.starts_with(&format!("{base}/")))
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_string())
            .collect()
    };
    let conversation_ops = under("/api/v1/conversations/{id}");
    let message_ops = under("/api/v1/messages/{id}");
    assert!(conversation_ops.len() >= 12 && message_ops.len() >= 10, "{conversation_ops:?} {message_ops:?}");
    for status in ["201", "200"] {
        let from_create = linked(&ops, "create", status);
        for op in &conversation_ops {
            assert!(from_create.contains(op), "create {status} links to {op}");
        }
        let from_send = linked(&ops, "send", status);
        for op in &message_ops {
            assert!(from_send.contains(op), "send {status} links to {op}");
        }
    }
    let from_register = linked(&ops, "register", "201");
    for op in ["user", "search", "login", "token"] {
        assert!(from_register.contains(&op.to_string()), "register links to {op}");
    }
    assert!(linked(&ops, "login", "200").contains(&"refresh".to_string()));
}

#[tokio::test]
async fn every_link_names_an_operation_and_its_parameters() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let mut count = 0;
    for (path, method, op) in &ops {
        for (status, response) in op["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().cloned().unwrap_or_default() {
                let target = operation_by_id(&ops, link["operationId"].as_str().unwrap());
                let params: Vec<&str> = target["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                for (param, expression) in link["parameters"].as_object().cloned().unwrap_or_default() {
                    assert!(params.contains(&param.as_str()), "{method} {path} {status} link {name}: {param}");
                    assert!(expression.as_str().unwrap().starts_with("$response.body#/"), "{expression}");
                }
                // Every path parameter of the target comes from the link, except an emoji.
                for p in target["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" && p["name"] != "emoji" {
                        assert!(
                            link["parameters"].get(p["name"].as_str().unwrap()).is_some(),
                            "{method} {path} {status} link {name} sets path parameter {}",
                            p["name"]
                        );
                    }
                }
                count += 1;
            }
        }
    }
    assert!(count >= 40, "{count} links");
}

/// Follows the links the way a stateful tester does: the runtime expressions name fields
/// that the source responses really have.
#[tokio::test]
async fn link_expressions_resolve_against_real_responses() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app.post("/api/v1/conversations", &alice.token, json!({"type": "CHANNEL", "name": "links"})).await;
    assert_eq!(res.status(), 201);
    let conv: Value = res.json().await.unwrap();
    let res = app
        .post(
            &format!("/api/v1/conversations/{}/messages", conv["conversationId"].as_str().unwrap()),
            &alice.token,
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let msg: Value = res.json().await.unwrap();
    let doc = document(&app).await;
    let ops = operations(&doc);
    for (source, body) in [("create", &conv), ("send", &msg)] {
        let links = operation_by_id(&ops, source)["responses"]["201"]["links"].as_object().unwrap().clone();
        for (name, link) in links {
            for (_, expression) in link["parameters"].as_object().cloned().unwrap_or_default() {
                let pointer = expression.as_str().unwrap().trim_start_matches("$response.body#");
                let value = body.pointer(pointer).unwrap_or_else(|| panic!("{source} link {name}: {pointer}"));
                assert!(value.as_str().is_some_and(|s| Uuid::parse_str(s).is_ok()), "{source} {name}: {value}");
            }
        }
    }
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

#[tokio::test]
async fn request_schemas_state_the_server_rules() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let variants = schema(&doc, "CreateConversationRequest")["oneOf"].as_array().unwrap().clone();
    let kinds: Vec<&Value> = variants.iter().map(|v| &v["properties"]["type"]["enum"][0]).collect();
    assert_eq!(kinds, [&json!("CHANNEL"), &json!("DM"), &json!("GROUP_DM")]);
    assert!(variants[0]["required"].as_array().unwrap().contains(&json!("name")));
    assert!(variants[0]["properties"]["name"]["pattern"].is_string());
    assert_eq!(
        (&variants[1]["properties"]["memberIds"]["minItems"], &variants[1]["properties"]["memberIds"]["maxItems"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(variants[2]["properties"]["memberIds"]["minItems"], 2);
    let grants: Vec<&Value> = schema(&doc, "OAuthTokenRequest")["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["properties"]["grant_type"]["enum"][0])
        .collect();
    assert_eq!(grants, [&json!("password"), &json!("refresh_token"), &json!("client_credentials")]);
    let register = &schema(&doc, "RegisterRequest")["properties"];
    assert_eq!((&register["username"]["minLength"], &register["username"]["maxLength"]), (&json!(3), &json!(32)));
    assert_eq!((&register["password"]["minLength"], &register["password"]["maxLength"]), (&json!(8), &json!(256)));
    assert!(register["displayName"]["pattern"].is_string());
    let slow = &schema(&doc, "SettingsDto")["properties"]["slowModeSeconds"];
    assert_eq!((&slow["minimum"], &slow["maximum"]), (&json!(0), &json!(86_400)));
    for name in ["SendMessageRequest", "EditMessageRequest"] {
        assert!(schema(&doc, name)["properties"]["text"]["pattern"].is_string(), "{name}");
    }
    let ack = &schema(&doc, "AckRequest")["properties"]["seenSeq"];
    assert_eq!((&ack["minimum"], &ack["maximum"]), (&json!(0), &json!(i64::MAX)));
    let react = &doc["paths"]["/api/v1/messages/{id}/reactions/{emoji}"]["put"]["parameters"][1];
    assert_eq!(react["name"], "emoji");
    assert!(react["schema"]["pattern"].is_string());
}

async fn status(app: &TestApp, method: Method, path: &str, user: &TestUser, body: Value) -> u16 {
    app.send_json(method, path, &user.token, body).await.status().as_u16()
}

/// The edges of what the patterns allow are what the server accepts, and just past them what
/// it rejects.
#[tokio::test]
async fn pattern_edges_match_the_server() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let create = |name: String| json!({"type": "CHANNEL", "name": name});
    let post = Method::POST;
    let padded = format!(" \t{} \n", "n".repeat(80));
    assert_eq!(status(&app, post.clone(), "/api/v1/conversations", &alice, create(padded)).await, 201);
    for bad in ["   ".to_string(), "a\u{1}b".to_string(), "n".repeat(81), "\u{3000}".to_string()] {
        assert_eq!(
            status(&app, post.clone(), "/api/v1/conversations", &alice, create(bad.clone())).await,
            422,
            "{bad:?}"
        );
    }
    // Display name: at most 64 characters once trimmed.
    let register = |username: &str, display: String| json!({"username": username, "password": "password-long", "displayName": display});
    let res = app.client.post(app.url("/api/v1/auth/register"));
    let res = res.json(&register("bob", format!("  {}  ", "é".repeat(64)))).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let res = app.client.post(app.url("/api/v1/auth/register"));
    let res = res.json(&register("carol", "d".repeat(65))).send().await.unwrap();
    assert_problem(res, 422).await;
    // Message text: not blank (Unicode whitespace); type: no control characters.
    let conv = app.channel(&alice, "edges", false).await;
    let send = format!("/api/v1/conversations/{conv}/messages");
    assert_eq!(status(&app, post.clone(), &send, &alice, json!({"text": "\u{2003}\u{a0}\n"})).await, 422);
    assert_eq!(status(&app, post.clone(), &send, &alice, json!({"text": "\u{1c}"})).await, 422);
    assert_eq!(status(&app, post.clone(), &send, &alice, json!({"text": "\u{200b}\u{feff}"})).await, 422);
    assert_eq!(status(&app, post.clone(), &send, &alice, json!({"text": "two\nlines\tand a tab"})).await, 201);
    assert_eq!(status(&app, post.clone(), &send, &alice, json!({"text": "x", "type": "a\u{7f}"})).await, 422);
    // Emoji: no whitespace or control characters.
    let msg = app.say(&alice, conv, "react to me").await;
    let id = msg["messageId"].as_str().unwrap();
    let react = |emoji: &str| format!("/api/v1/messages/{id}/reactions/{emoji}");
    assert_eq!(app.req(Method::PUT, &react("%F0%9F%91%8D"), &alice.token).send().await.unwrap().status(), 204);
    assert_eq!(app.req(Method::PUT, &react("a%C2%A0b"), &alice.token).send().await.unwrap().status(), 422);
    assert_eq!(app.req(Method::PUT, &react("a%C2%85"), &alice.token).send().await.unwrap().status(), 422);
}

/// Regression (found by Schemathesis): `1600.0` is a JSON Schema `integer`, and the server
/// answered 422 "invalid type: floating point, expected i64" for it. Integral numbers in
/// any notation are integers now; fractions are still rejected.
#[tokio::test]
async fn integer_fields_accept_integral_numbers_in_float_notation() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let conv = app.channel(&alice, "ints", false).await;
    app.say(&alice, conv, "one").await;
    let ack = format!("/api/v1/conversations/{conv}/ack");
    let res = app.post(&ack, &alice.token, json!({"deliveredSeq": 1.0, "seenSeq": 0.0})).await;
    assert_eq!(res.status(), 200);
    let member: Value = res.json().await.unwrap();
    assert_eq!(member["deliveredSeq"], 1);
    let res = app.post(&ack, &alice.token, json!({"seenSeq": 1.5})).await;
    assert_eq!(assert_problem(res, 422).await["field"], "seenSeq");

    let settings = |slow: Value| json!({"settings": {"allowReactions": true, "allowPins": true, "allowThread": true, "slowModeSeconds": slow}});
    let patch = format!("/api/v1/conversations/{conv}");
    let res = app.send_json(Method::PATCH, &patch, &alice.token, settings(json!(60.0))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["settings"]["slowModeSeconds"], 60);
    let res = app.send_json(Method::PATCH, &patch, &alice.token, settings(json!(0.5))).await;
    assert_eq!(assert_problem(res, 422).await["field"], "settings.slowModeSeconds");
    let create = json!({"type": "CHANNEL", "name": "slow", "settings": {"allowReactions": true, "allowPins": true,
        "allowThread": true, "slowModeSeconds": 2.0}});
    assert_eq!(app.post("/api/v1/conversations", &alice.token, create).await.status(), 201);
}
