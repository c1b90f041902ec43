//! `GET /api/v1/search` through the REST API of a server on port 0, as `serve` wires it: the
//! tantivy index fed by the outbox relay → in-process event log → search indexer. Results
//! are awaited by polling the API (bounded; the index lags a commit by up to the indexer's
//! refresh interval, 1 s by default).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_auth::Authenticator;
use chat_core::rest::{self, AppState};
use chat_core::service::{ChatService, ServiceConfig};
use chat_pipeline::{EventLog, InProcessLog, OutboxRelay, RelayConfig};
use chat_search::{Indexer, IndexerConfig, SearchStore, TantivyIndex};
use chat_storage::Store;
use common::{TestApp, assert_problem, fresh_store, spawn_app, test_auth_config};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A server with search, and what keeps its index fed.
struct SearchApp {
    base: String,
    client: Client,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for SearchApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct User {
    id: Uuid,
    token: String,
}

impl SearchApp {
    async fn spawn() -> SearchApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let sql = fresh_store(&dir).await;
        let store: Arc<dyn Store> = Arc::new(sql.clone());
        let search_store: Arc<dyn SearchStore> = Arc::new(sql.clone());
        let auth = Authenticator::new(test_auth_config(), store.clone(), store.clone()).await.expect("authenticator");
        let index = TantivyIndex::open(&dir.path().join("index"), search_store.clone()).expect("index");
        let service =
            ChatService::new(store.clone(), ServiceConfig { max_batch: 64, writers: 1, ..ServiceConfig::default() })
                .with_search(Arc::new(index.clone()));
        let log = Arc::new(InProcessLog::new(4, 10_000));
        let cancel = CancellationToken::new();
        let relay = OutboxRelay::new(store.clone(), log.clone(), service.commit_notify(), RelayConfig::default());
        tokio::spawn(relay.run(cancel.clone()));
        let indexer = Indexer::new(index, search_store, log as Arc<dyn EventLog>, IndexerConfig::default());
        tokio::spawn(indexer.run(cancel.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::new(service, auth);
        let shutdown = cancel.clone();
        tokio::spawn(async move { rest::serve(listener, state, shutdown.cancelled_owned()).await.expect("serve") });
        SearchApp { base, client: Client::new(), cancel, _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    async fn user(&self, name: &str) -> User {
        let password = format!("password-{name}");
        let res = self
            .client
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({"username": name, "password": password}))
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 201);
        let id = res.json::<Value>().await.expect("json")["userId"].as_str().expect("userId").parse().expect("uuid");
        let res = self
            .client
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"username": name, "password": password}))
            .send()
            .await
            .expect("login");
        let token = res.json::<Value>().await.expect("json")["data"]["accessToken"].as_str().expect("token").to_owned();
        User { id, token }
    }

    async fn channel(&self, owner: &User, name: &str, members: &[&User]) -> Uuid {
        let ids: Vec<Uuid> = members.iter().map(|u| u.id).collect();
        let body = json!({"type": "CHANNEL", "name": name, "isPrivate": true, "memberIds": ids});
        let res = self.call(Method::POST, "/api/v1/conversations", &owner.token, Some(body)).await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.expect("json")["conversationId"].as_str().expect("id").parse().expect("uuid")
    }

    async fn say(&self, who: &User, conv: Uuid, text: &str) -> Uuid {
        let path = format!("/api/v1/conversations/{conv}/messages");
        let res = self.call(Method::POST, &path, &who.token, Some(json!({"text": text}))).await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.expect("json")["messageId"].as_str().expect("id").parse().expect("uuid")
    }

    async fn search(&self, who: &User, query: &str) -> Value {
        let res = self.call(Method::GET, &format!("/api/v1/search?{query}"), &who.token, None).await;
        assert_eq!(res.status(), 200, "search {query}");
        res.json().await.expect("json")
    }

    /// The message ids of a search, waiting (at most 30 s) until they are `want`.
    async fn until(&self, who: &User, query: &str, want: &[Uuid]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.search(who, query).await;
            if ids(&page) == want {
                return page;
            }
            assert!(Instant::now() < deadline, "search {query}: got {:?}, want {want:?}", ids(&page));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["message"]["messageId"].as_str().expect("messageId").parse().expect("uuid"))
        .collect()
}

