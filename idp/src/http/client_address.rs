//! The real client address of a request, for the per-address login budget
//! ([`crate::oauth::lockout`]).
//!
//! Behind a proxy every request comes from the proxy's address, so that address says nothing
//! about the client. When the peer is one of the configured trusted proxies, the client is the
//! `X-Forwarded-For` entry `trusted_hops` from the right: the entries a client sends itself are
//! on the left of what the trusted proxies appended, so they are never believed. Envoy appends
//! the address it saw when its connection manager has `use_remote_address: true` (as
//! `envoy/envoy.yaml` does); with `xff_num_trusted_hops: N` in Envoy, set `trusted_hops` to
//! `N + 1` here. When a trusted proxy sent no usable entry, the address is unknown (`None`) and
//! only the per-user budget applies: counting the proxy's own address would let one guesser lock
//! out every client behind it.

use crate::settings::Forwarded;
use axum::http::HeaderMap;
use std::net::IpAddr;

/// The client address of a request from `peer` with `headers`, or `None` when it is unknown.
pub fn client_address(
    policy: &Forwarded,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?;
    if !policy.trusted_proxies.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    // Several X-Forwarded-For fields are one comma-separated list, in order (RFC 9110 §5.3).
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        entries.extend(text.split(',').map(str::trim));
    }
    let index = entries.len().checked_sub(policy.trusted_hops)?;
    entries.get(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy(hops: usize) -> Forwarded {
        Forwarded {
            trusted_proxies: vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.1/32".parse().unwrap(),
            ],
            trusted_hops: hops,
        }
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let peer: IpAddr = [198, 51, 100, 1].into();
        let got = client_address(&policy(1), Some(peer), &xff(&["203.0.113.7"]));
        assert_eq!(got, Some(peer));
        assert_eq!(
            client_address(&policy(1), None, &xff(&["203.0.113.7"])),
            None
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_from_the_right() {
        let proxy = Some([127, 0, 0, 1].into());
        // the client forged the first entry; Envoy appended the second
        let h = xff(&["1.2.3.4, 203.0.113.7"]);
        assert_eq!(
            client_address(&policy(1), proxy, &h),
            Some([203, 0, 113, 7].into())
        );
        assert_eq!(
            client_address(&policy(2), proxy, &h),
            Some([1, 2, 3, 4].into())
        );
        // several fields are one list
        let h = xff(&["1.2.3.4", "203.0.113.7"]);
        assert_eq!(
            client_address(&policy(1), proxy, &h),
            Some([203, 0, 113, 7].into())
        );
        // ports and IPv6 are not mistaken for each other
        let h = xff(&["2001:db8::1"]);
        assert_eq!(
            client_address(&policy(1), proxy, &h),
            "2001:db8::1".parse().ok()
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_usable_entry_leaves_the_client_unknown() {
        let proxy = Some([10, 1, 2, 3].into());
        assert_eq!(client_address(&policy(1), proxy, &HeaderMap::new()), None);
        assert_eq!(
            client_address(&policy(2), proxy, &xff(&["203.0.113.7"])),
            None
        );
        assert_eq!(client_address(&policy(1), proxy, &xff(&["garbage"])), None);
    }
}
