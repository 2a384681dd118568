//! A provider's JWKS as every worker of an Envoy shares it: the fetched document in one
//! [versioned](crate::shared_state::update_versioned) entry, the fetch schedule and lease in
//! their own entries. Workers re-read the keys (and flush their token caches) only when the
//! document's content version moves, which happens only when a fetch brings different bytes:
//! backoff writes, early-refresh requests and refetches of the same keys leave it alone.

use crate::shared_state::refresh::JobKeys;
use crate::shared_state::{SetError, SharedData, Update, read_versioned, update_versioned};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksShare {
    /// The fetched document (versioned).
    pub keys: String,
    pub job: JobKeys,
}

impl JwksShare {
    /// The entries of the JWKS fetched from `cluster` at `path`.
    pub fn new(cluster: &str, path: &str) -> Self {
        JwksShare {
            keys: format!("oauth2gw/jwks/{cluster}{path}"),
            job: JobKeys {
                schedule: format!("oauth2gw/jwks-schedule/{cluster}{path}"),
                lease: format!("oauth2gw/lease/jwks/{cluster}{path}"),
            },
        }
    }

    /// Stores a fetched (and checked) document; written only when it differs from the stored one.
    pub fn store(&self, shared: &dyn SharedData, document: &[u8]) -> Result<Update, SetError> {
        update_versioned(shared, &self.keys, |current| {
            (current != document).then(|| document.to_vec())
        })
    }

    /// The stored document and its content version (0: nothing fetched yet).
    pub fn read(&self, shared: &dyn SharedData) -> (u64, Vec<u8>) {
        read_versioned(shared, &self.keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    #[test]
    fn only_new_key_material_moves_the_version() {
        let shared = MemoryShared::default();
        let jwks = JwksShare::new("idp", "/jwks");
        assert_eq!(jwks.read(&shared).0, 0);
        assert_eq!(
            jwks.store(&shared, b"{\"keys\":[1]}"),
            Ok(Update::Changed(1))
        );
        // The schedule lives elsewhere: backoff and early requests do not touch the keys.
        assert_eq!(jwks.job.record_failure(&shared, 10, 60_000), Ok(true));
        assert_eq!(jwks.job.request_early(&shared, 500, 0), Ok(true));
        assert_eq!(
            jwks.job.record_success(&shared, 30_000, 60_000, b""),
            Ok(true)
        );
        assert_eq!(jwks.read(&shared).0, 1);
        // A refetch of the same document: no write.
        assert_eq!(
            jwks.store(&shared, b"{\"keys\":[1]}"),
            Ok(Update::Unchanged(1))
        );
        assert_eq!(
            jwks.store(&shared, b"{\"keys\":[2]}"),
            Ok(Update::Changed(2))
        );
        assert_eq!(jwks.read(&shared), (2, b"{\"keys\":[2]}".to_vec()));
    }
}
