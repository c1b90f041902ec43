//! The object-store seam of chat-sys: where attachment content lives.
//!
//! [`BlobStore`] wraps an [`object_store::ObjectStore`]: the local filesystem (`serve`,
//! default `{data_dir}/attachments`), S3 or any S3 API server (scale-out; MinIO, moto,
//! s3s-fs), or memory (tests). Content is streamed both ways: [`BlobWriter`] buffers up to
//! one part and switches to a multipart upload for larger content (so memory stays bounded
//! by the part size), [`BlobStore::get`] returns a stream of chunks.
//!
//! API boundary: keys are opaque `/`-separated strings chosen by the caller (the core uses
//! `{conversationId}/{attachmentId}`); this crate knows nothing of users, conversations or
//! authorization. Neither backend offers signed URLs here (the local filesystem cannot), so
//! downloads are proxied through an authorized route of the REST API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Default size of one multipart part (8 MiB); S3 needs at least 5 MiB per part but the last.
pub const DEFAULT_PART_BYTES: usize = 8 * 1024 * 1024;

/// What went wrong with the object store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object under that key.
    #[error("object {0} not found")]
    NotFound(String),
    /// A key that is not a valid object path.
    #[error("invalid object key {key:?}: {why}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// Bad configuration (missing bucket, unusable directory, ...).
    #[error("object store configuration: {0}")]
    Config(String),
    /// The store failed or is unreachable.
    #[error("object store: {0}")]
    Store(String),
}

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => BlobError::NotFound(path),
            other => BlobError::Store(other.to_string()),
        }
    }
}

/// Result alias of this crate.
pub type BlobResult<T> = Result<T, BlobError>;

/// S3 (or S3 API server) settings: the `[attachments.s3]` section of the configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name (required for the `s3` backend; it must exist).
    pub bucket: String,
    /// Endpoint URL of an S3 API server, e.g. `http://127.0.0.1:9000`; `None` means AWS.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: String,
    /// Access key id; `None` uses the `AWS_ACCESS_KEY_ID` variable or instance credentials.
    pub access_key_id: Option<String>,
    /// Secret access key; `None` uses `AWS_SECRET_ACCESS_KEY` or instance credentials.
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (MinIO, moto; default false).
    pub allow_http: bool,
    /// Virtual-hosted-style requests (`bucket.host`); default false: path style
    /// (`host/bucket`), which S3 API servers expect.
    pub virtual_hosted_style: bool,
    /// Key prefix inside the bucket (default `attachments`; empty for none).
    pub prefix: String,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            virtual_hosted_style: false,
            prefix: "attachments".into(),
        }
    }
}

/// Which object store to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobConfig {
    /// Files under a directory (created when missing).
    Local {
        /// The directory.
        dir: PathBuf,
    },
    /// S3 or an S3 API server.
    S3(S3Config),
    /// Process memory (tests; lost on exit).
    Memory,
}

/// An object store for attachment content. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Option<ObjectPath>,
    part_bytes: usize,
    description: String,
}

/// Content read from the store.
pub struct Blob {
    /// Size in bytes.
    pub size: u64,
    /// The content, in chunks.
    pub stream: BoxStream<'static, BlobResult<Bytes>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Installs rustls' ring provider as the process default (reqwest is built without one, so
/// no C crypto library is compiled); a no-op when one is installed already.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl BlobStore {
    /// Opens the store `cfg` describes; content larger than `part_bytes` (at least 5 MiB for
    /// S3; clamped to at least 64 KiB) is uploaded in parts of that size.
    ///
    /// # Errors
    /// [`BlobError::Config`] for an unusable directory or S3 setting. Opening does not
    /// contact S3; [`BlobStore::check`] does.
    pub fn open(cfg: &BlobConfig, part_bytes: usize) -> BlobResult<BlobStore> {
        let part_bytes = part_bytes.max(64 * 1024);
        match cfg {
            BlobConfig::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| BlobError::Config(format!("cannot create {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| BlobError::Config(format!("{}: {e}", dir.display())))?;
                Ok(BlobStore {
                    store: Arc::new(fs),
                    prefix: None,
                    part_bytes,
                    description: format!("local filesystem {}", dir.display()),
                })
            }
            BlobConfig::S3(s3) => {
                if s3.bucket.is_empty() {
                    return Err(BlobError::Config("attachments.s3.bucket is required for the s3 backend".into()));
                }
                install_tls_provider();
                let retry =
                    RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(30), ..Default::default() };
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(s3.virtual_hosted_style)
                    .with_retry(retry);
                if let Some(e) = &s3.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = &s3.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = &s3.secret_access_key {
                    b = b.with_secret_access_key(k);
                }
                let store = b.build().map_err(|e| BlobError::Config(e.to_string()))?;
                let prefix = s3.prefix.trim_matches('/');
                let prefix = if prefix.is_empty() {
                    None
                } else {
                    Some(
                        ObjectPath::parse(prefix)
                            .map_err(|e| BlobError::Config(format!("attachments.s3.prefix: {e}")))?,
                    )
                };
                let at = s3.endpoint.as_deref().unwrap_or("AWS");
                Ok(BlobStore {
                    store: Arc::new(store),
                    prefix,
                    part_bytes,
                    description: format!("s3 bucket {} at {at}", s3.bucket),
                })
            }
            BlobConfig::Memory => Ok(BlobStore::in_memory()),
        }
    }

    /// A store in process memory (tests).
    pub fn in_memory() -> BlobStore {
        BlobStore {
            store: Arc::new(InMemory::new()),
            prefix: None,
            part_bytes: DEFAULT_PART_BYTES,
            description: "memory".into(),
        }
    }

    /// Where the content lives, for logs (no credentials).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The multipart part size.
    pub fn part_bytes(&self) -> usize {
        self.part_bytes
    }

    fn path(&self, key: &str) -> BlobResult<ObjectPath> {
        let invalid = |why: String| BlobError::InvalidKey { key: key.to_owned(), why };
        if key.is_empty() || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(invalid("empty, `.` or `..` segment".into()));
        }
        let rel = ObjectPath::parse(key).map_err(|e| invalid(e.to_string()))?;
        Ok(match &self.prefix {
            Some(p) => p.parts().chain(rel.parts()).collect(),
            None => rel,
        })
    }

