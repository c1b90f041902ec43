//! Redis down: clear `Unavailable` errors, and recovery when it is back. Uses a closed port,
//! and a private `redis-server` (no persistence) on a free port that the test stops and
//! restarts.

mod common;

use std::process::Stdio;
use std::time::Duration;

use chat_domain::{ConversationId, Millis, UserId, WorkspaceId};
use chat_pipeline::{ConnectionRegistry, DeliveryStreams, GapNotice, PipelineError};
use chat_redis::{ConnectError, RedisRegistry, RedisStreams, RedisStreamsConfig};
use common::*;
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, PipelineError>) -> bool {
    matches!(r, Err(PipelineError::Unavailable(_)))
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_unavailable() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let err = RedisRegistry::connect(&url, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Pipeline(PipelineError::Unavailable(_))), "{err}");
    let err = RedisStreams::connect(&url, RedisStreamsConfig::default()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Pipeline(PipelineError::Unavailable(_))), "{err}");
}

async fn start_server(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server on PATH (scripts/services.sh installs it)");
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url).unwrap();
    for _ in 0..100 {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING").query_async::<()>(&mut c).await.is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("private redis-server on port {port} did not answer");
}

#[tokio::test]
async fn operations_fail_with_unavailable_while_redis_is_down_and_work_again_after() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = start_server(port).await;
    let reg = RedisRegistry::connect(&url, Duration::from_secs(30)).await.unwrap();
    let streams = streams(&url, 10_000).await;
    let (u, ws) = (UserId::new(), WorkspaceId::new());
    reg.register(conn("c1", u, ws, "g1")).await.unwrap();
    let conv = ConversationId::new();
    streams.publish("g1", vec![delivery(conv, 1)]).await.unwrap();
    let mut consumer = streams.consume("g1").await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    consumer.ack(&[b.entries[0].id]).await.unwrap();

    server.kill().await.unwrap();
    assert!(unavailable(reg.ping().await));
    assert!(unavailable(reg.touch("c1", Millis::now()).await));
    assert!(unavailable(reg.connections_of_users(&[u]).await));
    assert!(unavailable(reg.gateways_of_users(&[u]).await));
    assert!(unavailable(streams.publish("g1", vec![delivery(conv, 2)]).await));
    assert!(unavailable(consumer.next_batch(10).await));
    assert!(unavailable(streams.consume("g1").await.map(|_| ())));

    // Back, empty (no persistence): the managers reconnect by themselves.
    let _server = start_server(port).await;
    let mut ok = false;
    for _ in 0..100 {
        if reg.ping().await.is_ok() && streams.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "reconnected");
    assert!(!reg.touch("c1", Millis::now()).await.unwrap(), "the restarted server lost the connection");
    reg.register(conn("c1", u, ws, "g1")).await.unwrap();
    assert_eq!(reg.connections_of_user(u).await.unwrap().len(), 1);
    let b = loop {
        match tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(10)).await.unwrap() {
            Err(PipelineError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => break other.unwrap(),
        }
    };
    assert_eq!(b.gap, Some(GapNotice { lost: None, conversations: vec![] }), "the lost stream is a gap");
    streams.publish("g1", vec![delivery(conv, 3)]).await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    assert_eq!(seqs(&b.entries), vec![(conv, 3)]);
}
