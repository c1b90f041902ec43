//! Argon2id hashing of passwords and client secrets (RFC 9106), as PHC strings. Hashing is
//! CPU- and memory-bound, so it runs on tokio's blocking pool.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use chat_domain::DomainError;

/// Argon2id with fixed parameters.
#[derive(Clone, Debug)]
pub(crate) struct SecretHasher {
    params: Params,
}

impl SecretHasher {
    /// Validates the parameters (memory in KiB, iterations, lanes).
    pub(crate) fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, String> {
        let params = Params::new(memory_kib, iterations, parallelism, None).map_err(|e| format!("argon2: {e}"))?;
        Ok(SecretHasher { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes synchronously (blocking) to a PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
    pub(crate) fn hash_blocking(&self, secret: &[u8]) -> Result<String, DomainError> {
        self.argon2()
            .hash_password(secret)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(format!("argon2 hash: {e}")))
    }

    /// Hashes on the blocking pool.
    pub(crate) async fn hash(&self, secret: &str) -> Result<String, DomainError> {
        let this = self.clone();
        let secret = secret.as_bytes().to_vec();
        tokio::task::spawn_blocking(move || this.hash_blocking(&secret))
            .await
            .map_err(|e| DomainError::Internal(format!("hash task: {e}")))?
    }

    /// Checks `secret` against a PHC string on the blocking pool (the hash's own parameters
    /// apply). An unparsable hash counts as a mismatch.
    pub(crate) async fn verify(&self, secret: &str, phc: &str) -> Result<bool, DomainError> {
        let this = self.clone();
        let secret = secret.as_bytes().to_vec();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || this.argon2().verify_password(&secret, phc.as_str()).is_ok())
            .await
            .map_err(|e| DomainError::Internal(format!("verify task: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_round_trip() {
        let h = SecretHasher::new(8, 1, 1).unwrap();
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse", &phc).await.unwrap());
        assert!(!h.verify("wrong horse", &phc).await.unwrap());
        assert!(!h.verify("correct horse", "not a phc string").await.unwrap());
        let again = h.hash("correct horse").await.unwrap();
        assert_ne!(phc, again, "salts differ");
    }

    #[test]
    fn bad_params_rejected() {
        assert!(SecretHasher::new(0, 1, 1).is_err());
    }
}
