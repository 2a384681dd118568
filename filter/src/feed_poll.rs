//! One poll of the IDP's revocation feed, as both glues make it: the request path (cursor and
//! long-poll wait), the call's timeout, and when the next poll starts.
//!
//! **Long poll.** With `long_poll_seconds = S` (default [`DEFAULT_LONG_POLL_SECONDS`]) the poll
//! asks `?since=C&wait=S`: an IDP that holds requests answers as soon as a revocation exists, or
//! after `S` seconds with an empty page. The call's timeout is the endpoint's timeout plus `S`, so
//! a held request is not cut off; and the next poll starts at once after a page with entries or
//! after a held empty answer, so one poll is always waiting at the IDP. An IDP that does not hold
//! requests (an older one, or a proxy in between that answers) returns the empty page at once:
//! an empty answer faster than half the wait is taken as that, and the gateway polls every
//! `poll_ms` as without the long poll. Failures back off as before, whatever the mode.
//!
//! [`DEFAULT_LONG_POLL_SECONDS`]: crate::config::services::DEFAULT_LONG_POLL_SECONDS

use crate::config::services::RevocationFeed;

/// The request path of a poll from `cursor` (none before the first page).
pub fn request_path(feed: &RevocationFeed, cursor: Option<&str>) -> String {
    let mut path = feed.endpoint.path.clone();
    let mut params = Vec::with_capacity(2);
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        params.push(format!("since={cursor}"));
    }
    if feed.long_poll_seconds > 0 {
        params.push(format!("wait={}", feed.long_poll_seconds));
    }
    for param in params {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&param);
    }
    path
}

/// How long a poll may take before it counts as failed: the endpoint's timeout, plus the wait an
/// IDP may hold it for.
pub fn timeout_ms(feed: &RevocationFeed) -> u64 {
    feed.endpoint
        .timeout_ms
        .saturating_add(feed.long_poll_seconds.saturating_mul(1_000))
}

/// After a successful poll that brought `entries` revocations and took `elapsed_ms`: how long
/// until the next one (0: at once).
pub fn next_interval_ms(feed: &RevocationFeed, entries: usize, elapsed_ms: u64) -> u64 {
    if feed.long_poll_seconds == 0 {
        return feed.poll_ms;
    }
    let held = elapsed_ms.saturating_mul(2) >= feed.long_poll_seconds.saturating_mul(1_000);
    if entries > 0 || held { 0 } else { feed.poll_ms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::services::Callout;

    fn feed(long_poll_seconds: u64) -> RevocationFeed {
        RevocationFeed {
            endpoint: Callout {
                cluster: "idp".to_owned(),
                path: "/oauth2/revocations".to_owned(),
                authority: "idp".to_owned(),
                timeout_ms: 3_000,
            },
            poll_ms: 500,
            long_poll_seconds,
        }
    }

    #[test]
    fn the_path_carries_the_cursor_and_the_wait() {
        assert_eq!(request_path(&feed(20), None), "/oauth2/revocations?wait=20");
        assert_eq!(
            request_path(&feed(20), Some("17")),
            "/oauth2/revocations?since=17&wait=20"
        );
        assert_eq!(
            request_path(&feed(0), Some("17")),
            "/oauth2/revocations?since=17"
        );
        assert_eq!(request_path(&feed(0), Some("")), "/oauth2/revocations");
        let mut with_query = feed(5);
        with_query.endpoint.path = "/feed?tenant=a".to_owned();
        assert_eq!(
            request_path(&with_query, Some("3")),
            "/feed?tenant=a&since=3&wait=5"
        );
    }

    #[test]
    fn a_held_poll_gets_the_wait_on_top_of_the_timeout() {
        assert_eq!(timeout_ms(&feed(20)), 23_000);
        assert_eq!(timeout_ms(&feed(0)), 3_000);
    }

    #[test]
    fn the_next_poll_starts_at_once_after_entries_or_a_held_answer() {
        let f = feed(20);
        assert_eq!(next_interval_ms(&f, 3, 5), 0, "entries: poll again at once");
        assert_eq!(next_interval_ms(&f, 0, 20_000), 0, "held for the wait");
        assert_eq!(next_interval_ms(&f, 0, 10_000), 0, "held for half of it");
    }

    #[test]
    fn an_idp_that_does_not_hold_requests_is_polled_every_poll_ms() {
        let f = feed(20);
        assert_eq!(next_interval_ms(&f, 0, 4), 500);
        assert_eq!(next_interval_ms(&f, 0, 9_999), 500);
        // Without the long poll, always the interval, entries or not.
        assert_eq!(next_interval_ms(&feed(0), 3, 5), 500);
        assert_eq!(next_interval_ms(&feed(0), 0, 60_000), 500);
    }
}
