//! A worker's copy of each provider's keys: the inline keys from the configuration plus the last
//! JWKS fetched into shared data. A worker re-parses the shared copy only when its content version
//! (see [`crate::shared_state::jwks_share`]) changes, so parsing happens once per new document per worker.

use crate::jose::jwk::KeySet;

#[derive(Debug, Clone, Default)]
pub struct ProviderKeys {
    inline: KeySet,
    fetched: KeySet,
    version: Option<u64>,
    effective: KeySet,
}

impl ProviderKeys {
    pub fn new(inline: Option<KeySet>) -> Self {
        let inline = inline.unwrap_or_default();
        ProviderKeys {
            effective: inline.clone(),
            inline,
            fetched: KeySet::default(),
            version: None,
        }
    }

    /// The keys to validate with: inline keys first, then fetched ones.
    pub fn keys(&self) -> &KeySet {
        &self.effective
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Takes a new shared JWKS payload seen at `version`. Returns `Err` with the reason when the
    /// payload is unusable; the previous keys are then kept (a bad fetch never empties the set).
    pub fn absorb(&mut self, version: u64, payload: &[u8]) -> Result<(), String> {
        if self.version == Some(version) {
            return Ok(());
        }
        self.version = Some(version);
        if payload.is_empty() {
            return Ok(());
        }
        let parsed = KeySet::parse(payload).map_err(|e| e.to_string())?;
        self.fetched = parsed.set;
        let mut effective = self.inline.clone();
        effective.keys.extend(self.fetched.keys.iter().cloned());
        self.effective = effective;
        Ok(())
    }
}
