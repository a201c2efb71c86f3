//! Request identity: every discovery and invocation request to a deployment carries an Ed25519
//! JWT (`x-restate-signature-scheme: v1`, `x-restate-jwt-v1`), so an SDK configured with the
//! matching `publickeyv1_…` key accepts requests from this server only.
//!
//! The token's header names the key (`kid` = the public key, `publickeyv1_` + base58 of its 32
//! bytes); its claims are the request path as `aud` (`/discover`, `/invoke/Svc/handler`), `iat`,
//! `nbf` and `exp` (now ∓ the expiration).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};

pub const SCHEME_HEADER: &str = "x-restate-signature-scheme";
pub const JWT_HEADER: &str = "x-restate-jwt-v1";

/// A private key to sign requests with.
pub struct RequestIdentity {
    key: SigningKey,
    /// `publickeyv1_…`: what the SDK is configured with, and the token's `kid`.
    public_key: String,
    expiration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read the request-identity private key {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "the request-identity private key {path} is not an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----): {reason}; `perdure keygen --out FILE` makes one"
    )]
    Parse { path: PathBuf, reason: String },
    #[error("cannot write the private key to {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

impl RequestIdentity {
    pub fn new(key: SigningKey, expiration: Duration) -> Self {
        let public_key = format!("publickeyv1_{}", bs58::encode(key.verifying_key().as_bytes()).into_string());
        Self { key, public_key, expiration }
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (as `openssl genpkey -algorithm ed25519` or
    /// `perdure keygen` write it).
    pub fn from_pem_file(path: &Path, expiration: Duration) -> Result<Self, IdentityError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| IdentityError::Read { path: path.to_owned(), reason: e.to_string() })?;
        let key = SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| IdentityError::Parse { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self::new(key, expiration))
    }

    /// A new random key.
    pub fn generate(expiration: Duration) -> Self {
        Self::new(SigningKey::from_bytes(&rand::random::<[u8; 32]>()), expiration)
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        self.key.to_pkcs8_pem(Default::default()).expect("an Ed25519 key always encodes").to_string()
    }

    /// Writes the private key to a new file, readable by its owner only.
    pub fn write_new(&self, path: &Path) -> Result<(), IdentityError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let err = |e: std::io::Error| IdentityError::Write { path: path.to_owned(), reason: e.to_string() };
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
        file.write_all(self.private_pem().as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)
    }

    /// `publickeyv1_…`, for the SDK's `identityKeys`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The two headers for a request to `path` (`/discover` or `/invoke/Svc/handler`).
    pub fn headers(&self, path: &str, key: Option<&str>) -> [(&'static str, String); 2] {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        [(SCHEME_HEADER, "v1".to_owned()), (JWT_HEADER, self.token(path, key, now))]
    }

    fn token(&self, path: &str, key: Option<&str>, now: u64) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.public_key });
        let life = self.expiration.as_secs();
        let mut claims =
            serde_json::json!({ "aud": path, "iat": now, "nbf": now.saturating_sub(life), "exp": now + life });
        if let Some(key) = key {
            claims["sub"] = key.into();
        }
        let signing_input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64URL.encode(signature.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn tokens_verify_against_the_public_key_they_name() {
        let id = RequestIdentity::generate(Duration::from_secs(60));
        let token = id.token("/invoke/Greeter/greet", Some("k1"), 1_800_000_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], id.public_key());
        assert_eq!(claims["aud"], "/invoke/Greeter/greet");
        assert_eq!(claims["sub"], "k1");
        assert_eq!(
            (claims["iat"].as_u64(), claims["nbf"].as_u64(), claims["exp"].as_u64()),
            (Some(1_800_000_000), Some(1_799_999_940), Some(1_800_000_060))
        );

        let raw = bs58::decode(id.public_key().strip_prefix("publickeyv1_").unwrap()).into_vec().unwrap();
        let public = VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap();
        let signature = Signature::from_slice(&B64URL.decode(parts[2]).unwrap()).unwrap();
        public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).expect("verifies");
        let other = RequestIdentity::generate(Duration::from_secs(60));
        assert_ne!(other.public_key(), id.public_key());
    }

    #[test]
    fn keys_round_trip_through_pem_files_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let id = RequestIdentity::generate(Duration::from_secs(60));
        id.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(id.write_new(&path), Err(IdentityError::Write { .. })), "never overwrites");
        let read = RequestIdentity::from_pem_file(&path, Duration::from_secs(60)).unwrap();
        assert_eq!(read.public_key(), id.public_key());

        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n").unwrap();
        let e = RequestIdentity::from_pem_file(&bad, Duration::from_secs(60)).err().unwrap();
        assert!(e.to_string().contains("bad.pem") && e.to_string().contains("PKCS#8"), "{e}");
        let e = RequestIdentity::from_pem_file(&dir.path().join("missing.pem"), Duration::from_secs(60)).err().unwrap();
        assert!(matches!(e, IdentityError::Read { .. }), "{e}");
    }
}
