//! The blob store on the local filesystem and in memory: streamed put (single and
//! multipart), streamed get, abort, delete, key checks.

use bytes::Bytes;
use chat_blob::{BlobConfig, BlobError, BlobStore};
use futures::TryStreamExt;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

async fn collect(store: &BlobStore, key: &str) -> Vec<u8> {
    let blob = store.get(key).await.expect("get");
    let chunks: Vec<Bytes> = blob.stream.try_collect().await.expect("stream");
    let out: Vec<u8> = chunks.concat();
    assert_eq!(out.len() as u64, blob.size, "size matches content");
    out
}

async fn round_trips(store: &BlobStore) {
    // Smaller than a part: one PUT.
    let small = pattern(1000);
    assert_eq!(store.put("c1/small", Bytes::from(small.clone())).await.unwrap(), 1000);
    assert_eq!(collect(store, "c1/small").await, small);

    // Several parts, written in odd-sized chunks: multipart upload.
    let big = pattern(store.part_bytes() * 2 + 12_345);
    let mut w = store.writer("c1/big").unwrap();
    for chunk in big.chunks(70_001) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.finish().await.unwrap(), big.len() as u64);
    assert_eq!(collect(store, "c1/big").await, big);
    assert_eq!(store.size("c1/big").await.unwrap(), Some(big.len() as u64));

    // Aborted after parts were uploaded: nothing is stored under the key.
    let mut w = store.writer("c1/aborted").unwrap();
    for chunk in big.chunks(100_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.abort().await.unwrap();
    assert_eq!(store.size("c1/aborted").await.unwrap(), None);
    assert!(matches!(store.get("c1/aborted").await, Err(BlobError::NotFound(_))));

    let mut keys = store.list("").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["c1/big", "c1/small"]);
    assert_eq!(store.list("c1").await.unwrap().len(), 2);
    assert!(store.list("c2").await.unwrap().is_empty());

    // Delete is idempotent.
    assert!(store.delete("c1/small").await.unwrap());
    assert!(!store.delete("c1/small").await.unwrap());
    assert!(matches!(store.get("c1/small").await, Err(BlobError::NotFound(_))));
    store.check().await.unwrap();
}

#[tokio::test]
async fn local_filesystem_streams_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("attachments");
    let store = BlobStore::open(&BlobConfig::Local { dir: root.clone() }, 64 * 1024).unwrap();
    assert_eq!(store.part_bytes(), 64 * 1024);
    round_trips(&store).await;
    assert!(root.join("c1").join("big").is_file(), "content lives under the configured directory");
}

#[tokio::test]
async fn memory_store_streams_in_and_out() {
    round_trips(&BlobStore::open(&BlobConfig::Memory, 0).unwrap()).await;
}

#[tokio::test]
async fn keys_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&BlobConfig::Local { dir: dir.path().to_path_buf() }, 0).unwrap();
    for key in ["", "../x", "a/../b", "a//b", "./a", "/abs"] {
        assert!(matches!(store.writer(key), Err(BlobError::InvalidKey { .. })), "{key:?}");
    }
}

#[tokio::test]
async fn s3_without_bucket_is_a_config_error() {
    let err = BlobStore::open(&BlobConfig::S3(Default::default()), 0).unwrap_err();
    assert!(matches!(err, BlobError::Config(ref m) if m.contains("bucket")), "{err}");
}

/// Against a real S3 API server when `CHAT_TEST_S3_URL` is set (tests/external/s3.sh sets
/// it, with `CHAT_TEST_S3_BUCKET`): the same round trips, parts of 5 MiB.
#[tokio::test]
async fn s3_api_server_streams_in_and_out() {
    let Ok(endpoint) = std::env::var("CHAT_TEST_S3_URL") else {
        eprintln!("CHAT_TEST_S3_URL not set: S3 round trip skipped");
        return;
    };
    let cfg = chat_blob::S3Config {
        bucket: std::env::var("CHAT_TEST_S3_BUCKET").unwrap_or_else(|_| "chat-test".into()),
        endpoint: Some(endpoint.clone()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        allow_http: endpoint.starts_with("http://"),
        prefix: format!("blob-test-{}", std::process::id()),
        ..Default::default()
    };
    let store = BlobStore::open(&BlobConfig::S3(cfg), 5 * 1024 * 1024).unwrap();
    round_trips(&store).await;
}
