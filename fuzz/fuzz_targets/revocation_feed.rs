//! A revocation-feed answer → a page applied to the shared denylist, then a worker's copy synced
//! from it. Beyond no panic: the cursor is safe in a URL, and no revocation is lost — every id
//! the page names whose token can still be alive is refused afterwards.
#![no_main]

use filter::denylist::{Denylist, EXPIRY_MARGIN_SECONDS};
use filter::denylist_store::record;
use filter::feed_page::FeedPage;
use filter::shared_state::MemoryShared;
use gateway_fuzz::fixtures::NOW;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(page) = FeedPage::parse(data) else {
        return;
    };
    assert!(
        page.cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)),
        "a cursor unsafe in a URL"
    );
    let shared = MemoryShared::default();
    record(&shared, &page.revocations, NOW).expect("memory shared data never fails a write");
    let mut denylist = Denylist::default();
    denylist.sync(&shared);
    // The page again, read independently: each entry names a jti (else a sid) until `exp`.
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let entries = doc["revoked"].as_array().cloned().unwrap_or_default();
    for entry in entries {
        let Some(exp) = entry["exp"].as_u64() else {
            continue;
        };
        if exp.saturating_add(EXPIRY_MARGIN_SECONDS) <= NOW {
            continue; // its token is dead; the entry may be dropped
        }
        let jti = entry["jti"].as_str().filter(|s| !s.is_empty());
        let sid = entry["sid"].as_str().filter(|s| !s.is_empty());
        let revoked = match (jti, sid) {
            (Some(jti), _) => denylist.is_revoked(Some(jti), None),
            (None, Some(sid)) => denylist.is_revoked(None, Some(sid)),
            (None, None) => continue,
        };
        assert!(revoked, "a revocation of the feed was lost: {entry}");
    }
});
