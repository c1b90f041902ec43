//! This machine's limits, measured in the same run as chat-sys:
//!
//! * [`broadcast_server`]: a minimal WebSocket broadcast server (no STOMP, no storage, no
//!   authentication): a client connects to `/g/<group>`, and every WebSocket message it
//!   sends is forwarded to every connection of the group, the sender included. Queued frames
//!   to one connection are coalesced into one WebSocket message (bodies separated by `\n`, at
//!   most 64 KiB), as chat-sys coalesces. Run as its own process (`chat-bench
//!   broadcast-server`) so its CPU and memory are measured like a server's.
//! * [`sqlite_insert_rate`]: SQLite's raw insert rate of the rows one chat-sys send writes
//!   (a message, its event-log entry, its outbox row and the sequence update), in batched
//!   transactions, WAL with `synchronous=FULL` as chat-sys configures it; through rusqlite on
//!   one thread (prepared statements, no driver thread hop), i.e. the engine's own rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{RwLock, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::BenchError;

/// Frames queued per connection before it is dropped as a slow consumer.
pub const QUEUE: usize = 1024;
const COALESCE_BYTES: usize = 64 * 1024;

type Groups = Arc<RwLock<HashMap<u32, Vec<(u64, mpsc::Sender<Bytes>)>>>>;

/// Serves the broadcast protocol on `listener` until the process ends.
///
/// # Errors
/// [`BenchError::Io`] when accepting fails.
pub async fn broadcast_server(listener: TcpListener) -> Result<(), BenchError> {
    let groups: Groups = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (tcp, _) = listener.accept().await.map_err(|e| BenchError::Io("accept".into(), e))?;
        let _ = tcp.set_nodelay(true);
        let (groups, id) = (groups.clone(), ids.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let mut group = None;
            // The callback's error type is tungstenite's (an HTTP response).
            #[allow(clippy::result_large_err)]
            let cb = |req: &Request, resp: Response| {
                group = req.uri().path().strip_prefix("/g/").and_then(|g| g.parse::<u32>().ok());
                Ok(resp)
            };
            let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
            let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, cb, Some(config)).await else { return };
            let Some(group) = group else { return };
            let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
            groups.write().await.entry(group).or_default().push((id, tx));
            let (mut sink, mut stream) = ws.split();
            let writer = tokio::spawn(async move {
                let mut buf = BytesMut::new();
                while let Some(first) = rx.recv().await {
                    buf.clear();
                    buf.extend_from_slice(&first);
                    while buf.len() < COALESCE_BYTES {
                        match rx.try_recv() {
                            Ok(b) => {
                                buf.extend_from_slice(b"\n");
                                buf.extend_from_slice(&b);
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.send(Message::binary(buf.split().freeze())).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(msg)) = stream.next().await {
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let members = groups.read().await;
                for (_, tx) in members.get(&group).into_iter().flatten() {
                    // A full queue drops the frame for that member (the client counts the loss).
                    let _ = tx.try_send(data.clone());
                }
            }
            if let Some(v) = groups.write().await.get_mut(&group) {
                v.retain(|(i, _)| *i != id);
            }
            writer.abort();
        });
    }
}

/// What [`sqlite_insert_rate`] measured.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct SqliteRate {
    /// Messages (row sets) inserted.
    pub rows: u64,
    /// Messages per transaction.
    pub batch: usize,
    /// Messages per second.
    pub rows_per_sec: f64,
    /// CPU seconds this process spent.
    pub cpu_secs: f64,
}

const SCHEMA: &str = r#"
CREATE TABLE conversation_sequences (conversation_id VARCHAR(36) NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL, last_event_at BIGINT NOT NULL);
CREATE TABLE messages (message_id VARCHAR(36) NOT NULL PRIMARY KEY, conversation_id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL, client_msg_id VARCHAR(191) NULL, server_seq BIGINT NOT NULL,
    thread_root_id VARCHAR(36) NULL, text TEXT NOT NULL, type VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL, edited BIGINT NOT NULL, deleted BIGINT NOT NULL, version_count BIGINT NOT NULL,
    mentions_channel BIGINT NOT NULL);
CREATE UNIQUE INDEX ux_messages_conversation_seq ON messages (conversation_id, server_seq);
CREATE UNIQUE INDEX ux_messages_client_msg_id ON messages (conversation_id, user_id, client_msg_id);
CREATE INDEX ix_messages_thread ON messages (thread_root_id, server_seq);
CREATE INDEX ix_messages_author_time ON messages (conversation_id, user_id, created_at);
CREATE TABLE conversation_events (conversation_id VARCHAR(36) NOT NULL, seq BIGINT NOT NULL,
    event_id VARCHAR(36) NOT NULL, type VARCHAR(32) NOT NULL, actor_id VARCHAR(36) NOT NULL,
    payload TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (conversation_id, seq));
CREATE UNIQUE INDEX ux_conversation_events_event_id ON conversation_events (event_id);
CREATE TABLE message_producer_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id VARCHAR(36) NOT NULL,
    seq BIGINT NOT NULL, event_id VARCHAR(36) NOT NULL, topic VARCHAR(128) NOT NULL, payload TEXT NOT NULL,
    created_at BIGINT NOT NULL, processed_at BIGINT NULL, status VARCHAR(16) NOT NULL);
