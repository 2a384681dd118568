//! The shared denylist at scale, natively: memory per entry (shared and per worker), the time to
//! apply a feed page and for a worker to pick it up, and the cost of a look-up, at 10⁶ entries.
//!
//! `cargo run --release -p filter --example denylist_scale`
// A benchmark reads the wall clock to time the core; the core itself never does.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)]

use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::{Denylist, IdKind, SHARDS};
use filter::shared_state::denylist_store::{Revocation, record, shared_bytes};
use filter::shared_state::feed_page::FeedPage;
use std::hint::black_box;
use std::time::{Duration, Instant};

const NOW: u64 = 1_700_000_000;
const LIVE: u64 = 1_000_000;
const PAGE: u64 = 1_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let shared = MemoryShared::default();
    let all: Vec<Revocation> = (0..LIVE)
        .map(|i| {
            Revocation::new(
                IdKind::Jti,
                &format!("{i:08x}-1b6a-4c1e-9c1f-5f0d2d3c4b5a"),
                NOW + 3_600,
            )
        })
        .collect();
    let started = Instant::now();
    record(&shared, &all, NOW).unwrap();
    println!(
        "initial load of {LIVE} entries in one write: {:?}",
        started.elapsed()
    );
    let mut worker = Denylist::default();
    let started = Instant::now();
    worker.sync(&shared);
    println!(
        "a worker's first sync of {LIVE} entries: {:?}",
        started.elapsed()
    );
    let bytes = shared_bytes(&shared);
    println!(
        "shared data: {bytes} bytes in {} keys ({:.1} bytes per entry)",
        SHARDS + 2,
        bytes as f64 / LIVE as f64
    );
    let heap = worker.heap_bytes();
    println!(
        "per worker: {heap} bytes ({:.1} bytes per entry)",
        heap as f64 / LIVE as f64
    );

    // Feed pages of 1000 new entries on top of 10⁶ live ones: parse + record, then a worker's sync.
    let mut apply = Vec::new();
    let mut sync = Vec::new();
    let mut shards_read = 0;
    for p in 0..20u64 {
        let entries: Vec<String> = (0..PAGE)
            .map(|i| {
                format!(
                    r#"{{"jti":"page{p}-{i}-1b6a-4c1e-9c1f-5f0d2d3c4b5a","exp":{}}}"#,
                    NOW + 3_600
                )
            })
            .collect();
        let body = format!(r#"{{"cursor":{p},"revoked":[{}]}}"#, entries.join(","));
        let started = Instant::now();
        let page = FeedPage::parse(body.as_bytes()).unwrap();
        record(&shared, &page.revocations, NOW).unwrap();
        apply.push(started.elapsed());
        let started = Instant::now();
        shards_read = worker.sync(&shared).shards_read;
        sync.push(started.elapsed());
    }
    println!(
        "a page of {PAGE} entries: parse + record {:?}; a worker's sync {:?} ({shards_read} shards re-read)",
        median(apply),
        median(sync)
    );

    let ids: Vec<String> = (0..100_000u64)
        .map(|i| format!("{:08x}-1b6a-4c1e-9c1f-5f0d2d3c4b5a", i * 7))
        .collect();
    let started = Instant::now();
    let mut hits = 0;
    for id in &ids {
        hits += usize::from(worker.is_revoked(black_box(Some(id)), black_box(Some("sid-1"))));
    }
    let per = started.elapsed() / ids.len() as u32;
    println!(
        "look-up (jti and sid, {hits} of {} revoked): {per:?} each",
        ids.len()
    );
    let unchanged = Instant::now();
    for _ in 0..10_000 {
        black_box(worker.sync(&shared));
    }
    println!("sync with nothing new: {:?}", unchanged.elapsed() / 10_000);
}
