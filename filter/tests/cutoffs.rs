//! Cut-offs in the shared denylist: "tokens of issuer I with session S (or subject U) issued at or
//! before T are refused", not bans — a later login of the same session or user passes — kept until
//! the tokens they name have expired, at a million entries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::{
    CutoffKind, Denylist, EXPIRY_MARGIN_SECONDS, IdKind, TokenIds,
};
use filter::shared_state::denylist_store::{Revocation, prune_expired, record};

const NOW: u64 = 1_700_000_000;
const OP: &str = "https://op.example";

fn token(iss: &str, sid: Option<&str>, sub: Option<&str>, iat: Option<u64>) -> TokenIds {
    TokenIds::of(iss, Some("some-jti"), sid, sub, iat)
}

fn synced(shared: &MemoryShared) -> Denylist {
    let mut worker = Denylist::default();
    worker.sync(shared);
    worker
}

#[test]
fn a_session_cut_off_refuses_tokens_issued_up_to_it_and_passes_later_ones() {
    let shared = MemoryShared::default();
    let cut = Revocation::cutoff(CutoffKind::Session, OP, "s1", NOW, NOW + 3_600);
    record(&shared, &[cut], NOW).unwrap();
    let worker = synced(&shared);
    assert!(worker.refuses(&token(OP, Some("s1"), Some("alice"), Some(NOW - 10))));
    assert!(
        worker.refuses(&token(OP, Some("s1"), None, Some(NOW))),
        "at T"
    );
    assert!(
        !worker.refuses(&token(OP, Some("s1"), None, Some(NOW + 1))),
        "a new login reusing the sid (keycloak #32197) passes"
    );
    assert!(
        worker.refuses(&token(OP, Some("s1"), None, None)),
        "a token without iat may be older than the cut-off: refused"
    );
    assert!(
        !worker.refuses(&token("https://other", Some("s1"), None, Some(NOW - 10))),
        "another issuer's session of the same name"
    );
    assert!(!worker.refuses(&token(OP, Some("s2"), None, Some(NOW - 10))));
    assert!(
        !worker.is_revoked(None, Some("s1")),
        "a cut-off is not a sid entry of our own IDP"
    );
}

#[test]
fn a_subject_cut_off_covers_every_session_of_that_user() {
    let shared = MemoryShared::default();
    let cut = Revocation::cutoff(CutoffKind::Subject, OP, "alice", NOW, NOW + 600);
    record(&shared, &[cut], NOW).unwrap();
    let worker = synced(&shared);
    assert!(worker.refuses(&token(OP, Some("a"), Some("alice"), Some(NOW - 1))));
    assert!(worker.refuses(&token(OP, None, Some("alice"), Some(NOW - 1))));
    assert!(!worker.refuses(&token(OP, Some("a"), Some("bob"), Some(NOW - 1))));
    assert!(!worker.refuses(&token(OP, None, Some("alice"), Some(NOW + 1))));
}

#[test]
fn the_later_of_two_cut_offs_holds_and_a_jti_beside_them_is_still_all_or_nothing() {
    let shared = MemoryShared::default();
    let early = Revocation::cutoff(CutoffKind::Session, OP, "s", NOW, NOW + 600);
    let late = Revocation::cutoff(CutoffKind::Session, OP, "s", NOW + 100, NOW + 700);
    record(&shared, &[late], NOW).unwrap();
    record(
        &shared,
        &[early, Revocation::new(IdKind::Jti, "j", NOW + 60)],
        NOW,
    )
    .unwrap();
    let worker = synced(&shared);
    assert!(worker.refuses(&token(OP, Some("s"), None, Some(NOW + 50))));
    assert!(!worker.refuses(&token(OP, Some("s"), None, Some(NOW + 101))));
    let by_jti = TokenIds::of(OP, Some("j"), None, None, Some(NOW + 10_000));
    assert!(
        worker.refuses(&by_jti),
        "a revoked jti is refused whatever its iat"
    );
}

#[test]
fn a_cut_off_is_forgotten_once_the_tokens_it_names_have_expired() {
    let shared = MemoryShared::default();
    let forget_at = NOW + 600;
    let cut = Revocation::cutoff(CutoffKind::Session, OP, "s", NOW, forget_at);
    record(&shared, &[cut], NOW).unwrap();
    let later = forget_at + EXPIRY_MARGIN_SECONDS;
    prune_expired(&shared, later - 1, 4096).unwrap();
    assert!(synced(&shared).refuses(&token(OP, Some("s"), None, Some(NOW))));
    prune_expired(&shared, later, 4096).unwrap();
    let worker = synced(&shared);
    assert!(worker.is_empty());
    assert!(!worker.refuses(&token(OP, Some("s"), None, Some(NOW))));
}

#[test]
fn a_cut_off_kept_on_one_worker_only_still_refuses_there() {
    let mut worker = Denylist::default();
    let cut = Revocation::cutoff(CutoffKind::Session, OP, "s", NOW, NOW + 600);
    worker.add_local_entry(cut.hash, cut.cutoff);
    assert!(worker.refuses(&token(OP, Some("s"), None, Some(NOW))));
    assert!(!worker.refuses(&token(OP, Some("s"), None, Some(NOW + 1))));
}

#[test]
fn a_million_cut_offs_beside_revocations_keep_every_answer() {
    let shared = MemoryShared::default();
    let batch: Vec<Revocation> = (0..1_000_000u64)
        .map(|i| {
            if i % 2 == 0 {
                Revocation::cutoff(CutoffKind::Session, OP, &format!("s{i}"), NOW, NOW + 3_600)
            } else {
                Revocation::new(IdKind::Jti, &format!("j{i}"), NOW + 3_600)
            }
        })
        .collect();
    for chunk in batch.chunks(100_000) {
        assert_eq!(record(&shared, chunk, NOW).unwrap().refused, 0);
    }
    let worker = synced(&shared);
    assert_eq!(worker.len(), 1_000_000);
    for i in (0..1_000_000u64).step_by(997) {
        if i % 2 == 0 {
            let sid = format!("s{i}");
            assert!(
                worker.refuses(&token(OP, Some(&sid), None, Some(NOW))),
                "{i}"
            );
            assert!(
                !worker.refuses(&token(OP, Some(&sid), None, Some(NOW + 1))),
                "{i}"
            );
        } else {
            assert!(worker.is_revoked(Some(&format!("j{i}")), None), "{i}");
        }
    }
    assert!(!worker.refuses(&token(OP, Some("s-none"), None, Some(NOW))));
}
