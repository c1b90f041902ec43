//! Search in `chat-sys serve` (tantivy fed from the event log, and the database engine) and
//! `chat-sys reindex`: the index deleted, rebuilt, and answering as before.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chat_sys::config::Config;
use chat_sys::reindex::SearchEngineSetting;
use chat_sys::serve::BoundAddrs;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::sync::oneshot;

fn config(dir: &std::path::Path, engine: SearchEngineSetting) -> Config {
    let mut c = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    for l in [&mut c.http, &mut c.ws, &mut c.grpc] {
        l.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
        l.port = 0;
    }
    c.auth = chat_auth::AuthConfig::for_tests();
    c.search.engine = engine;
    c
}

/// A running `serve`; dropping `stop` (or sending on it) shuts it down.
struct Server {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: Client,
}

impl Server {
    async fn start(config: Config) -> Server {
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound_tx, bound_rx) = oneshot::channel::<BoundAddrs>();
        let task = tokio::spawn(chat_sys::serve::run_with(
            config,
            async move {
                let _ = stopped.await;
            },
            move |b| {
                let _ = bound_tx.send(b);
            },
        ));
        let bound = bound_rx.await.expect("serve bound its listeners");
        Server { base: format!("http://{}", bound.http), stop, task, client: Client::new() }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.expect("serve task").expect("serve ran cleanly");
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// Registers (first time) and logs in; returns the access token.
    async fn login(&self, name: &str, register: bool) -> String {
        let creds = json!({"username": name, "password": format!("password-{name}")});
        if register {
            self.post("/api/v1/auth/register", None, creds.clone()).await;
        }
        self.post("/auth/login", None, creds).await["data"]["accessToken"].as_str().expect("token").to_owned()
    }

    async fn search(&self, token: &str, q: &str) -> Vec<String> {
        let res = self
            .client
            .get(format!("{}/api/v1/search?q={q}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("search");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["message"]["messageId"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Waits (at most 30 s) until the search answers `want`.
    async fn until(&self, token: &str, q: &str, want: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.search(token, q).await;
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "search {q}: got {got:?}, want {want:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Alice's channel with two messages; returns alice's token and the message ids, newest first.
async fn seed(server: &Server) -> (String, Vec<String>) {
    let alice = server.login("alice", true).await;
    let conv = server.post("/api/v1/conversations", Some(&alice), json!({"type": "CHANNEL", "name": "general"})).await;
    let conv = conv["conversationId"].as_str().expect("conversationId");
    let mut ids = Vec::new();
    for text in ["the kayak trip is on", "kayak paddles packed"] {
        let m =
            server.post(&format!("/api/v1/conversations/{conv}/messages"), Some(&alice), json!({"text": text})).await;
        ids.insert(0, m["messageId"].as_str().expect("messageId").to_owned());
    }
    (alice, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_searches_with_tantivy_and_reindex_rebuilds_a_deleted_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(dir.path(), SearchEngineSetting::Tantivy)).await;
    let (alice, ids) = seed(&server).await;
    server.until(&alice, "kayak", &ids).await;
    server.until(&alice, "paddles", &ids[..1]).await;
    server.shutdown().await;

    let index_dir = dir.path().join("search");
    assert!(index_dir.is_dir(), "the index lives under data_dir/search");
    std::fs::remove_dir_all(&index_dir).expect("delete the index");
    let read = chat_sys::reindex::run(&config(dir.path(), SearchEngineSetting::Tantivy)).await.expect("reindex");
    assert_eq!(read, 2);

    let server = Server::start(config(dir.path(), SearchEngineSetting::Tantivy)).await;
    let alice = server.login("alice", false).await;
    assert_eq!(server.search(&alice, "kayak").await, ids, "the rebuilt index answers as before");
    assert_eq!(server.search(&alice, "paddles").await, ids[..1]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_searches_with_the_database_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(dir.path(), SearchEngineSetting::Database)).await;
    let (alice, ids) = seed(&server).await;
    assert_eq!(server.search(&alice, "kayak").await, ids, "searchable at commit");
    assert_eq!(server.search(&alice, "KAYAK trip").await, ids[1..]);
    server.shutdown().await;
    assert!(!dir.path().join("search").exists(), "the database engine keeps no index directory");
    let read = chat_sys::reindex::run(&config(dir.path(), SearchEngineSetting::Database)).await.expect("reindex");
    assert_eq!(read, 2);
}

/// SQLite: `serve` on tantivy drops the FTS5 triggers (sends leave `messages_fts` alone); a
/// start on the database engine recreates them and rebuilds the index, so messages sent
/// under tantivy are found at once; `chat-sys core` (always the database engine) does the
/// same through `scale_out_search`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_engines_switches_the_database_full_text_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tantivy = config(dir.path(), SearchEngineSetting::Tantivy);
    let server = Server::start(tantivy.clone()).await;
    let (alice, ids) = seed(&server).await;
    server.until(&alice, "kayak", &ids).await;
    server.shutdown().await;
    let sql = chat_storage::SqlStore::connect(&tantivy.database_url(), Default::default()).await.expect("open");
    assert!(!sql.full_text_maintained().await.expect("state"), "tantivy: no FTS5 triggers");
    sql.close().await;

    let server = Server::start(config(dir.path(), SearchEngineSetting::Database)).await;
    let alice = server.login("alice", false).await;
    assert_eq!(server.search(&alice, "kayak").await, ids, "sent under tantivy, found at once after the switch");
    assert_eq!(server.search(&alice, "paddles").await, ids[..1]);
    server.shutdown().await;
    let sql = chat_storage::SqlStore::connect(&tantivy.database_url(), Default::default()).await.expect("open");
    assert!(sql.full_text_maintained().await.expect("state"), "database: the FTS5 triggers are back");
    sql.close().await;
}

#[test]
fn search_section_is_configurable() {
    let env = vec![("CHAT_SEARCH__ENGINE".to_owned(), "database".to_owned())];
    let c = chat_sys::config::load(None, &env, &Default::default()).expect("config");
    assert_eq!(c.search.engine, SearchEngineSetting::Database);
    assert_eq!(c.search.index_dir(&c.data_dir), c.data_dir.join("search"));
    assert_eq!(c.search.refresh_interval_ms, 1000, "Elasticsearch's default refresh interval");
    assert_eq!(c.search.indexer_config().refresh_interval, Duration::from_secs(1));
    let env = vec![("CHAT_SEARCH__REFRESH_INTERVAL_MS".to_owned(), "50".to_owned())];
    let c = chat_sys::config::load(None, &env, &Default::default()).expect("config");
    assert_eq!(c.search.indexer_config().refresh_interval, Duration::from_millis(50));
    assert_eq!(c.search.indexer_config().max_batch, chat_search::IndexerConfig::default().max_batch);
    let bad = vec![("CHAT_SEARCH__ENGINE".to_owned(), "lucene".to_owned())];
    let e = chat_sys::config::load(None, &bad, &Default::default()).expect_err("unknown engine");
    assert!(e.to_string().contains("lucene"), "{e}");
}
