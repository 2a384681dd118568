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
//! **Until the feed was read up to date** ([`crate::shared_state::feed_sync`]) polls do not ask to be held: a
//! fresh gateway that refuses tokens until then must not wait out an empty long poll (the
//! first poll of an empty feed, or the one after a full page that happened to be the last). Such
//! a poll is answered at once, and the next one starts at once.
//!
//! [`DEFAULT_LONG_POLL_SECONDS`]: crate::config::services::DEFAULT_LONG_POLL_SECONDS

use crate::config::services::RevocationFeed;

/// Whether a poll asks the IDP to hold it: long polling is on and the denylist is already up to
/// date (`synced`).
pub fn is_long(feed: &RevocationFeed, synced: bool) -> bool {
    synced && feed.long_poll_seconds > 0
}

/// The request path of a poll from `cursor` (none before the first page); `long` from
/// [`is_long`].
pub fn request_path(feed: &RevocationFeed, cursor: Option<&str>, long: bool) -> String {
    let mut path = feed.endpoint.path.clone();
    let mut params = Vec::with_capacity(2);
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        params.push(format!("since={cursor}"));
    }
    if long {
        params.push(format!("wait={}", feed.long_poll_seconds));
    }
    for param in params {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&param);
    }
    path
}

/// How long a poll may take before it counts as failed: the endpoint's timeout, plus the wait an
/// IDP may hold a `long` poll for.
pub fn timeout_ms(feed: &RevocationFeed, long: bool) -> u64 {
    let wait = if long { feed.long_poll_seconds } else { 0 };
    feed.endpoint
        .timeout_ms
        .saturating_add(wait.saturating_mul(1_000))
}

/// What a successful poll brought: its entries, and whether the IDP cut the page short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub entries: usize,
    pub more: bool,
}

/// After a successful poll (`long` or not) that brought `page` and took `elapsed_ms`: how long
/// until the next one (0: at once).
pub fn next_interval_ms(feed: &RevocationFeed, long: bool, page: Answered, elapsed_ms: u64) -> u64 {
    let entries = page.entries;
    if page.more {
        // The rest of a page cut short, at once, whatever the mode.
        return 0;
    }
    if feed.long_poll_seconds == 0 {
        return feed.poll_ms;
    }
    if !long {
        // A poll made before the list was up to date: the next one (long, once up to date) at
        // once; its speed says nothing about whether the IDP holds requests.
        return 0;
    }
    let held = elapsed_ms.saturating_mul(2) >= feed.long_poll_seconds.saturating_mul(1_000);
    if entries > 0 || held { 0 } else { feed.poll_ms }
}

/// Whether the next poll may start as soon as this answer is handled, rather than at the next
/// tick: it is due at once (`next_ms` 0) and the answer was news — a page that moved the cursor,
/// or an empty one (a held poll that ran out, or the first one once up to date). An IDP that
/// answers the same page again does not make the polls a loop (the glues also allow only a few
/// such polls per tick).
pub fn at_once(next_ms: u64, entries: usize, cursor_moved: bool) -> bool {
    next_ms == 0 && (entries == 0 || cursor_moved)
}

/// How many polls a glue starts from answers (not ticks) between two ticks, at most.
pub const AT_ONCE_PER_TICK: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::services::Callout;

    fn got(entries: usize) -> Answered {
        Answered {
            entries,
            more: false,
        }
    }

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
            require_initial_sync: true,
        }
    }

    #[test]
    fn only_news_due_at_once_starts_a_poll_before_the_tick() {
        assert!(at_once(0, 3, true), "a page that moved the cursor");
        assert!(at_once(0, 0, false), "a held poll that ran out");
        assert!(!at_once(0, 3, false), "the same page again");
        assert!(!at_once(500, 3, true), "not due yet");
    }

    #[test]
    fn the_path_carries_the_cursor_and_the_wait() {
        let path = |f: &RevocationFeed, cursor| request_path(f, cursor, is_long(f, true));
        assert_eq!(path(&feed(20), None), "/oauth2/revocations?wait=20");
        assert_eq!(
            path(&feed(20), Some("17")),
            "/oauth2/revocations?since=17&wait=20"
        );
        assert_eq!(path(&feed(0), Some("17")), "/oauth2/revocations?since=17");
        assert_eq!(path(&feed(0), Some("")), "/oauth2/revocations");
        let mut with_query = feed(5);
        with_query.endpoint.path = "/feed?tenant=a".to_owned();
        assert_eq!(
            path(&with_query, Some("3")),
            "/feed?tenant=a&since=3&wait=5"
        );
    }

    #[test]
    fn before_the_list_is_up_to_date_no_poll_asks_to_be_held() {
        let f = feed(20);
        assert!(!is_long(&f, false));
        assert!(is_long(&f, true));
        assert!(!is_long(&feed(0), true));
        assert_eq!(
            request_path(&f, Some("17"), is_long(&f, false)),
            "/oauth2/revocations?since=17"
        );
        assert_eq!(timeout_ms(&f, false), 3_000);
        // Whatever it brought and however fast: the next poll at once.
        assert_eq!(next_interval_ms(&f, false, got(0), 4), 0);
        assert_eq!(next_interval_ms(&f, false, got(1_000), 4), 0);
        // Without the long poll, the interval as always.
        assert_eq!(next_interval_ms(&feed(0), false, got(0), 4), 500);
    }

    #[test]
    fn the_rest_of_a_page_cut_short_is_asked_for_at_once_in_every_mode() {
        let full = Answered {
            entries: 1_000,
            more: true,
        };
        for long in [false, true] {
            assert_eq!(next_interval_ms(&feed(20), long, full, 4), 0);
            assert_eq!(next_interval_ms(&feed(0), long, full, 4), 0);
        }
    }

    #[test]
    fn a_held_poll_gets_the_wait_on_top_of_the_timeout() {
        assert_eq!(timeout_ms(&feed(20), true), 23_000);
        assert_eq!(timeout_ms(&feed(0), true), 3_000);
    }

    #[test]
    fn the_next_poll_starts_at_once_after_entries_or_a_held_answer() {
        let f = feed(20);
        assert_eq!(
            next_interval_ms(&f, true, got(3), 5),
            0,
            "entries: poll again at once"
        );
        assert_eq!(
            next_interval_ms(&f, true, got(0), 20_000),
            0,
            "held for the wait"
        );
        assert_eq!(
            next_interval_ms(&f, true, got(0), 10_000),
            0,
            "held for half of it"
        );
    }

    #[test]
    fn an_idp_that_does_not_hold_requests_is_polled_every_poll_ms() {
        let f = feed(20);
        assert_eq!(next_interval_ms(&f, true, got(0), 4), 500);
        assert_eq!(next_interval_ms(&f, true, got(0), 9_999), 500);
        // Without the long poll, always the interval, entries or not.
        assert_eq!(next_interval_ms(&feed(0), true, got(3), 5), 500);
        assert_eq!(next_interval_ms(&feed(0), true, got(0), 60_000), 500);
    }
}
