//! Prometheus metrics (`GET /metrics`, text format 0.0.4, the `prometheus-client` crate): tokens
//! issued by grant, token-endpoint errors by RFC 6749 code, and request latency by route.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: &'static str,
}

/// What the revocation hub received (`backchannel_logout` or `cutoffs`) and what became of it
/// (`stored`, a refusal's name, `unavailable`): bounded sets of static names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FederationLabels {
    pub endpoint: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// One of HTTP's own methods, or `other` ([`method_label`]): never a client's invention,
    /// so the label set stays bounded.
    pub method: &'static str,
    /// The matched route (never the raw path, so the label set stays bounded).
    pub route: String,
    pub status: u16,
}

/// The `method` label of a request: the standard methods (RFC 9110 §9, PATCH) by name, any other
/// `other` (a client may send any token as a method).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

fn latency_histogram() -> Histogram {
    // 250 µs .. ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    issued: Family<GrantLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    federation: Family<FederationLabels, Counter>,
    /// Security-event deliveries (SSF push, back-channel logout) by channel and outcome.
    pub deliveries: crate::delivery::DeliveryCounters,
}

impl Metrics {
    /// `password_checks` is the count kept by the password checker
    /// ([`crate::oauth::users::Passwords::checks`]).
    pub fn new(password_checks: Counter) -> Self {
        let mut registry = Registry::with_prefix("idp");
        let issued = Family::<GrantLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let federation = Family::<FederationLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "tokens_issued",
            "Tokens issued by the token endpoint, by grant type",
            issued.clone(),
        );
        registry.register(
            "token_errors",
            "Token endpoint errors, by RFC 6749 error code",
            errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route and status",
            latency.clone(),
        );
        registry.register(
            "password_checks",
            "argon2 password verifications (every login attempt costs one, refused or not)",
            password_checks,
        );
        registry.register(
            "federation_requests",
            "Back-channel logout tokens and cut-off reports received, by endpoint and outcome",
            federation.clone(),
        );
        let deliveries = crate::delivery::DeliveryCounters::default();
        registry.register(
            "event_deliveries",
            "Security-event token deliveries (SSF push, back-channel logout), by channel and outcome",
            deliveries.clone(),
        );
        Metrics {
            registry,
            issued,
            errors,
            latency,
            federation,
            deliveries,
        }
    }

    /// A token response for `grant_type` (only the grants the IDP knows are labels).
    pub fn issued(&self, grant_type: &str) {
        let grant_type = match grant_type {
            "authorization_code" => "authorization_code",
            "client_credentials" => "client_credentials",
            "password" => "password",
            "refresh_token" => "refresh_token",
            "implicit" => "implicit",
            _ => return,
        };
        self.issued.get_or_create(&GrantLabels { grant_type }).inc();
    }

    pub fn error(&self, error: &'static str) {
        self.errors.get_or_create(&ErrorLabels { error }).inc();
    }

    /// One request to a revocation-hub endpoint and its outcome.
    pub fn federation(&self, endpoint: &'static str, outcome: &'static str) {
        self.federation
            .get_or_create(&FederationLabels { endpoint, outcome })
            .inc();
    }

    pub fn observe(&self, labels: RouteLabels, seconds: f64) {
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new(Counter::default());
        m.issued("client_credentials");
        m.issued("client_credentials");
        m.issued("made_up");
        m.error("invalid_client");
        m.observe(
            RouteLabels {
                method: "POST",
                route: "/oauth2/token".into(),
                status: 200,
            },
            0.001,
        );
        let text = m.render().unwrap();
        assert!(
            text.contains("idp_tokens_issued_total{grant_type=\"client_credentials\"} 2"),
            "{text}"
        );
        assert!(!text.contains("made_up"));
        assert!(text.contains("idp_token_errors_total{error=\"invalid_client\"} 1"));
        assert!(text.contains(
            "idp_http_request_duration_seconds_count{method=\"POST\",route=\"/oauth2/token\",status=\"200\"} 1"
        ));
    }

    #[test]
    fn invented_methods_share_one_label() {
        // Regression (issue 19, part 5): the raw method was the label, one series per name.
        use axum::http::Method;
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"X1HOSTILE").unwrap()),
            "other"
        );
        assert_eq!(
            method_label(&Method::from_bytes(b"QUERY").unwrap()),
            "other"
        );
    }
}
