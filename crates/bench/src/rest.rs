//! Setup over chat-sys's REST API: register users, log in, create channels with members.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::BenchError;

/// Password of every benchmark user.
pub const PASSWORD: &str = "correct horse battery";

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    /// `userId`.
    pub id: String,
    /// Access token (JWT).
    pub token: String,
}

/// A REST client of one chat-sys.
#[derive(Clone, Debug)]
pub struct Rest {
    base: String,
    http: reqwest::Client,
}

impl Rest {
    /// A client of `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap_or_default();
        Rest { base: base.trim_end_matches('/').to_string(), http }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value, BenchError> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| BenchError::Http(format!("POST {path}"), e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| BenchError::Http(format!("POST {path}"), e))?;
        if !status.is_success() {
            return Err(BenchError::HttpStatus(
                format!("POST {path}"),
                status.as_u16(),
                text.chars().take(300).collect(),
            ));
        }
        serde_json::from_str(&text).map_err(|e| BenchError::Json(format!("POST {path}"), e))
    }

    /// Registers and logs in `username`.
    ///
    /// # Errors
    /// HTTP failures or an unexpected response shape.
    pub async fn user(&self, username: &str) -> Result<User, BenchError> {
        let creds = json!({"username": username, "password": PASSWORD});
        let reg = self.post("/api/v1/auth/register", None, creds.clone()).await?;
        let id = reg
            .get("data")
            .unwrap_or(&reg)
            .get("userId")
            .and_then(Value::as_str)
            .ok_or_else(|| BenchError::Protocol("register", format!("no userId in {reg}")))?
            .to_string();
        let login = self.post("/auth/login", None, creds).await?;
        let token = login
            .pointer("/data/accessToken")
            .and_then(Value::as_str)
            .ok_or_else(|| BenchError::Protocol("login", "no data.accessToken".into()))?
            .to_string();
        Ok(User { id, token })
    }

    /// Registers `count` users named `<prefix><i>`, `concurrency` requests at a time.
    ///
    /// # Errors
    /// The first failure.
    pub async fn users(&self, prefix: &str, count: usize, concurrency: usize) -> Result<Vec<User>, BenchError> {
        let results: Vec<(usize, Result<User, BenchError>)> = futures::stream::iter(0..count)
            .map(|i| async move { (i, self.user(&format!("{prefix}{i}")).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut out: Vec<Option<User>> = vec![None; count];
        for (i, r) in results {
            out[i] = Some(r?);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Creates a public channel owned by `owner` with `members` (user ids); returns its id.
    ///
    /// # Errors
    /// HTTP failures or an unexpected response shape.
    pub async fn channel(&self, owner: &User, name: &str, members: &[String]) -> Result<String, BenchError> {
        let body = json!({"type": "CHANNEL", "name": name, "memberIds": members});
        let conv = self.post("/api/v1/conversations", Some(&owner.token), body).await?;
        conv.get("conversationId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| BenchError::Protocol("create channel", format!("no conversationId in {conv}")))
    }

    /// The latest seq of a conversation as `user` sees it (`GET .../events`, last page).
    ///
    /// # Errors
    /// HTTP failures.
    pub async fn last_seq(&self, user: &User, conversation: &str) -> Result<i64, BenchError> {
        let mut after = 0i64;
        loop {
            let url = format!("{}/api/v1/conversations/{conversation}/events?afterSeq={after}&limit=500", self.base);
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&user.token)
                .send()
                .await
                .map_err(|e| BenchError::Http("GET events".into(), e))?;
            let v: Value = resp.json().await.map_err(|e| BenchError::Http("GET events".into(), e))?;
            let items =
                v.as_array().cloned().or_else(|| v.get("data").and_then(Value::as_array).cloned()).unwrap_or_default();
            let last = items.last().and_then(|e| e.get("seq")).and_then(Value::as_i64);
            match last {
                Some(s) if items.len() == 500 => after = s,
                Some(s) => return Ok(s),
                None => return Ok(after),
            }
        }
    }

    /// The sum and count of a Prometheus summary/histogram `name` on `/metrics` (e.g.
    /// `chat_core_send_batch_size`); `None` when the server does not export it.
    pub async fn metric_sum_count(&self, name: &str) -> Option<(f64, f64)> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.ok()?.text().await.ok()?;
        let value = |suffix: &str| -> Option<f64> {
            let key = format!("{name}{suffix}");
            text.lines()
                .find(|l| l.split([' ', '{']).next() == Some(key.as_str()))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        };
        Some((value("_sum")?, value("_count")?))
    }
}
