//! OpenAPI response links (OpenAPI 3.1 `links`): how the id a response returns feeds the
//! operations that take it. They document the API's flow and drive a stateful tester
//! (Schemathesis) through real ids instead of random ones that only ever get 404:
//!
//! - `POST /api/v1/conversations` (201, 200) -> every `/api/v1/conversations/{id}...`
//!   operation (`id` = `conversationId`; `userId` = `createdBy`);
//! - `POST /api/v1/conversations/{id}/messages` (201, 200) -> every `/api/v1/messages/{id}...`
//!   operation (`id` = `messageId`), a thread reply, and the conversation's lists;
//! - `POST /api/v1/conversations/{id}/members` (201) -> removing that member;
//! - `POST /api/v1/auth/register` (201) -> user lookups, logins with the registered
//!   credentials, a DM with the new user;
//! - logins and refreshes (200) -> refresh, logout and the OAuth2 `refresh_token` grant.
//!
//! Links name their target by `operationId` (unique, see the OpenAPI tests).

use serde_json::{Value, json};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

const CONVERSATION: &str = "/api/v1/conversations/{id}";
const MESSAGE: &str = "/api/v1/messages/{id}";

/// One link: from the `statuses` responses of `source` to `target`, with the target's
/// parameters (`name` -> runtime expression) and an optional request body (a JSON value
/// whose strings may be runtime expressions).
struct Spec {
    source: &'static str,
    statuses: &'static [&'static str],
    target: String,
    parameters: Vec<(&'static str, &'static str)>,
    body: Option<Value>,
    description: String,
}

fn operations(doc: &OpenApi) -> Vec<(String, &Operation)> {
    let mut ops = Vec::new();
    for (path, item) in doc.paths.paths.iter() {
        for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
            ops.push((path.clone(), op));
        }
    }
    ops
}

fn path_params(op: &Operation) -> Vec<String> {
    use utoipa::openapi::path::ParameterIn;
    op.parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path) => Some(p.name.clone()),
            _ => None,
        })
        .collect()
}

fn is_under(path: &str, base: &str) -> bool {
    path == base || path.starts_with(&format!("{base}/"))
}

/// The links of the API, derived from the document's operations where they follow a path
/// prefix (so a new `/api/v1/conversations/{id}/...` operation is linked without listing it).
fn specs(doc: &OpenApi) -> Vec<Spec> {
    let mut specs = Vec::new();
    for (path, op) in operations(doc) {
        let Some(target) = op.operation_id.clone() else { continue };
        let params = path_params(op);
        if is_under(&path, CONVERSATION) {
            let mut parameters = vec![("id", "$response.body#/conversationId")];
            // The only user a new conversation surely has: its creator.
            if params.iter().any(|p| p == "userId") {
                parameters.push(("userId", "$response.body#/createdBy"));
            }
            specs.push(Spec {
                source: "create",
                statuses: &["201", "200"],
                target: target.clone(),
                parameters,
                body: None,
                description: format!("`{target}` on the conversation (`id` = `conversationId`)"),
            });
        }
        if is_under(&path, MESSAGE) {
            specs.push(Spec {
                source: "send",
                statuses: &["201", "200"],
                target: target.clone(),
                parameters: vec![("id", "$response.body#/messageId")],
                body: None,
                description: format!("`{target}` on the message (`id` = `messageId`)"),
            });
        }
    }
    let conv_of_message = ("id", "$response.body#/conversationId");
    for target in ["history", "events", "pins", "ack"] {
        specs.push(Spec {
            source: "send",
            statuses: &["201", "200"],
            target: target.into(),
            parameters: vec![conv_of_message],
            body: None,
            description: format!("`{target}` of the message's conversation"),
        });
    }
    specs.push(Spec {
        source: "send",
        statuses: &["201", "200"],
        target: "send".into(),
        parameters: vec![conv_of_message],
        body: Some(json!({ "threadRootId": "$response.body#/messageId" })),
        description: "A thread reply to the message".into(),
    });
    specs.push(Spec {
        source: "add_member",
        statuses: &["201"],
        target: "remove_member".into(),
        parameters: vec![("id", "$response.body#/conversationId"), ("userId", "$response.body#/userId")],
        body: None,
        description: "Removes the added member".into(),
    });
    // Registration: the new user, and the credentials just registered.
    specs.push(Spec {
        source: "register",
        statuses: &["201"],
        target: "user".into(),
        parameters: vec![("userId", "$response.body#/userId")],
        body: None,
        description: "The registered user".into(),
    });
    specs.push(Spec {
        source: "register",
        statuses: &["201"],
        target: "search".into(),
        parameters: vec![("prefix", "$response.body#/username")],
        body: None,
        description: "Finds the registered user by username".into(),
    });
    specs.push(Spec {
        source: "register",
        statuses: &["201"],
        target: "create".into(),
        parameters: vec![],
        body: Some(json!({ "type": "DM", "memberIds": ["$response.body#/userId"] })),
        description: "Opens a DM with the registered user".into(),
    });
    let credentials = json!({ "username": "$request.body#/username", "password": "$request.body#/password" });
    for target in ["login", "seed_login"] {
        specs.push(Spec {
            source: "register",
            statuses: &["201"],
            target: target.into(),
            parameters: vec![],
            body: Some(credentials.clone()),
            description: "Logs in with the registered credentials".into(),
        });
    }
    specs.push(Spec {
        source: "register",
        statuses: &["201"],
        target: "token".into(),
        parameters: vec![],
        body: Some(json!({
            "grant_type": "password",
            "username": "$request.body#/username",
            "password": "$request.body#/password",
        })),
        description: "OAuth2 password grant with the registered credentials".into(),
    });
    // Refresh tokens: from every login and refresh.
    for source in ["login", "seed_login", "refresh"] {
        for target in ["refresh", "logout"] {
            specs.push(Spec {
                source,
                statuses: &["200"],
                target: target.into(),
                parameters: vec![],
                body: Some(json!({ "refreshToken": "$response.body#/data/refreshToken" })),
                description: format!("`{target}` with the refresh token"),
            });
        }
        specs.push(Spec {
            source,
            statuses: &["200"],
            target: "token".into(),
            parameters: vec![],
            body: Some(json!({ "grant_type": "refresh_token", "refresh_token": "$response.body#/data/refreshToken" })),
            description: "OAuth2 refresh_token grant with the refresh token".into(),
        });
    }
    specs.push(Spec {
        source: "token",
        statuses: &["200"],
        target: "token".into(),
        parameters: vec![],
        body: Some(json!({ "grant_type": "refresh_token", "refresh_token": "$response.body#/refresh_token" })),
        description: "OAuth2 refresh_token grant with the issued refresh token".into(),
    });
    specs
}

/// Adds the links to the responses of their source operations.
///
/// # Panics
/// When a link's source operation or response is missing (a bug caught by the tests).
pub(super) fn add(doc: &mut OpenApi) {
    for spec in specs(doc) {
        let mut link = LinkBuilder::new().operation_id(spec.target.clone()).description(spec.description);
        for (name, expression) in &spec.parameters {
            link = link.parameter(*name, *expression);
        }
        let link = link.request_body(spec.body).build();
        let mut found = false;
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                if op.operation_id.as_deref() != Some(spec.source) {
                    continue;
                }
                for status in spec.statuses {
                    let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                        panic!("link source {} has no inline {status} response", spec.source);
                    };
                    response.links.insert(spec.target.clone(), RefOr::T(link.clone()));
                }
                found = true;
            }
        }
        assert!(found, "link source operation {} exists", spec.source);
    }
}