CREATE INDEX ix_outbox_status_id ON message_producer_outbox (status, id);
"#;

/// Inserts `rows` messages spread over `conversations` conversations, `batch` per
/// transaction, into a fresh SQLite file under `dir` (same tables and indexes as chat-sys's
/// message path: a `messages` row, a `conversation_events` row, an outbox row and the
/// `conversation_sequences` update per message; JSON payloads of the message's size).
///
/// # Errors
/// [`BenchError::Sqlite`] on any SQL failure; [`BenchError::Param`] for zero sizes.
pub async fn sqlite_insert_rate(
    dir: &std::path::Path,
    rows: u64,
    batch: usize,
    conversations: usize,
    body_bytes: usize,
) -> Result<SqliteRate, BenchError> {
    if rows == 0 || batch == 0 || conversations == 0 {
        return Err(BenchError::Param("sqlite", "rows, batch and conversations must be positive".into()));
    }
    let path = dir.join("limit.db");
    tokio::task::spawn_blocking(move || sqlite_insert_blocking(&path, rows, batch, conversations, body_bytes))
        .await
        .map_err(|e| BenchError::Server("sqlite limit".into(), e.to_string()))?
}

/// [`sqlite_insert_rate`] on the calling thread: rusqlite, cached prepared statements, one
/// transaction per `batch` messages.
fn sqlite_insert_blocking(
    path: &std::path::Path,
    rows: u64,
    batch: usize,
    conversations: usize,
    body_bytes: usize,
) -> Result<SqliteRate, BenchError> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    conn.execute_batch(SCHEMA)?;
    let convs: Vec<String> = (0..conversations).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for c in &convs {
        conn.execute("INSERT INTO conversation_sequences VALUES (?1, 0, 0)", [c])?;
    }
    let user = uuid::Uuid::now_v7().to_string();
    let text = "x".repeat(body_bytes);
    let mut seqs = vec![0i64; conversations];
    let cpu0 = crate::procfs::ProcSample::read(std::process::id()).map(|s| s.cpu_secs).unwrap_or(0.0);
    let start = Instant::now();
    let mut done = 0u64;
    while done < rows {
        let n = (rows - done).min(batch as u64);
        let tx = conn.transaction()?;
        {
            let mut seq_upd = tx.prepare_cached(
                "UPDATE conversation_sequences SET last_seq = ?1, last_event_at = ?2 WHERE conversation_id = ?3",
            )?;
            let mut msg_ins = tx.prepare_cached(
                "INSERT INTO messages VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, 'default', ?7, ?7, 0, 0, 0, 0)",
            )?;
            let mut ev_ins =
                tx.prepare_cached("INSERT INTO conversation_events VALUES (?1, ?2, ?3, 'MESSAGE', ?4, ?5, ?6)")?;
            let mut ob_ins = tx.prepare_cached(
                "INSERT INTO message_producer_outbox (conversation_id, seq, event_id, topic, payload, created_at, status) VALUES (?1, ?2, ?3, 'chat.events', ?4, ?5, 'PENDING')",
            )?;
            for i in 0..n {
                let c = ((done + i) % conversations as u64) as usize;
                seqs[c] += 1;
                let seq = seqs[c];
                let (mid, eid) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
                let now = std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_millis() as i64).unwrap_or(0);
                let conv = &convs[c];
                let payload = format!(
                    "{{\"type\":\"MESSAGE\",\"message\":{{\"messageId\":\"{mid}\",\"conversationId\":\"{conv}\",\"userId\":\"{user}\",\"serverSeq\":{seq},\"text\":\"{text}\"}}}}"
                );
                seq_upd.execute(rusqlite::params![seq, now, conv])?;
                msg_ins.execute(rusqlite::params![mid, conv, user, format!("c-{}", done + i), seq, text, now])?;
                ev_ins.execute(rusqlite::params![conv, seq, eid, user, payload, now])?;
                ob_ins.execute(rusqlite::params![conv, seq, eid, payload, now])?;
            }
        }
        tx.commit()?;
        done += n;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let cpu1 = crate::procfs::ProcSample::read(std::process::id()).map(|s| s.cpu_secs).unwrap_or(cpu0);
    Ok(SqliteRate { rows, batch, rows_per_sec: rows as f64 / secs, cpu_secs: cpu1 - cpu0 })
}

