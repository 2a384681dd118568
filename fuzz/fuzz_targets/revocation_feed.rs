//! A revocation-feed answer → a page applied to the shared denylist, then a worker's copy synced
//! from it. Beyond no panic: the cursor is safe in a URL, and no revocation is lost — every id
//! the page names whose token can still be alive is refused afterwards (a cut-off: a token of its
//! issuer and session or subject issued at the cut-off time).
#![no_main]

use filter::shared_state::denylist::{Denylist, EXPIRY_MARGIN_SECONDS, TokenIds};
use filter::shared_state::denylist_store::record;
use filter::shared_state::feed_page::FeedPage;
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
        let iss = entry["iss"].as_str().filter(|s| !s.is_empty());
        if let (Some(iss), Some(cutoff)) = (iss, entry["cutoff"].as_u64()) {
            // Cut-off times are kept in 32 bits, below "every token".
            let at = cutoff.min(u64::from(u32::MAX - 1));
            let sub = entry["sub"].as_str().filter(|s| !s.is_empty());
            let token = TokenIds::of(iss, None, sid, sub, Some(at));
            assert!(denylist.refuses(&token), "a cut-off of the feed was lost: {entry}");
            continue;
        }
        let revoked = match (jti, sid) {
            (Some(jti), _) => denylist.is_revoked(Some(jti), None),
            (None, Some(sid)) => denylist.is_revoked(None, Some(sid)),
            (None, None) => continue,
        };
        assert!(revoked, "a revocation of the feed was lost: {entry}");
    }
});
