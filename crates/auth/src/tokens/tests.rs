//! Unit tests of token issuing and verification: one per rule of RFC 7519 / RFC 8725 we rely on.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::config::ExternalIssuer;
use crate::keys::{SigningKey, external_keys, generate_private_pem};

const ISS: &str = "http://localhost:8081";
const AUD: &str = "chat-sys";

/// Two 2048-bit keys, generated once for the whole test binary.
fn pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        let a = std::thread::spawn(|| generate_private_pem().unwrap());
        let b = generate_private_pem().unwrap();
        (a.join().unwrap(), b)
    })
}

fn service() -> TokenService {
    service_with(Vec::new())
}

fn service_with(external: Vec<(String, VerifyingKey)>) -> TokenService {
    TokenService::new(SigningKey::from_pem(&pems().0).unwrap(), ISS.into(), AUD.into(), external)
}

fn now() -> i64 {
    Millis::now().0 / 1000
}

fn claims(use_: &str) -> Value {
    let n = now();
    json!({
        "iss": ISS, "aud": AUD, "sub": UserId::new().to_string(), "ws": WorkspaceId::DEFAULT.to_string(),
        "exp": n + 300, "iat": n, "nbf": n, "jti": uuid::Uuid::now_v7().to_string(), "token_use": use_,
    })
}

/// Signs `claims` with `key` under a header with `alg` and `kid`.
fn sign(alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn sign_ours(s: &TokenService, claims: &Value) -> String {
    sign(Algorithm::RS256, &s.signing.kid, claims, &s.signing.encoding)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn reject(s: &TokenService, token: &str, expected: TokenUse) -> String {
    match s.verify(token, expected) {
        Ok(v) => panic!("accepted: {:?}", v.principal),
        Err(why) => why,
    }
}

#[test]
fn access_token_round_trip() {
    let s = service();
    let user = UserId::new();
    let ws = WorkspaceId::new();
    let (token, c) = s.issue(user.to_string(), ws, TokenUse::Access, 900, Some("read write".into())).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(s.signing.kid.as_str()));
    let p = s.verify(&token, TokenUse::Access).unwrap().principal;
    assert_eq!(p.subject, Subject::User(user));
    assert_eq!(p.user_id(), Some(user));
    assert_eq!(p.workspace_id, ws);
    assert_eq!(p.token_id, c.jti);
    assert_eq!(uuid::Uuid::parse_str(&c.jti).unwrap().get_version_num(), 7);
    assert_eq!(p.expires_at, Millis(c.exp * 1000));
    assert!((c.exp - now() - 900).abs() <= 2);
    assert_eq!(p.scopes, ["read", "write"]);
    assert!(p.has_scope("write"));
}

#[test]
fn service_subject_round_trip() {
    let s = service();
    let (token, _) = s.issue("client:bot-1".into(), WorkspaceId::DEFAULT, TokenUse::Access, 60, None).unwrap();
    let p = s.verify(&token, TokenUse::Access).unwrap().principal;
    assert_eq!(p.subject, Subject::Service { client_id: "bot-1".into() });
    assert_eq!(p.user_id(), None);
}

#[test]
fn expired_token_rejected() {
    let s = service();
    let mut c = claims("access");
    c["exp"] = json!(now() - 120); // beyond the 30 s leeway
    assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), "token expired");
    // Within the leeway it is still accepted.
    c["exp"] = json!(now() - 5);
    assert!(s.verify(&sign_ours(&s, &c), TokenUse::Access).is_ok());
}

#[test]
fn not_yet_valid_rejected() {
    let s = service();
    let mut c = claims("access");
    c["nbf"] = json!(now() + 600);
    assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), "token not yet valid (nbf)");
}

#[test]
fn wrong_issuer_rejected() {
    let s = service();
    let mut c = claims("access");
    c["iss"] = json!("https://evil.example");
    assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), "wrong issuer (iss)");
}

#[test]
fn wrong_audience_rejected() {
    let s = service();
    let mut c = claims("access");
    c["aud"] = json!("another-api");
    assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), "wrong audience (aud)");
}

