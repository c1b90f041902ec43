//! Signing and verification keys: our RS256 key pair (configured, or generated once and
//! persisted) and the keys of external issuers (from their JWK Sets).

use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::sha2::{Digest as _, Sha256};
use rsa::traits::PublicKeyParts as _;
use rsa::{PrivateKey, PublicKey};
use serde_json::json;

use crate::config::ExternalIssuer;
use crate::error::AuthError;

/// Minimum accepted RSA modulus size (RFC 7518 section 3.3).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// Our RS256 signing key with its public parts.
#[derive(Clone)]
pub(crate) struct SigningKey {
    /// `kid`: base64url (no padding) of the first 16 bytes of SHA-256 over the DER
    /// SubjectPublicKeyInfo.
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// Modulus, base64url without padding (RFC 7518 section 6.3.1.1).
    pub(crate) n: String,
    /// Public exponent, base64url without padding (RFC 7518 section 6.3.1.2).
    pub(crate) e: String,
    /// SPKI PEM of the public key (tests use it for the RFC 8725 key-confusion case).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) public_pem: String,
}

impl SigningKey {
    /// Parses a PKCS#8 or PKCS#1 RSA private key PEM.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, AuthError> {
        let key = PrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| PrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|e| AuthError::Key(format!("not an RSA private key in PKCS#8 or PKCS#1 PEM: {e}")))?;
        Self::from_key(&key)
    }

    fn from_key(key: &PrivateKey) -> Result<Self, AuthError> {
        let public = PublicKey::from(key);
        let bits = public.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(AuthError::Key(format!("RSA key has {bits} bits; at least {MIN_RSA_BITS} required")));
        }
        let spki = public.to_public_key_der().map_err(|e| AuthError::Key(format!("public key encoding: {e}")))?;
        let digest = Sha256::digest(spki.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..16]);
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| AuthError::Key(format!("public key encoding: {e}")))?;
        let pkcs1 = key.to_pkcs1_der().map_err(|e| AuthError::Key(format!("private key encoding: {e}")))?;
        let (n_bytes, e_bytes) = (public.n_bytes(), public.e_bytes());
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&n_bytes, &e_bytes),
            n: URL_SAFE_NO_PAD.encode(&n_bytes),
            e: URL_SAFE_NO_PAD.encode(&e_bytes),
            public_pem,
        })
    }

    /// The public key as a JWK (RFC 7517 section 4, RFC 7518 section 6.3).
    pub(crate) fn jwk(&self) -> serde_json::Value {
        json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e })
    }
}

/// Generates a 2048-bit RSA key (blocking, CPU-heavy) and returns its PKCS#8 PEM.
pub(crate) fn generate_private_pem() -> Result<String, AuthError> {
    let key = PrivateKey::new(&mut getrandom::SysRng, MIN_RSA_BITS)
        .map_err(|e| AuthError::Key(format!("RSA key generation: {e}")))?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| AuthError::Key(format!("PKCS#8 encoding: {e}")))?;
    Ok(pem.as_str().to_owned())
}

/// A key tokens may be verified with, with its pinned algorithm and expected claims.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    /// The only algorithm accepted with this key (RFC 8725 section 3.1).
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    /// Expected `iss`.
    pub(crate) issuer: String,
    /// Expected `aud`.
    pub(crate) audience: String,
    /// `false` for our own key; `true` for an external issuer's.
    pub(crate) external: bool,
}

/// Parses an external issuer's JWK Set into `(kid, key)` pairs.
pub(crate) fn external_keys(ext: &ExternalIssuer) -> Result<Vec<(String, VerifyingKey)>, AuthError> {
    let bad = |why: String| AuthError::Config(format!("external_jwks[{}]: {why}", ext.issuer));
    let set: JwkSet = serde_json::from_str(&ext.jwks_json).map_err(|e| bad(format!("not a JWK Set: {e}")))?;
    let mut out = Vec::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().ok_or_else(|| bad("a key has no kid".into()))?;
        if let Some(usage) = &jwk.common.public_key_use
            && *usage != PublicKeyUse::Signature
        {
            continue; // an encryption key: never used to verify signatures
        }
        let alg = match jwk.common.key_algorithm {
            Some(ka) => Algorithm::from_str(&ka.to_string())
                .map_err(|_| bad(format!("key {kid}: alg {ka} is not a signature algorithm")))?,
            None => match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => Algorithm::ES384,
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                _ => return Err(bad(format!("key {kid}: unsupported key type"))),
            },
        };
        if alg.family() == AlgorithmFamily::Hmac {
            return Err(bad(format!("key {kid}: symmetric keys are not accepted")));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("key {kid}: {e}")))?;
        if key.family() != alg.family() {
            return Err(bad(format!("key {kid}: alg {alg:?} does not match the key type")));
        }
        let vk = VerifyingKey { alg, key, issuer: ext.issuer.clone(), audience: ext.audience.clone(), external: true };
        out.push((kid, vk));
    }
    Ok(out)
}
