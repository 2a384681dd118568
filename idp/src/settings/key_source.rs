//! Where the key that encrypts signing keys at rest comes from (see
//! the domain's `oauth::keys::encryption`): `IDP_KEY_ENCRYPTION_KEY`, else `key_encryption_key_file`,
//! else a file generated next to the SQLite database (with PostgreSQL, one of the first two is
//! required: every replica needs the same key).

use super::{Overrides, SettingsError, err};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use std::path::PathBuf;

/// File name of the generated key-encryption key, in the database's directory.
pub const GENERATED_FILE_NAME: &str = "idp-key-encryption.key";

/// Where the key-encryption key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KekSource {
    /// The value itself (from `IDP_KEY_ENCRYPTION_KEY`).
    Value(String),
    /// A file the operator provides (`key_encryption_key_file`); it must exist.
    File(PathBuf),
    /// A file the IDP creates on first start if it is missing.
    Generated(PathBuf),
    /// A fresh random key for this process only (an in-memory database dies with it).
    Ephemeral,
}

impl fmt::Debug for KekSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KekSource::Value(_) => f.write_str("Value([redacted])"),
            KekSource::File(p) => f.debug_tuple("File").field(p).finish(),
            KekSource::Generated(p) => f.debug_tuple("Generated").field(p).finish(),
            KekSource::Ephemeral => f.write_str("Ephemeral"),
        }
    }
}

/// The 32 bytes of a key-encryption key written as 64 hex digits or unpadded base64url
/// (surrounding whitespace ignored).
pub fn decode_key_text(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 {
        hex::decode(text).ok()?
    } else {
        URL_SAFE_NO_PAD.decode(text).ok()?
    };
    <[u8; 32]>::try_from(bytes).ok()
}

/// The key-encryption key's source: the environment, the configured file, else a file generated
/// next to a SQLite database file (an in-memory database gets a key for the process only).
pub(super) fn key_encryption_source(
    overrides: &Overrides,
    file: Option<String>,
    database: &str,
) -> Result<KekSource, SettingsError> {
    if let Some(value) = &overrides.key_encryption_key {
        decode_key_text(&value.0).ok_or_else(|| {
            err(
                "IDP_KEY_ENCRYPTION_KEY",
                "must be 32 bytes as 64 hex digits or base64url",
            )
        })?;
        return Ok(KekSource::Value(value.0.clone()));
    }
    if let Some(path) = file {
        return Ok(KekSource::File(path.into()));
    }
    if super::is_postgres_url(database) {
        // Every replica must open the keys the others sealed: one key, given to all of them.
        return Err(err(
            "key_encryption_key_file",
            "a postgres database needs the key-encryption key from IDP_KEY_ENCRYPTION_KEY or key_encryption_key_file (the same for every replica)",
        ));
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Ok(KekSource::Ephemeral);
    }
    let dir = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    Ok(KekSource::Generated(dir.join(GENERATED_FILE_NAME)))
}