#[tokio::test]
async fn search_finds_only_readable_messages_and_follows_edits_and_deletes() {
    let app = SearchApp::spawn().await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let general = app.channel(&alice, "general", &[&bob]).await;
    let secret = app.channel(&carol, "secret", &[]).await;
    let m1 = app.say(&alice, general, "Quarterly budget review, @bob please check").await;
    let m2 = app.say(&bob, general, "budget numbers are final").await;
    let m3 = app.say(&carol, secret, "secret budget plans").await;

    let page = app.until(&alice, "q=budget", &[m2, m1]).await;
    assert!(page.get("nextCursor").is_none(), "one page: {page}");
    let hit = &page["results"][1];
    assert_eq!(hit["conversation"]["name"], "general");
    assert_eq!(hit["message"]["text"], "Quarterly budget review, @bob please check");
    let marked: Vec<&str> = hit["snippet"]
        .as_array()
        .expect("snippet")
        .iter()
        .filter(|p| p["match"] == true)
        .map(|p| p["text"].as_str().expect("text"))
        .collect();
    assert_eq!(marked, ["budget"]);
    app.until(&carol, "q=BUDGET", &[m3]).await;

    // Filters (snake_case spellings accepted too).
    assert_eq!(ids(&app.search(&alice, &format!("q=budget&authorId={}", bob.id)).await), [m2]);
    assert_eq!(ids(&app.search(&alice, &format!("q=budget&conversation_id={general}")).await), [m2, m1]);
    assert_eq!(ids(&app.search(&bob, "mentions=me").await), [m1], "the @bob message, without words");
    assert_eq!(ids(&app.search(&alice, "mentions=me").await), Vec::<Uuid>::new());
    assert_eq!(ids(&app.search(&alice, "q=budget&hasAttachment=true").await), Vec::<Uuid>::new());
    assert_eq!(ids(&app.search(&alice, "q=budget&has_attachment=false").await), [m2, m1]);
    assert_eq!(ids(&app.search(&alice, "q=budget&to=2000-01-01T00:00:00Z").await), Vec::<Uuid>::new());
    assert_eq!(ids(&app.search(&alice, "q=budget&from=2000-01-01T00:00:00Z").await), [m2, m1]);
    let res =
        app.call(Method::GET, &format!("/api/v1/search?q=budget&conversationId={secret}"), &alice.token, None).await;
    assert!(matches!(res.status().as_u16(), 403 | 404), "a foreign conversation filter is refused: {}", res.status());

    // Pages.
    let first = app.search(&alice, "q=budget&limit=1").await;
    assert_eq!(ids(&first), [m2]);
    let cursor = first["nextCursor"].as_str().expect("nextCursor");
    let second = app.search(&alice, &format!("q=budget&limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&second), [m1]);
    assert!(second.get("nextCursor").is_none(), "{second}");

    // An edit is found by its new text only; a delete is not found at all.
    let res = app
        .call(Method::PATCH, &format!("/api/v1/messages/{m1}"), &alice.token, Some(json!({"text": "giraffe"})))
        .await;
    assert_eq!(res.status(), 200);
    app.until(&alice, "q=budget", &[m2]).await;
    app.until(&alice, "q=giraffe", &[m1]).await;
    let res = app.call(Method::DELETE, &format!("/api/v1/messages/{m2}"), &bob.token, None).await;
    assert!(res.status().is_success(), "delete: {}", res.status());
    app.until(&alice, "q=budget", &[]).await;
    app.until(&bob, "q=numbers", &[]).await;
}

#[tokio::test]
async fn bad_search_input_gets_problems() {
    let app = SearchApp::spawn().await;
    let alice = app.user("alice").await;
    for (query, status, field) in [
        ("".to_owned(), 422, "q"),
        ("?q=".to_owned(), 422, "q"),
        ("?q=%20!!!%20".to_owned(), 422, "q"),
        (format!("?q={}", "a".repeat(513)), 422, "q"),
        (format!("?q={}", (0..17).map(|i| format!("w{i}")).collect::<Vec<_>>().join("+")), 422, "q"),
        ("?q=x&limit=0".to_owned(), 422, "limit"),
        ("?q=x&limit=101".to_owned(), 422, "limit"),
        ("?q=x&from=yesterday".to_owned(), 400, "from"),
        ("?q=x&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(), 422, "to"),
        ("?q=x&cursor=bm9wZQ".to_owned(), 400, "cursor"),
        ("?q=x&mentions=you".to_owned(), 400, "mentions"),
        ("?q=x&authorId=42".to_owned(), 400, "authorId"),
    ] {
        let res = app.call(Method::GET, &format!("/api/v1/search{query}"), &alice.token, None).await;
        let body = assert_problem(res, status).await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let res = app.client.get(format!("{}/api/v1/search?q=x", app.base)).send().await.expect("request");
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn search_without_an_engine_is_unavailable() {
    let app: TestApp = spawn_app().await;
    let alice = app.user("alice").await;
    assert_problem(app.get("/api/v1/search?q=hello", &alice.token).await, 503).await;
}
