//! Encryption at rest of the signing keys' private parts: AES-256-GCM (aws-lc-rs, the crypto
//! library the IDP signs with) under a key-encryption key (KEK) that is not in the database, with
//! the key id as associated data (a sealed key cannot be moved to another row).
//!
//! Where the KEK comes from ([`KekSource`], resolved by the settings): the environment variable
//! `IDP_KEY_ENCRYPTION_KEY`, else the file `key_encryption_key_file` of the configuration, else
//! a file generated next to the SQLite database on first start (logged), so the demo needs no
//! manual step. Either holds 32 bytes as 64 hex digits or unpadded base64url.
//!
//! A stored private key is `MAGIC || nonce (12) || ciphertext || tag (16)`; a plaintext PKCS#8
//! key (from a database written before encryption) starts with a DER SEQUENCE byte instead and is
//! sealed on start ([`crate::oauth::keys::seal_plaintext_keys`]).

use crate::settings::{KekSource, decode_key_text};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk, Salt};
use aws_lc_rs::hmac;
use rand::RngCore;
use std::fmt;
use std::path::{Path, PathBuf};

/// Marks a sealed private key (a PKCS#8 key begins with 0x30).
const MAGIC: &[u8; 8] = b"idpkek1:";

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be 32 bytes as 64 hex digits or base64url")]
    Malformed,
    #[error("key-encryption key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("encrypting a private key failed")]
    Seal,
    #[error(
        "private key {kid} cannot be decrypted: wrong key-encryption key (IDP_KEY_ENCRYPTION_KEY, key_encryption_key_file)?"
    )]
    Open { kid: String },
}

/// The key that seals signing keys in the store; every replica holds the same one, so it is also
/// the root from which secrets all replicas must share are derived ([`Kek::derive_hmac_key`]).
pub struct Kek(LessSafeKey, Prk);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

impl Kek {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Kek, KekError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KekError::Malformed)?;
        let prk = Salt::new(HKDF_SHA256, b"oauth2-gateway idp kek").extract(bytes);
        Ok(Kek(LessSafeKey::new(key), prk))
    }

    /// An HMAC-SHA256 key for `purpose`, derived from this key with HKDF-SHA256 (RFC 5869; the
    /// purpose is the `info`): the same on every replica, independent of the sealing key and of
    /// every other purpose's key. Used for the DPoP server nonces.
    pub fn derive_hmac_key(&self, purpose: &str) -> Result<hmac::Key, KekError> {
        let info = [purpose.as_bytes()];
        let okm = self
            .1
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| KekError::Malformed)?;
        Ok(hmac::Key::from(okm))
    }

    /// 64 hex digits or unpadded base64url of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Kek, KekError> {
        let bytes = decode_key_text(text).ok_or(KekError::Malformed)?;
        Kek::from_bytes(&bytes)
    }

    /// Loads (or for [`KekSource::Generated`], creates) the key.
    pub fn load(source: &KekSource) -> Result<Kek, KekError> {
        match source {
            KekSource::Value(text) => Kek::parse(text),
            KekSource::File(path) => Kek::parse(&read(path)?),
            KekSource::Generated(path) => match std::fs::read_to_string(path) {
                Ok(text) => Kek::parse(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path),
                Err(e) => Err(file_error(path, e)),
            },
            KekSource::Ephemeral => Kek::from_bytes(&random_bytes()),
        }
    }

    /// Seals the private key of `kid`.
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, KekError> {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut sealed = private_key.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KekError::Seal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The private key of `kid` from what [`Kek::seal`] made.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, KekError> {
        let failed = || KekError::Open {
            kid: kid.to_owned(),
        };
        let rest = stored.strip_prefix(MAGIC.as_slice()).ok_or_else(failed)?;
        if rest.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?;
        let mut buf = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| failed())?;
        Ok(plain.to_vec())
    }
}

/// Whether a stored private key is sealed (else it is plaintext PKCS#8 from an older version).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

fn file_error(path: &Path, e: impl fmt::Display) -> KekError {
    KekError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn read(path: &Path) -> Result<String, KekError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, e))
}

/// Writes a new random key to `path` (owner-only permissions, never over an existing file).
fn generate(path: &Path) -> Result<Kek, KekError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = random_bytes::<32>();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e))?;
    tracing::warn!(
        path = %path.display(),
        "no key-encryption key configured: generated one; signing keys in the database are \
         encrypted with it (keep it with backups, or set IDP_KEY_ENCRYPTION_KEY or \
         key_encryption_key_file)"
    );
    Kek::from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::settings::GENERATED_FILE_NAME;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let kek = Kek::parse(&"11".repeat(32)).unwrap();
        let sealed = kek.seal("kid-1", b"\x30private").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(b"\x30private"));
        assert!(!sealed.windows(8).any(|w| w == b"\x30private"));
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"\x30private");
        assert!(kek.open("kid-2", &sealed).is_err(), "bound to its row");
        let other = Kek::parse(&URL_SAFE_NO_PAD.encode([2u8; 32])).unwrap();
        assert!(matches!(
            other.open("kid-1", &sealed),
            Err(KekError::Open { .. })
        ));
        assert!(kek.open("kid-1", b"\x30private").is_err());
        for bad in ["", "zz", &"11".repeat(31), &"11".repeat(33)] {
            assert!(Kek::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_generated_kek_is_created_once_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(GENERATED_FILE_NAME);
        let source = KekSource::Generated(path.clone());
        let first = Kek::load(&source).unwrap();
        let sealed = first.seal("k", b"secret").unwrap();
        let again = Kek::load(&source).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), b"secret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let missing = KekSource::File(dir.path().join("absent"));
        assert!(matches!(Kek::load(&missing), Err(KekError::File { .. })));
    }
}