#[test]
fn missing_claims_rejected() {
    let s = service();
    for (claim, reason) in [
        ("jti", "missing required claim jti"),
        ("exp", "missing required claim exp"),
        ("sub", "missing required claim sub"),
        ("iss", "missing required claim iss"),
        ("aud", "missing required claim aud"),
        ("ws", "missing required claim ws"),
        ("token_use", "not an access token (token_use)"),
    ] {
        let mut c = claims("access");
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), reason, "without {claim}");
    }
    let mut c = claims("access");
    c["sub"] = json!("../../etc/passwd");
    assert_eq!(reject(&s, &sign_ours(&s, &c), TokenUse::Access), "sub claim is not a user id");
}

#[test]
fn signature_by_another_key_rejected() {
    let s = service();
    let other = SigningKey::from_pem(&pems().1).unwrap();
    assert_ne!(other.kid, s.signing.kid);
    // Signed by another key but claiming our kid.
    let token = sign(Algorithm::RS256, &s.signing.kid, &claims("access"), &other.encoding);
    assert_eq!(reject(&s, &token, TokenUse::Access), "invalid signature");
    // A tampered payload under our genuine signature.
    let good = sign_ours(&s, &claims("access"));
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims("access");
    c["sub"] = json!(UserId::new().to_string());
    let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_eq!(reject(&s, &forged, TokenUse::Access), "invalid signature");
}

#[test]
fn alg_none_rejected() {
    let s = service();
    let c = claims("access");
    for alg in ["none", "None", "NONE"] {
        let head = b64(&json!({ "alg": alg, "typ": "JWT", "kid": s.signing.kid }));
        for sig in ["", "AAAA"] {
            let token = format!("{head}.{}.{sig}", b64(&c));
            assert_eq!(reject(&s, &token, TokenUse::Access), "unsigned token (alg none) rejected");
        }
    }
}

#[test]
fn hs256_signed_with_our_public_key_rejected() {
    // RFC 8725 section 2.1: the public key used as an HMAC secret must not verify.
    let s = service();
    let c = claims("access");
    for secret in [s.signing.public_pem.as_bytes(), s.signing.public_pem.trim().as_bytes()] {
        let token = sign(Algorithm::HS256, &s.signing.kid, &c, &EncodingKey::from_secret(secret).unwrap());
        assert_eq!(reject(&s, &token, TokenUse::Access), "algorithm HS256 not allowed for this key (expects RS256)");
    }
    // Other algorithms of the same family are refused too: the algorithm is pinned per key.
    let token = sign(Algorithm::RS512, &s.signing.kid, &c, &s.signing.encoding);
    assert_eq!(reject(&s, &token, TokenUse::Access), "algorithm RS512 not allowed for this key (expects RS256)");
}

#[test]
fn refresh_and_access_tokens_not_interchangeable() {
    let s = service();
    let (refresh, _) = s.issue(UserId::new().to_string(), WorkspaceId::DEFAULT, TokenUse::Refresh, 60, None).unwrap();
    assert_eq!(reject(&s, &refresh, TokenUse::Access), "refresh token used as access token");
    assert!(s.verify(&refresh, TokenUse::Refresh).is_ok());
    let (access, _) = s.issue(UserId::new().to_string(), WorkspaceId::DEFAULT, TokenUse::Access, 60, None).unwrap();
    assert_eq!(reject(&s, &access, TokenUse::Refresh), "access token used as refresh token");
}

#[test]
fn unknown_or_missing_kid_rejected() {
    let s = service();
    let c = claims("access");
    for kid in ["nope", "../../../../etc/passwd", "/dev/zero", "file:///etc/shadow", "' OR 1=1 --", ""] {
        let token = sign(Algorithm::RS256, kid, &c, &s.signing.encoding);
        assert_eq!(reject(&s, &token, TokenUse::Access), "unknown signing key (kid)", "kid {kid:?}");
    }
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c, &s.signing.encoding).unwrap();
    assert_eq!(reject(&s, &token, TokenUse::Access), "token has no kid");
    let head = b64(&json!({ "alg": "RS256", "kid": 42 }));
    assert_eq!(
        reject(&s, &format!("{head}.{}.AAAA", b64(&c)), TokenUse::Access),
        "malformed token: kid is not a string"
    );
}

#[test]
fn crit_header_rejected() {
    let s = service();
    let head = b64(&json!({ "alg": "RS256", "kid": s.signing.kid, "crit": ["exp"] }));
    let token = format!("{head}.{}.AAAA", b64(&claims("access")));
    assert_eq!(reject(&s, &token, TokenUse::Access), "unsupported critical header parameters (crit)");
}

