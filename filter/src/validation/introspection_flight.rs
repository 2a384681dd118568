//! One introspection call in flight per token per Envoy. The first worker that misses the cache
//! for a token *leads*: it records the flight (a hash of the token, never the token, and until
//! when the flight may last) and asks the provider. A request for the same token that arrives
//! meanwhile, on any worker, *follows*: it is held until the leader's answer is in the shared
//! cache ([`crate::validation::introspection_cache`]), then decided from it.
//!
//! Flights live in one shared entry written with compare-and-set. A flight ends when its leader
//! releases it (answered, refused or failed) or when its time runs out (a leader whose stream
//! died without releasing it). When the entry is full or keeps losing races, the caller leads:
//! the worst case is one more call to the provider, never a request decided without an answer.

use crate::shared_state::{CAS_ATTEMPTS, SharedData};

/// The shared entry holding every flight of this Envoy.
pub const FLIGHTS_KEY: &str = "oauth2gw/introspection/in-flight";
/// Flights kept at once; beyond it a miss leads without being recorded.
pub const MAX_FLIGHTS: usize = 256;
/// How much longer than the leader's call timeout a flight may last before a follower stops
/// waiting for it.
pub const FLIGHT_MARGIN_MS: u64 = 1_000;
const ENTRY_BYTES: usize = 16;

/// What a request that misses the cache does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    /// Ask the provider, then [`release`].
    Lead,
    /// Another request is asking: wait for its answer (at most until `until_ms`).
    Follow { until_ms: u64 },
}

fn flights(bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    bytes.chunks_exact(ENTRY_BYTES).filter_map(|chunk| {
        let (hash, until) = chunk.split_first_chunk::<8>()?;
        let until = until.first_chunk::<8>()?;
        Some((u64::from_le_bytes(*hash), u64::from_le_bytes(*until)))
    })
}

fn encode(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for (hash, until) in entries {
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&until.to_le_bytes());
    }
    out
}

/// The live flight for `hash` at `now_ms`: until when it may last.
pub fn in_flight(shared: &dyn SharedData, hash: u64, now_ms: u64) -> Option<u64> {
    let (bytes, _) = shared.get(FLIGHTS_KEY)?;
    flights(&bytes)
        .find(|&(h, until)| h == hash && until > now_ms)
        .map(|(_, until)| until)
}

/// Leads the introspection of `hash` (recording a flight that lasts at most `call_timeout_ms`
/// plus [`FLIGHT_MARGIN_MS`]) or follows the flight already there.
pub fn claim(shared: &dyn SharedData, hash: u64, now_ms: u64, call_timeout_ms: u64) -> Flight {
    let until_ms = now_ms
        .saturating_add(call_timeout_ms)
        .saturating_add(FLIGHT_MARGIN_MS);
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = match shared.get(FLIGHTS_KEY) {
            Some((bytes, cas)) => (bytes, Some(cas)),
            None => (Vec::new(), None),
        };
        let mut live: Vec<(u64, u64)> = flights(&bytes)
            .filter(|&(_, until)| until > now_ms)
            .collect();
        if let Some(&(_, until)) = live.iter().find(|&&(h, _)| h == hash) {
            return Flight::Follow { until_ms: until };
        }
        if live.len() >= MAX_FLIGHTS {
            return Flight::Lead;
        }
        live.push((hash, until_ms));
        if shared.set(FLIGHTS_KEY, &encode(&live), cas).is_ok() {
            return Flight::Lead;
        }
    }
    Flight::Lead
}

/// Ends the flight of `hash` (its answer is in the cache, or there is none to wait for).
pub fn release(shared: &dyn SharedData, hash: u64) {
    for _ in 0..CAS_ATTEMPTS {
        let Some((bytes, cas)) = shared.get(FLIGHTS_KEY) else {
            return;
        };
        let kept: Vec<(u64, u64)> = flights(&bytes).filter(|&(h, _)| h != hash).collect();
        if kept.len() * ENTRY_BYTES == bytes.len() {
            return;
        }
        if shared.set(FLIGHTS_KEY, &encode(&kept), Some(cas)).is_ok() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    #[test]
    fn the_first_miss_leads_the_next_follow_until_it_is_released() {
        let shared = MemoryShared::default();
        assert_eq!(claim(&shared, 7, 1_000, 500), Flight::Lead);
        assert_eq!(in_flight(&shared, 7, 1_001), Some(2_500));
        assert_eq!(
            claim(&shared, 7, 1_010, 500),
            Flight::Follow { until_ms: 2_500 }
        );
        assert_eq!(claim(&shared, 8, 1_010, 500), Flight::Lead, "another token");
        release(&shared, 7);
        assert_eq!(in_flight(&shared, 7, 1_020), None);
        assert_eq!(in_flight(&shared, 8, 1_020), Some(2_510), "the other stays");
        assert_eq!(claim(&shared, 7, 1_020, 500), Flight::Lead);
    }

    #[test]
    fn a_flight_whose_leader_never_released_it_ends_with_its_time() {
        let shared = MemoryShared::default();
        assert_eq!(claim(&shared, 7, 1_000, 500), Flight::Lead);
        assert_eq!(in_flight(&shared, 7, 2_499), Some(2_500));
        assert_eq!(in_flight(&shared, 7, 2_500), None);
        assert_eq!(claim(&shared, 7, 2_500, 500), Flight::Lead);
    }

    #[test]
    fn a_full_entry_leads_without_recording_and_the_token_is_never_stored() {
        let shared = MemoryShared::default();
        for hash in 0..MAX_FLIGHTS as u64 {
            assert_eq!(claim(&shared, hash, 0, 100), Flight::Lead);
        }
        let full = MAX_FLIGHTS as u64;
        assert_eq!(claim(&shared, full, 0, 100), Flight::Lead);
        assert_eq!(claim(&shared, full, 0, 100), Flight::Lead, "not recorded");
        let (bytes, _) = shared.get(FLIGHTS_KEY).unwrap();
        assert_eq!(bytes.len(), MAX_FLIGHTS * ENTRY_BYTES);
        // expired flights make room again
        assert_eq!(claim(&shared, full, 2_000, 100), Flight::Lead);
        assert_eq!(
            claim(&shared, full, 2_001, 100),
            Flight::Follow { until_ms: 3_100 }
        );
    }

    #[test]
    fn releasing_what_is_not_there_writes_nothing() {
        let shared = MemoryShared::default();
        release(&shared, 1);
        assert!(shared.get(FLIGHTS_KEY).is_none());
        claim(&shared, 2, 0, 100);
        let (_, cas) = shared.get(FLIGHTS_KEY).unwrap();
        release(&shared, 1);
        assert_eq!(shared.get(FLIGHTS_KEY).unwrap().1, cas);
    }
}
