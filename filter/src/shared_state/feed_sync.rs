//! Whether the denylist is up to date with the IDP's revocation feed: the gateway has applied a
//! page that said nothing more follows (`more: false`, see [`crate::shared_state::feed_page`]). Until then a
//! gateway that requires it ([`enforced`]) refuses tokens with 503
//! ([`crate::http::denial::Denial::RevocationsNotLoaded`]), so a fresh Envoy (or a new VM) never accepts
//! a token revoked before it started in the gap before its first poll answers.
//!
//! Shared by every worker of one configuration: the worker that applies the page marks it in the
//! shared data ([`mark`]), after the page's revocations and the cursor are stored, so a worker
//! that sees the mark and then syncs the denylist sees every revocation the page brought. It is
//! never cleared: once up to date, a gateway keeps enforcing the list it has through a later
//! outage, as before. A worker reads the mark only until it has seen it ([`Seen`]): once up to
//! date, a request costs no host call for it.

use crate::config::FilterConfig;
use crate::shared_state::{SetError, SharedData};
use std::cell::Cell;

/// The shared entry: present (one byte) once the feed was read up to date.
pub const KEY: &str = "oauth2gw/denylist2/synced";

/// Whether this configuration refuses tokens until the feed was read up to date: a feed is
/// configured and `revocation_feed.require_initial_sync` is not turned off.
pub fn enforced(config: &FilterConfig) -> bool {
    config
        .revocation_feed
        .as_ref()
        .is_some_and(|f| f.require_initial_sync)
}

/// Whether a page, once applied, leaves the denylist up to date.
pub fn completes_sync(page: &crate::shared_state::feed_page::FeedPage) -> bool {
    !page.more
}

/// Whether some worker marked the feed as read up to date.
pub fn is_marked(shared: &dyn SharedData) -> bool {
    shared.get(KEY).is_some_and(|(value, _)| value == [1])
}

/// Marks the feed as read up to date (call after the page's revocations and cursor are stored).
/// `Ok(true)` when this call made the change (for a single log line and counter).
pub fn mark(shared: &dyn SharedData) -> Result<bool, SetError> {
    if is_marked(shared) {
        return Ok(false);
    }
    shared.set(KEY, &[1], None)?;
    Ok(true)
}

/// One worker's memory of the mark: shared data is read only until the mark was seen.
#[derive(Debug, Default)]
pub struct Seen(Cell<bool>);

impl Seen {
    /// Whether the feed was read up to date, reading the shared mark while not yet seen.
    pub fn synced(&self, shared: &dyn SharedData) -> bool {
        if self.0.get() {
            return true;
        }
        let marked = is_marked(shared);
        self.0.set(marked);
        marked
    }

    /// Remembers the mark this worker just made.
    pub fn remember(&self) {
        self.0.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    /// Counts reads, to show a worker stops reading once it saw the mark.
    #[derive(Default)]
    struct Counting {
        inner: MemoryShared,
        reads: Cell<usize>,
    }

    impl SharedData for Counting {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.reads.set(self.reads.get() + 1);
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn a_page_with_more_leaves_the_list_behind() {
        let page = |more| crate::shared_state::feed_page::FeedPage {
            cursor: "1".into(),
            revocations: Vec::new(),
            more,
        };
        assert!(!completes_sync(&page(true)));
        assert!(completes_sync(&page(false)));
    }

    #[test]
    fn the_mark_is_made_once_and_seen_by_every_worker() {
        let shared = Counting::default();
        let (one, other) = (Seen::default(), Seen::default());
        assert!(!one.synced(&shared));
        assert!(!other.synced(&shared));
        assert_eq!(mark(&shared), Ok(true), "the first mark");
        assert_eq!(
            mark(&shared),
            Ok(false),
            "already marked: no second log line"
        );
        assert!(other.synced(&shared), "another worker sees it");
        let reads = shared.reads.get();
        for _ in 0..10 {
            assert!(other.synced(&shared));
        }
        assert_eq!(shared.reads.get(), reads, "no read once seen");
        one.remember();
        assert!(one.synced(&shared));
        assert_eq!(shared.reads.get(), reads);
    }

    #[test]
    fn an_unreadable_mark_is_not_taken_as_synced() {
        let shared = MemoryShared::default();
        assert_eq!(shared.set(KEY, b"", None), Ok(()));
        assert!(!is_marked(&shared));
        assert!(!Seen::default().synced(&shared));
    }
}
