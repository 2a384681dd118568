//! A JWKS document → the key set the gateway verifies with (and the native module's parsed
//! keys). Beyond no panic: at most `MAX_KEYS` keys, each usable for some algorithm, and a
//! worker's key store (`absorb`) takes exactly what the parser keeps.
#![no_main]

use filter::jose::algorithm::Algorithm;
use filter::jose::jwk::{KeySet, MAX_KEYS};
use filter::jose::key_store::ProviderKeys;
use gateway_fuzz::native_verifier::ParsedKeys;
use libfuzzer_sys::fuzz_target;

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Es256,
    Algorithm::Rs256,
    Algorithm::Ps256,
    Algorithm::EdDsa,
];

fuzz_target!(|data: &[u8]| {
    let parsed = KeySet::parse(data);
    let mut store = ProviderKeys::new(None);
    let absorbed = store.absorb(1, data);
    let Ok(parsed) = parsed else {
        // An empty payload is "nothing published yet", not an error.
        assert!(
            absorbed.is_err() || data.is_empty(),
            "absorb took what parse refused"
        );
        assert!(store.keys().is_empty(), "a refused JWKS left keys behind");
        return;
    };
    assert!(absorbed.is_ok(), "absorb refused what parse took");
    let keys = &parsed.set.keys;
    assert_eq!(store.keys().keys.len(), keys.len());
    assert!(!keys.is_empty() && keys.len() <= MAX_KEYS);
    for key in keys {
        assert!(
            ALGORITHMS.iter().any(|a| key.usable_for(*a)),
            "a kept key is usable for no algorithm"
        );
        for alg in ALGORITHMS {
            let _ = parsed.set.candidates(key.kid.as_deref(), alg).count();
        }
    }
    let native = ParsedKeys::build(std::slice::from_ref(&parsed.set));
    assert!(native.len() <= keys.len());
});
