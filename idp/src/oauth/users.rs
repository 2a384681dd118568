//! Verifying a user's password, shared by the password grant and the login form: argon2 on a
//! bounded pool of blocking threads, per-user delays and per-address lockout, and the same answer
//! (and the same cost) whether the user exists, the password is wrong, or a budget is spent.

use crate::oauth::error::OAuthError;
use crate::oauth::lockout::Lockout;
use crate::settings::{PasswordPolicy, User};
use crate::store::Store;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use prometheus_client::metrics::counter::Counter;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// argon2's working memory (m KiB, 19 MiB by default), reused from one verification to the next.
/// Allocating it per verification made glibc keep each freed block in its thread's arena: the
/// IDP grew to ~480 MB after 200 logins (BENCHMARKS.md). At most `max_concurrent_hashes`
/// buffers exist, since verifications are bounded by that semaphore.
static BLOCKS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

fn take_blocks(count: usize) -> Vec<Block> {
    let spare = match BLOCKS.lock() {
        Ok(mut pool) => pool.pop(),
        Err(poisoned) => poisoned.into_inner().pop(),
    };
    let mut blocks = spare.unwrap_or_default();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    blocks
}

fn give_back(blocks: Vec<Block>) {
    match BLOCKS.lock() {
        Ok(mut pool) => pool.push(blocks),
        Err(poisoned) => poisoned.into_inner().push(blocks),
    }
}

/// Whether `password` matches the argon2 PHC string `hash` (constant-time comparison), computed
/// in pooled memory.
pub fn argon2_matches(password: &[u8], hash: &str) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(phc.algorithm.as_str()),
        Params::try_from(&phc),
        phc.salt.as_ref(),
        phc.hash.as_ref(),
    ) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let expected: &[u8] = expected.as_ref();
    let mut out = vec![0u8; expected.len()];
    let mut blocks = take_blocks(params.block_count());
    let argon2 = Argon2::new(algorithm, version, params);
    let computed =
        argon2.hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut blocks[..]);
    give_back(blocks);
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected))
}

/// A valid argon2 hash of a random password, verified when the user does not exist so that an
/// unknown username takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$wshfcGF5bL78iHt5Y1bwpA$Vab0386E/SrnsVKAO3IQN3O8KxqnVLNQTJdQSZlmpj0";

/// Why a login failed; deliberately one case for the user (`Rejected`), so no caller can tell
/// an unknown user from a wrong password or a lockout.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    Rejected,
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<crate::store::StoreError> for LoginError {
    fn from(e: crate::store::StoreError) -> Self {
        LoginError::Server(e.into())
    }
}

/// Password checks with their budgets: argon2 on a bounded pool, the login budgets
/// ([`Lockout`]), and a count of the verifications run (`idp_password_checks_total`).
pub struct Passwords {
    lockout: Lockout,
    /// Where the login budgets are kept (shared by every replica on the database).
    store: Arc<dyn Store>,
    /// Bounds concurrent argon2 computations.
    hashing: Semaphore,
    checks: Counter,
}

impl Passwords {
    pub fn new(policy: PasswordPolicy, store: Arc<dyn Store>) -> Self {
        Passwords {
            lockout: Lockout::new(policy),
            store,
            hashing: Semaphore::new(policy.max_concurrent_hashes),
            checks: Counter::default(),
        }
    }

    /// The count of argon2 verifications (registered by the metrics).
    pub fn checks(&self) -> Counter {
        self.checks.clone()
    }

    /// The user of `users`, if `password` is theirs and the login budgets of the user and of
    /// the client `address` (when known, see the http layer's `client_address`) allow a check now
    /// ([`crate::oauth::lockout`]). argon2 runs on every path, a spent budget included, so the
    /// time taken tells nothing.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        users: &[User],
        username: &str,
        password: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<User, LoginError> {
        let admitted = self
            .lockout
            .admits(&*self.store, username, address, now)
            .await?;
        let user = users.iter().find(|u| u.username == username).cloned();
        let hash = user
            .as_ref()
            .map_or(DUMMY_HASH.to_owned(), |u| u.password_argon2.clone());
        let password = password.to_owned();
        let permit =
            self.hashing.acquire().await.map_err(|_| {
                LoginError::Server(OAuthError::Server("hashing pool closed".into()))
            })?;
        let verified =
            tokio::task::spawn_blocking(move || argon2_matches(password.as_bytes(), &hash))
                .await
                .map_err(|e| OAuthError::Server(format!("hashing task: {e}")))?;
        drop(permit);
        self.checks.inc();
        if !admitted {
            // Out of budget: refused whatever the password, and not counted again.
            return Err(LoginError::Rejected);
        }
        match user.filter(|_| verified) {
            Some(user) => {
                self.lockout.record_success(&*self.store, username).await?;
                Ok(user)
            }
            None => {
                self.lockout
                    .record_failure(&*self.store, username, address, now)
                    .await?;
                Err(LoginError::Rejected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    #[test]
    fn pooled_verification_agrees_with_the_library() {
        let hash = Argon2::default()
            .hash_password(b"right-password")
            .unwrap()
            .to_string();
        assert!(argon2_matches(b"right-password", &hash));
        assert!(!argon2_matches(b"wrong-password", &hash));
        assert!(!argon2_matches(b"x", DUMMY_HASH));
        assert!(!argon2_matches(b"right-password", "not a hash"));
        // other parameters (as an operator's own hashes may have) work too
        let params = Params::new(8 * 1024, 1, 2, Some(16)).unwrap();
        let small = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"pw-123456")
            .unwrap()
            .to_string();
        assert!(argon2_matches(b"pw-123456", &small));
        assert!(!argon2_matches(b"pw-1234567", &small));
    }
}