#[test]
fn garbage_rejected() {
    let s = service();
    let good = sign_ours(&s, &claims("access"));
    let parts: Vec<&str> = good.split('.').collect();
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    let padded_head = URL_SAFE.encode(serde_json::to_vec(&json!({"alg": "RS256", "kid": s.signing.kid})).unwrap());
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty token"),
        ("garbage".into(), "malformed token: not a JWS"),
        ("a.b".into(), "malformed token: not a JWS"),
        ("a.b.c.d".into(), "malformed token: not a JWS"),
        ("...".into(), "malformed token"),
        ("a.b.c".into(), "malformed token: header is not"),
        ("e30.e30.e30".into(), "malformed token: header has no alg"), // {} . {} . {}
        (format!("{}.e30.", b64(&json!([1, 2]))), "malformed token: header is not a JSON object"),
        (format!("{}.%%%.{}", parts[0], parts[2]), "invalid signature"), // signature is checked first
        (format!("{}.{}.!!!", parts[0], parts[1]), "malformed"),
        (format!("{}.{}.{}", parts[0], b64(&json!("str")), parts[2]), "invalid signature"),
        (format!("{padded_head}.{}.{}", parts[1], parts[2]), "malformed token: header is not base64url"),
        (format!("Bearer {good}"), "malformed token"),
        (huge, "token longer than"),
        ("\u{0}\u{1}.\u{ff}.é".into(), "malformed token"),
    ];
    for (token, prefix) in cases {
        let why = reject(&s, &token, TokenUse::Access);
        assert!(why.starts_with(prefix), "{token:.40?}: {why}");
    }
}

#[test]
fn jwks_shape() {
    let s = service();
    let jwk = s.signing.jwk();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], s.signing.kid.as_str());
    assert_eq!(jwk["e"], "AQAB");
    let n = jwk["n"].as_str().unwrap();
    assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "base64url, no padding");
    let n_bytes = URL_SAFE_NO_PAD.decode(n).unwrap();
    assert_eq!(n_bytes.len(), 256, "2048-bit modulus without a leading zero");
    assert!(n_bytes[0] >= 0x80);
    // kid: base64url of 16 bytes of SHA-256.
    assert_eq!(URL_SAFE_NO_PAD.decode(&s.signing.kid).unwrap().len(), 16);
    // The JWK verifies our tokens (what a relying party does).
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&parsed).unwrap();
    let (token, _) = s.issue(UserId::new().to_string(), WorkspaceId::DEFAULT, TokenUse::Access, 60, None).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.set_audience(&[AUD]);
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &v).is_ok());
}

