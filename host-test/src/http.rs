//! HTTP values the tests build and inspect: header lists, requests, responses and outcomes.

use std::fmt;

/// An ordered header list with Envoy's semantics: names are lower-cased, repeated names allowed,
/// pseudo-headers (`:path`, `:status`…) are ordinary entries.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name` (case-insensitive), as Envoy's `get_header_map_value` returns.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a value (Envoy's `addCopy`).
    pub fn add(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.0
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
    }

    /// Removes every value of `name`, then appends `value` (Envoy's `setCopy`).
    pub fn replace(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.remove(name.as_ref());
        self.add(name, value);
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Total size as Envoy counts it (`byteSize`): the sum of name and value lengths.
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| format!("{k}: {v}")))
            .finish()
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.add(k, v);
        }
        headers
    }
}

/// A downstream request, as Envoy's HTTP connection manager hands it to the filter chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    /// Regular (non-pseudo) headers, in order.
    pub headers: Headers,
    /// `None`: the request ends with its headers (`end_of_stream` on `on_request_headers`).
    pub body: Option<Vec<u8>>,
    /// What the upstream answers if the filter lets the request through.
    pub upstream_response: Response,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: "gateway.test".to_owned(),
            scheme: "http".to_owned(),
            headers: Headers::new(),
            body: None,
            upstream_response: Response::new(200),
        }
    }

    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Request::new("POST", path)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.add(name, value);
        self
    }

    /// Adds `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.to_owned();
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets what the upstream answers when the request is forwarded.
    pub fn upstream_response(mut self, response: Response) -> Self {
        self.upstream_response = response;
        self
    }

    /// The header map the filter sees: pseudo-headers first, then the regular ones.
    pub(crate) fn header_map(&self) -> Headers {
        let mut map = Headers::new();
        map.add(":authority", self.authority.clone());
        map.add(":path", self.path.clone());
        map.add(":method", self.method.clone());
        map.add(":scheme", self.scheme.clone());
        for (k, v) in self.headers.iter() {
            map.add(k, v);
        }
        if let Some(body) = &self.body
            && !map.contains("content-length")
        {
            map.add("content-length", body.len().to_string());
        }
        map
    }
}

/// An HTTP response: from the upstream, from an HTTP call's cluster, or a local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Regular headers (`:status` is added from `status`).
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: Vec::new(),
            trailers: Headers::new(),
        }
    }

    /// A response with a JSON body and its content type.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status)
            .header("content-type", "application/json")
            .body(body)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.add(name, value);
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn trailer(mut self, name: &str, value: impl Into<String>) -> Self {
        self.trailers.add(name, value);
        self
    }

    /// Envoy's answer when a call's timeout expires before the cluster answers.
    pub fn envoy_timeout() -> Self {
        Response::new(504)
            .header("content-type", "text/plain")
            .body("upstream request timeout")
    }

    /// Envoy's answer when the cluster cannot be reached (connection refused).
    pub fn envoy_connect_failure() -> Self {
        Response::new(503).header("content-type", "text/plain").body(
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
        )
    }

    /// The header map as the filter sees it: `:status` first, then content-length (when there is
    /// a body and none was given), then the rest.
    pub(crate) fn header_map(&self) -> Headers {
        let mut map = Headers::new();
        map.add(":status", self.status.to_string());
        for (k, v) in self.headers.iter() {
            map.add(k, v);
        }
        if !self.body.is_empty() && !map.contains("content-length") {
            map.add("content-length", self.body.len().to_string());
        }
        map
    }
}

/// What the downstream client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Response headers after the filter's response callbacks, `:status` included.
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A local reply the filter sent with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// What the client received (after the reply passed through the filter's
    /// `on_http_response_headers`, as in Envoy).
    pub reply: Reply,
    /// The `details` string the filter gave (Envoy's response code details).
    pub details: String,
    /// The gRPC status the filter gave, if any (`-1`: none).
    pub grpc_status: i32,
}

/// The request as it left towards the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Request headers after the filter, pseudo-headers included.
    pub request_headers: Headers,
    pub request_body: Option<Vec<u8>>,
    /// What the client received back (the upstream's response after the filter's response
    /// callbacks).
    pub reply: Reply,
}

impl Upstream {
    /// A request header as the upstream saw it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }
}

/// How a request ended, from the filter's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The filter let the request through to the upstream.
    Continued(Upstream),
    /// The filter answered the request itself.
    LocalReply(LocalReply),
    /// The filter paused the request and has not resumed it yet (waiting on an HTTP call, say).
    Paused(StreamId),
    /// The filter reset the stream (`proxy_close_stream`).
    Reset,
}

impl Outcome {
    /// The status the client saw, if the stream ended with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Continued(up) => Some(up.reply.status),
            Outcome::LocalReply(local) => Some(local.reply.status),
            Outcome::Paused(_) | Outcome::Reset => None,
        }
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        match self {
            Outcome::Continued(up) => Some(up),
            _ => None,
        }
    }

    pub fn local_reply(&self) -> Option<&LocalReply> {
        match self {
            Outcome::LocalReply(local) => Some(local),
            _ => None,
        }
    }

    /// The response the client received, whichever way it was produced.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Continued(up) => Some(&up.reply),
            Outcome::LocalReply(local) => Some(&local.reply),
            Outcome::Paused(_) | Outcome::Reset => None,
        }
    }

    pub fn is_continued(&self) -> bool {
        matches!(self, Outcome::Continued(_))
    }
}

/// Identifies an HTTP stream (its proxy-wasm context id) within one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_semantics_follow_envoy() {
        let mut h = Headers::new();
        h.add("X-A", "1");
        h.add("x-a", "2");
        h.add("b", "3");
        assert_eq!(h.get("x-a"), Some("1"));
        assert_eq!(h.get_all("X-A"), vec!["1", "2"]);
        h.replace("x-a", "9");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![("b", "3"), ("x-a", "9")]);
        h.remove("B");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn request_map_has_pseudo_headers_first() {
        let map = Request::post("/x").header("A", "b").body("hi").header_map();
        let names: Vec<&str> = map.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            vec![
                ":authority",
                ":path",
                ":method",
                ":scheme",
                "a",
                "content-length"
            ]
        );
    }
}
