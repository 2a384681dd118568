//! The expectations of a request step, checked against what a runner observed — the same code
//! for the harness and for a runner against real Envoy, so both assert exactly the same things.

use super::Expect;

/// What a runner saw of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The status the client received (None: no response, e.g. a reset stream).
    pub status: Option<u16>,
    /// The request reached the upstream.
    pub forwarded: bool,
    /// The request headers the upstream received (None: not forwarded).
    pub upstream_headers: Option<Vec<(String, String)>>,
    /// The response headers the client received (None: no response).
    pub response_headers: Option<Vec<(String, String)>>,
    /// The response body the client received.
    pub body: String,
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

impl Expect {
    /// Every expectation that does not hold, described; empty when all hold.
    pub fn check(&self, seen: &Observed) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(status) = self.status
            && seen.status != Some(status)
        {
            problems.push(format!("status: expected {status}, got {:?}", seen.status));
        }
        if let Some(forwarded) = self.forwarded
            && seen.forwarded != forwarded
        {
            problems.push(format!(
                "forwarded: expected {forwarded}, got {}",
                seen.forwarded
            ));
        }
        let upstream = seen.upstream_headers.as_deref();
        for (name, value) in &self.upstream_headers {
            let got = upstream.map(|h| values(h, name));
            if got.as_deref() != Some(&[value.as_str()][..]) {
                problems.push(format!(
                    "upstream header {name}: expected {value:?}, got {got:?}"
                ));
            }
        }
        for name in &self.upstream_headers_absent {
            if let Some(value) = upstream.and_then(|h| values(h, name).first().copied()) {
                problems.push(format!(
                    "upstream header {name} should be absent, is {value:?}"
                ));
            }
        }
        let response = seen.response_headers.as_deref();
        let first = |name: &str| response.and_then(|h| values(h, name).first().copied());
        for (name, value) in &self.headers {
            let got = first(name);
            if got != Some(value.as_str()) {
                problems.push(format!(
                    "response header {name}: expected {value:?}, got {got:?}"
                ));
            }
        }
        for (name, part) in &self.headers_contain {
            let got = first(name);
            if !got.is_some_and(|g| g.contains(part.as_str())) {
                problems.push(format!(
                    "response header {name}: expected to contain {part:?}, got {got:?}"
                ));
            }
        }
        if let Some(part) = &self.body_contains
            && !seen.body.contains(part.as_str())
        {
            problems.push(format!(
                "body: expected to contain {part:?}, got {:?}",
                seen.body
            ));
        }
        if let Some(part) = &self.body_lacks
            && seen.body.contains(part.as_str())
        {
            problems.push(format!(
                "body: must not contain {part:?}, got {:?}",
                seen.body
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_failed_expectation_is_listed() {
        let expect = Expect {
            status: Some(200),
            forwarded: Some(true),
            upstream_headers: [("x-auth-sub".to_owned(), "alice".to_owned())].into(),
            upstream_headers_absent: vec!["x-auth-sid".to_owned()],
            headers_contain: [("www-authenticate".to_owned(), "Bearer".to_owned())].into(),
            body_lacks: Some("secret".to_owned()),
            ..Expect::default()
        };
        let ok = Observed {
            status: Some(200),
            forwarded: true,
            upstream_headers: Some(pairs(&[("X-Auth-Sub", "alice")])),
            response_headers: Some(pairs(&[("www-authenticate", "Bearer realm=\"g\"")])),
            body: String::new(),
        };
        assert_eq!(expect.check(&ok), Vec::<String>::new());

        let bad = Observed {
            status: Some(401),
            forwarded: false,
            upstream_headers: Some(pairs(&[
                ("x-auth-sub", "alice"),
                ("x-auth-sub", "mallory"),
                ("x-auth-sid", "s"),
            ])),
            response_headers: None,
            body: "a secret".to_owned(),
        };
        let problems = expect.check(&bad);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[2].contains("x-auth-sub"), "{problems:#?}");
    }
}
