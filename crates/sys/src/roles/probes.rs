//! Readiness probes: one named check per dependency of a role (database, Redis, Kafka, the
//! core), run together by `/readyz`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// One readiness check: `Ok` when the dependency answers, else why not.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The named probes of a role.
#[derive(Clone, Default)]
pub struct Probes {
    checks: Vec<(&'static str, Probe)>,
}

impl Probes {
    /// Adds a probe named `name` (e.g. `"database"`, `"redis"`).
    pub fn with(mut self, name: &'static str, probe: Probe) -> Self {
        self.checks.push((name, probe));
        self
    }

    /// Runs every probe concurrently (each bounded by 3 s).
    ///
    /// # Errors
    /// `"name: why; ..."` for the probes that failed.
    pub async fn check(&self) -> Result<(), String> {
        let runs = self.checks.iter().map(|(name, probe)| async move {
            match tokio::time::timeout(PROBE_TIMEOUT, probe()).await {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("{name}: {why}")),
                Err(_) => Some(format!("{name}: no answer within {PROBE_TIMEOUT:?}")),
            }
        });
        let failed: Vec<String> = futures::future::join_all(runs).await.into_iter().flatten().collect();
        if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
    }

    /// The `/readyz` answer: 200 `{"status":"UP"}`, or 503 `{"status":"DOWN","reason":...}`.
    pub async fn answer(self) -> Response {
        match self.check().await {
            Ok(()) => axum::Json(serde_json::json!({"status": "UP"})).into_response(),
            Err(reason) => {
                tracing::warn!(%reason, "readiness probe failed");
                (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "DOWN", "reason": reason})))
                    .into_response()
            }
        }
    }

    /// The probes as one [`chat_core::rest::ReadinessProbe`] (the core's REST `/readyz`).
    pub fn into_rest_probe(self) -> chat_core::rest::ReadinessProbe {
        Arc::new(move || {
            let probes = self.clone();
            Box::pin(async move { probes.check().await })
        })
    }
}

/// A probe from an async closure.
pub fn probe<F, Fut>(f: F) -> Probe
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// The database probe: one round trip (`SqlStore::ping`).
pub fn database_probe(db: Arc<chat_storage::SqlStore>) -> Probe {
    probe(move || {
        let db = db.clone();
        async move { db.ping().await.map_err(|e| e.to_string()) }
    })
}
