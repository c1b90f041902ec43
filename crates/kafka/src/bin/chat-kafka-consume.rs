//! `chat-kafka-consume`: reads the event topic as a member of a consumer group and prints one
//! JSON line per record and per assignment change (an operator's tail of `message.all`, and
//! the crash-test consumer of chat-kafka's tests).
//!
//! Lines on stdout:
//! - `{"assignment":[0,1],"epoch":2}` whenever the group assigns or revokes partitions;
//! - `{"partition":0,"offset":5,"epoch":2,"event_id":"…","conversation_id":"…","seq":3,
//!   "type":"MESSAGE"}` per record.
//!
//! With `--commit batch` every batch is committed after it was printed; with `--commit never`
//! the group's offsets are left as they are. Ctrl-C leaves the group gracefully.

use std::time::Duration;

use chat_kafka::{DEFAULT_TOPIC, KafkaConfig, KafkaConsumer};
use chat_pipeline::EventConsumer;
use clap::{Parser, ValueEnum};
use serde_json::json;

/// When to commit what was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CommitPolicy {
    /// Never commit (a look at the topic that leaves the group's offsets alone).
    Never,
    /// Commit each batch after printing it.
    Batch,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Read chat-sys's Kafka event topic as a consumer group member, one JSON line per record")]
struct Args {
    /// Bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "CHAT_KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic to read.
    #[arg(long, default_value = DEFAULT_TOPIC)]
    topic: String,
    /// Consumer group id.
    #[arg(long)]
    group: String,
    /// When to commit.
    #[arg(long, value_enum, default_value_t = CommitPolicy::Batch)]
    commit: CommitPolicy,
    /// Group session timeout in milliseconds (a crashed member is removed after it).
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: u64,
    /// Most records per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = KafkaConfig {
        bootstrap: args.bootstrap,
        topic: args.topic,
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        ..KafkaConfig::default()
    };
    let mut consumer = KafkaConsumer::join(&cfg, &args.group).await?;
    let mut shown: Option<(Vec<u32>, u64)> = None;
    loop {
        let now = (consumer.assignment(), consumer.epoch());
        if shown.as_ref() != Some(&now) {
            println!("{}", json!({"assignment": now.0, "epoch": now.1}));
            shown = Some(now);
        }
        let batch = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            // Wake up now and then to report assignment changes made while idle.
            r = tokio::time::timeout(Duration::from_millis(200), consumer.next_batch(args.batch)) => match r {
                Err(_) => continue,
                Ok(r) => r?,
            },
        };
        for r in &batch {
            println!(
                "{}",
                json!({
                    "partition": r.position.partition,
                    "offset": r.position.offset,
                    "epoch": r.epoch,
                    "event_id": r.event.event_id,
                    "conversation_id": r.event.conversation_id,
                    "seq": r.event.seq,
                    "type": r.event.kind().as_str(),
                })
            );
        }
        if args.commit == CommitPolicy::Batch {
            consumer.commit(&batch).await?;
        }
    }
    consumer.close().await;
    Ok(())
}