    /// A writer that streams content to `key` (replacing what is there when finished).
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`].
    pub fn writer(&self, key: &str) -> BlobResult<BlobWriter> {
        let path = self.path(key)?;
        Ok(BlobWriter { inner: BufWriter::with_capacity(self.store.clone(), path, self.part_bytes), written: 0 })
    }

    /// Stores `bytes` under `key` in one call (small content, tests).
    ///
    /// # Errors
    /// As [`BlobWriter::write`] and [`BlobWriter::finish`].
    pub async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<u64> {
        let mut w = self.writer(key)?;
        w.write(bytes).await?;
        w.finish().await
    }

    /// Streams the content of `key`.
    ///
    /// # Errors
    /// [`BlobError::NotFound`]; [`BlobError::Store`] when the store fails.
    pub async fn get(&self, key: &str) -> BlobResult<Blob> {
        let res = self.store.get(&self.path(key)?).await?;
        let size = res.meta.size;
        let stream = res.into_stream().map(|r| r.map_err(BlobError::from)).boxed();
        Ok(Blob { size, stream })
    }

    /// All content of `key` in memory (small objects, tests).
    ///
    /// # Errors
    /// As [`BlobStore::get`].
    pub async fn read_all(&self, key: &str) -> BlobResult<Bytes> {
        Ok(self.store.get(&self.path(key)?).await?.bytes().await?)
    }

    /// The size of `key`, or `None` when absent.
    ///
    /// # Errors
    /// [`BlobError::Store`] when the store fails.
    pub async fn size(&self, key: &str) -> BlobResult<Option<u64>> {
        match self.store.head(&self.path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `key`; `Ok(false)` when it was not there (deleting is idempotent).
    ///
    /// # Errors
    /// [`BlobError::Store`] when the store fails.
    pub async fn delete(&self, key: &str) -> BlobResult<bool> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys under `prefix` (every key when empty), in no particular order.
    ///
    /// # Errors
    /// [`BlobError::InvalidKey`]; [`BlobError::Store`] when the store fails.
    pub async fn list(&self, prefix: &str) -> BlobResult<Vec<String>> {
        let under = if prefix.is_empty() { self.prefix.clone() } else { Some(self.path(prefix)?) };
        let metas: Vec<object_store::ObjectMeta> = self.store.list(under.as_ref()).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let parts: Vec<String> = match &self.prefix {
                    Some(p) => m.location.prefix_match(p).map(|it| it.map(|x| x.as_ref().to_string()).collect()),
                    None => None,
                }
                .unwrap_or_else(|| m.location.parts().map(|x| x.as_ref().to_string()).collect());
                parts.join("/")
            })
            .collect())
    }

    /// Readiness: one request to the store (a `HEAD` of a key that need not exist).
    ///
    /// # Errors
    /// [`BlobError::Store`] when the store does not answer or refuses (e.g. no such bucket).
    pub async fn check(&self) -> BlobResult<()> {
        match self.store.head(&self.path(".readiness-probe")?).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Streams content into the store. Finish it with [`BlobWriter::finish`]; on any failure
/// call [`BlobWriter::abort`] so a partial multipart upload is cleaned up. Dropping it
/// unfinished stores nothing under the key (a multipart upload left behind is for the
/// bucket's lifecycle rules).
pub struct BlobWriter {
    inner: BufWriter,
    written: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").field("written", &self.written).finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// Appends a chunk (buffered up to one part; whole parts are uploaded as they fill).
    ///
    /// # Errors
    /// [`BlobError::Store`] when uploading a part fails.
    pub async fn write(&mut self, bytes: Bytes) -> BlobResult<()> {
        self.written += bytes.len() as u64;
        self.inner.put(bytes).await.map_err(BlobError::from)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the upload (one `PUT` for content smaller than a part, else completes the
    /// multipart upload); returns the size.
    ///
    /// # Errors
    /// [`BlobError::Store`] when the store refuses or fails.
    pub async fn finish(mut self) -> BlobResult<u64> {
        self.inner.shutdown().await.map_err(|e| BlobError::Store(e.to_string()))?;
        Ok(self.written)
    }

    /// Abandons the upload, removing uploaded parts.
    ///
    /// # Errors
    /// [`BlobError::Store`] when the store fails to abort the multipart upload.
    pub async fn abort(mut self) -> BlobResult<()> {
        self.inner.abort().await.map_err(BlobError::from)
    }
}