#[test]
fn pkcs1_and_pkcs8_pem_give_the_same_key() {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let pk8 = &pems().0;
    let key = rsa::PrivateKey::from_pkcs8_pem(pk8).unwrap();
    let pk1 = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert!(pk1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(SigningKey::from_pem(&pk1).unwrap().kid, SigningKey::from_pem(pk8).unwrap().kid);
    assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    assert!(SigningKey::from_pem("not a pem").is_err());
}

#[test]
fn short_rsa_key_refused() {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let err = SigningKey::from_pem(&pem).err().unwrap().to_string();
    assert!(err.contains("at least 2048"), "{err}");
}

/// An external issuer using the second key, published in its JWKS with `kid` = `ext-1`.
fn external_issuer(alg: Option<&str>) -> (ExternalIssuer, SigningKey) {
    let key = SigningKey::from_pem(&pems().1).unwrap();
    let mut jwk = json!({ "kty": "RSA", "use": "sig", "kid": "ext-1", "n": key.n, "e": key.e });
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    let enc = json!({ "kty": "RSA", "use": "enc", "kid": "ext-enc", "n": key.n, "e": key.e });
    let ext = ExternalIssuer {
        issuer: "https://idp.example".into(),
        audience: "chat-sys-ext".into(),
        jwks_json: json!({ "keys": [jwk, enc] }).to_string(),
    };
    (ext, key)
}

fn external_claims() -> Value {
    let n = now();
    json!({
        "iss": "https://idp.example", "aud": ["chat-sys-ext", "account"], "sub": UserId::new().to_string(),
        "exp": n + 300, "iat": n, "jti": "ext-jti-1", "typ": "Bearer", "scope": "openid profile",
    })
}

#[test]
fn external_issuer_accepted_via_jwks() {
    let (ext, key) = external_issuer(Some("RS256"));
    let keys = external_keys(&ext).unwrap();
    assert_eq!(keys.len(), 1, "the encryption key is skipped");
    let s = service_with(keys);
    let c = external_claims();
    let token = sign(Algorithm::RS256, "ext-1", &c, &key.encoding);
    let p = s.verify(&token, TokenUse::Access).unwrap().principal;
    assert_eq!(p.subject, Subject::User(c["sub"].as_str().unwrap().parse().unwrap()));
    assert_eq!(p.workspace_id, WorkspaceId::DEFAULT);
    assert_eq!(p.token_id, "ext-jti-1");
    assert_eq!(p.scopes, ["openid", "profile"]);

    // Our iss/aud are not valid with the external key, and vice versa.
    let mut wrong = c.clone();
    wrong["iss"] = json!(ISS);
    assert_eq!(
        reject(&s, &sign(Algorithm::RS256, "ext-1", &wrong, &key.encoding), TokenUse::Access),
        "wrong issuer (iss)"
    );
    let mut wrong = c.clone();
    wrong["aud"] = json!(AUD);
    assert_eq!(
        reject(&s, &sign(Algorithm::RS256, "ext-1", &wrong, &key.encoding), TokenUse::Access),
        "wrong audience (aud)"
    );
    // An external refresh token, or any external token used as our refresh token, is refused.
    let mut refresh = c.clone();
    refresh["typ"] = json!("Refresh");
    assert_eq!(
        reject(&s, &sign(Algorithm::RS256, "ext-1", &refresh, &key.encoding), TokenUse::Access),
        "refresh token used as access token"
    );
    assert_eq!(reject(&s, &token, TokenUse::Refresh), "refresh tokens of external issuers are not accepted");
    // The encryption key's kid is unknown for signatures.
    assert_eq!(
        reject(&s, &sign(Algorithm::RS256, "ext-enc", &c, &key.encoding), TokenUse::Access),
        "unknown signing key (kid)"
    );
    // Our own tokens still verify.
    let (ours, _) = s.issue(UserId::new().to_string(), WorkspaceId::DEFAULT, TokenUse::Access, 60, None).unwrap();
    assert!(s.verify(&ours, TokenUse::Access).is_ok());
}

#[test]
fn external_key_algorithm_pinned_from_jwk() {
    let (ext, key) = external_issuer(Some("RS384"));
    let s = service_with(external_keys(&ext).unwrap());
    let c = external_claims();
    assert!(s.verify(&sign(Algorithm::RS384, "ext-1", &c, &key.encoding), TokenUse::Access).is_ok());
    assert_eq!(
        reject(&s, &sign(Algorithm::RS256, "ext-1", &c, &key.encoding), TokenUse::Access),
        "algorithm RS256 not allowed for this key (expects RS384)"
    );
    // Without `alg` in the JWK an RSA key means RS256.
    let (ext, key) = external_issuer(None);
    let s = service_with(external_keys(&ext).unwrap());
    assert!(s.verify(&sign(Algorithm::RS256, "ext-1", &c, &key.encoding), TokenUse::Access).is_ok());
}

#[test]
fn bad_external_jwks_refused() {
    let bad = |jwks: Value| ExternalIssuer { issuer: "i".into(), audience: "a".into(), jwks_json: jwks.to_string() };
    assert!(external_keys(&ExternalIssuer { jwks_json: "nope".into(), ..bad(json!({})) }).is_err());
    let key = SigningKey::from_pem(&pems().1).unwrap();
    // No kid.
    assert!(external_keys(&bad(json!({ "keys": [{ "kty": "RSA", "n": key.n, "e": key.e }] }))).is_err());
    // A symmetric key.
    assert!(
        external_keys(&bad(json!({ "keys": [{ "kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0" }] })))
            .is_err()
    );
    // alg that does not fit the key type.
    assert!(
        external_keys(&bad(json!({ "keys": [{ "kty": "RSA", "kid": "x", "alg": "ES256", "n": key.n, "e": key.e }] })))
            .is_err()
    );
}