/// A helper process (broadcast server, Centrifugo) started by the harness; killed on drop.
#[derive(Debug)]
pub struct Helper {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl Helper {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `chat-bench broadcast-server` (this executable) and waits for its port.
    ///
    /// # Errors
    /// [`BenchError::Server`] when it does not start.
    pub fn broadcast() -> Result<Helper, BenchError> {
        let exe = std::env::current_exe().map_err(|e| BenchError::Io("current executable".into(), e))?;
        let mut child = std::process::Command::new(exe)
            .arg("broadcast-server")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::Server("broadcast-server".into(), e.to_string()))?;
        let out =
            child.stdout.take().ok_or_else(|| BenchError::Server("broadcast-server".into(), "no stdout".into()))?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
            .map_err(|e| BenchError::Io("broadcast-server stdout".into(), e))?;
        let port =
            line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).ok_or_else(|| {
                BenchError::Server("broadcast-server".into(), format!("unexpected first line {line:?}"))
            })?;
        Ok(Helper { child, port })
    }

    /// Wraps a started child listening on `port`.
    pub fn from_child(child: std::process::Child, port: u16) -> Helper {
        Helper { child, port }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a TCP connect to `127.0.0.1:port` succeeds.
///
/// # Errors
/// [`BenchError::Timeout`] after `limit`.
pub async fn wait_port(port: u16, limit: Duration) -> Result<(), BenchError> {
    let deadline = Instant::now() + limit;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!("port {port}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_rate_inserts_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let r = sqlite_insert_rate(dir.path(), 300, 128, 3, 100).await.unwrap();
        assert_eq!(r.rows, 300);
        assert!(r.rows_per_sec > 0.0);
        let conn = rusqlite::Connection::open(dir.path().join("limit.db")).unwrap();
        let count =
            |t: &str| -> i64 { conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0)).unwrap() };
        assert_eq!(
            (count("messages"), count("conversation_events"), count("message_producer_outbox")),
            (300, 300, 300)
        );
        let last: i64 = conn.query_row("SELECT SUM(last_seq) FROM conversation_sequences", [], |r| r.get(0)).unwrap();
        assert_eq!(last, 300);
    }
}
