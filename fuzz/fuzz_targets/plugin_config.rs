//! Plugin configuration JSON → the validated configuration (`on_configure`), then a few requests
//! decided under it (rules' matchers, token sources, logout path), bounded by libFuzzer's
//! `-timeout`: a configuration must never make a decision slow or panic.
#![no_main]

use filter::config::FilterConfig;
use filter::shared_state::denylist::Denylist;
use filter::admission::gateway::{Knowledge, RequestInfo, decide};
use filter::jose::jwk::KeySet;
use filter::logout::is_logout_path;
use filter::shared_state::MemoryShared;
use filter::admission::token_cache::TokenCache;
use gateway_fuzz::fixtures::{NOW, gateway, request_headers};
use libfuzzer_sys::fuzz_target;

const REQUESTS: [(&str, &str); 5] = [
    ("GET", "/api/x"),
    ("POST", "/oauth2/logout"),
    ("GET", "/api/x?access_token=abc&x=1"),
    ("DELETE", "/admin/%2e%2e/users//1"),
    ("OPTIONS", "*"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(config) = FilterConfig::from_json(data) else {
        return;
    };
    assert!(!config.providers.is_empty());
    let sets: Vec<KeySet> = config
        .providers
        .iter()
        .map(|p| p.inline_keys.clone().unwrap_or_default())
        .collect();
    let keys: Vec<&KeySet> = sets.iter().collect();
    let denylist = Denylist::default();
    let replay = MemoryShared::default();
    let token = format!("Bearer {}", gateway().dpop_token);
    let cookie = "session=1; access_token=abc";
    let headers = request_headers(&[("authorization", &token), ("cookie", cookie)]);
    let mut cache = TokenCache::new(config.cache_max_entries.min(16));
    for (method, path) in REQUESTS {
        let k = Knowledge {
            keys: &keys,
            denylist: &denylist,
            now: NOW,
            revocations_loaded: true,
            native: None,
            replay: &replay,
        };
        let request = RequestInfo {
            method,
            path,
            headers: &headers,
        };
        let _ = decide(&config, k, request, &mut cache);
        let _ = is_logout_path(&config, path);
    }
});
