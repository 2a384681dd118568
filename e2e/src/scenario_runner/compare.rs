//! Where the harness and Envoy saw a request differently (the scenario suite's agreement check).

use host_test::scenario::Observed;

/// Response headers Envoy's connection manager and codec add, never the filter (the filter does
/// not see them either): `connection: close` is Envoy's HTTP/1 codec draining a connection
/// whose request it answered before reading all of it.
const ENVOY_RESPONSE_HEADERS: &[&str] =
    &["date", "server", "content-length", "connection", ":status"];

fn all<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Where the harness and Envoy saw a request differently, beyond what the scenario expects:
/// status and whether it was forwarded; for a local reply every response header the filter set
/// and the body; for a forwarded request every header of the harness's upstream request (not the
/// pseudo-headers), every `x-auth-*` header and `authorization` as Envoy's upstream got them
/// (`authorization` and `dpop` by count: tokens and proofs carry each runner's own clock and
/// origin). Empty when they agree.
pub fn differences(harness: &Observed, envoy: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if harness.status != envoy.status {
        out.push(format!(
            "status: harness {:?}, envoy {:?}",
            harness.status, envoy.status
        ));
    }
    if harness.forwarded != envoy.forwarded {
        out.push(format!(
            "forwarded: harness {}, envoy {}",
            harness.forwarded, envoy.forwarded
        ));
    }
    if !harness.forwarded && !envoy.forwarded {
        let (h, e) = (
            harness.response_headers.clone().unwrap_or_default(),
            envoy.response_headers.clone().unwrap_or_default(),
        );
        let mut names: Vec<String> = h
            .iter()
            .chain(&e)
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| !ENVOY_RESPONSE_HEADERS.contains(&k.as_str()))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let (hv, ev) = (all(&h, &name), all(&e, &name));
            if hv != ev {
                out.push(format!(
                    "response header {name}: harness {hv:?}, envoy {ev:?}"
                ));
            }
        }
        if harness.body != envoy.body {
            out.push(format!(
                "body: harness {:?}, envoy {:?}",
                harness.body, envoy.body
            ));
        }
    }
    if let (Some(h), Some(e)) = (&harness.upstream_headers, &envoy.upstream_headers) {
        let mut names: Vec<String> = h
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| !k.starts_with(':'))
            .chain(
                e.iter()
                    .map(|(k, _)| k.to_ascii_lowercase())
                    .filter(|k| k.starts_with("x-auth-")),
            )
            .chain(["authorization".to_owned()])
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let (mut hv, mut ev) = (all(h, &name), all(e, &name));
            if name == "authorization" || name == "dpop" {
                hv = hv.iter().map(|_| "(a token)").collect();
                ev = ev.iter().map(|_| "(a token)").collect();
            }
            if hv != ev {
                out.push(format!(
                    "upstream header {name}: harness {hv:?}, envoy {ev:?}"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn differences_ignore_what_only_envoy_adds_and_name_the_rest() {
        let harness = Observed {
            status: Some(401),
            forwarded: false,
            upstream_headers: None,
            response_headers: headers(&[(":status", "401"), ("www-authenticate", "Bearer")]),
            body: "no".to_owned(),
        };
        let mut envoy = harness.clone();
        envoy.response_headers = headers(&[
            ("www-authenticate", "Bearer"),
            ("date", "today"),
            ("server", "envoy"),
            ("connection", "close"),
        ]);
        assert_eq!(differences(&harness, &envoy), Vec::<String>::new());
        envoy.response_headers = headers(&[("www-authenticate", "Bearer x")]);
        envoy.body = "yes".to_owned();
        let found = differences(&harness, &envoy);
        assert_eq!(found.len(), 2, "{found:#?}");

        let harness = Observed {
            status: Some(200),
            forwarded: true,
            upstream_headers: headers(&[(":path", "/a"), ("authorization", "Bearer 1")]),
            ..Observed::default()
        };
        let mut envoy = harness.clone();
        envoy.upstream_headers = headers(&[
            ("authorization", "Bearer 2"),
            ("x-request-id", "r"),
            ("x-auth-sub", "alice"),
        ]);
        let found = differences(&harness, &envoy);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("x-auth-sub"), "{found:#?}");
    }
}
