//! Token introspection (RFC 7662, RFC 9701) in the core: an opaque token asks its provider once,
//! the answer serves every worker until min(exp, cache_seconds), "inactive" for the negative TTL,
//! no usable answer is a 503 and is never cached, and an introspected token goes through the same
//! checks as a JWT (issuer, audience, rules, claim headers, DPoP binding, cut-offs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{AUDIENCE, Issuer, KeySetOf, NOW};
use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::admission::token_cache::TokenCache;
use filter::config::FilterConfig;
use filter::http::denial::{Denial, DpopDenial};
use filter::jose::jwk::KeySet;
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::{CutoffKind, Denylist};
use filter::shared_state::denylist_store::{Revocation, record};
use filter::validation::introspection::{AnswerContext, complete, request};
use serde_json::{Value, json};

const OP: &str = "https://op.example";
const OPAQUE: &str = "opaque-token-Zm9vYmFy";

fn op() -> Issuer {
    Issuer::es256(8, "op-key")
}

fn config(extra: Value) -> FilterConfig {
    let mut base = json!({
        "providers": [{
            "issuer": OP, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "inline_jwks": op().jwks(),
            "introspection": {"cluster": "op", "path": "/token/introspection",
                              "client_id": "gateway", "client_secret": "gateway-secret-0123456789",
                              "cache_seconds": 30, "negative_cache_seconds": 5}
        }]
    });
    test_support::merge(&mut base, extra);
    FilterConfig::from_json(base.to_string().as_bytes()).unwrap()
}

fn active(extra: Value) -> Vec<u8> {
    let mut answer = json!({
        "active": true, "iss": OP, "aud": AUDIENCE, "sub": "alice", "sid": "s-1",
        "client_id": "webapp", "scope": "api read", "exp": NOW + 600, "iat": NOW - 10,
        "jti": "at-9"
    });
    test_support::merge(&mut answer, extra);
    answer.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    answer.to_string().into_bytes()
}

/// One Envoy: its shared data and denylist, and a worker's token cache per worker.
struct Envoy {
    config: FilterConfig,
    keys: KeySet,
    shared: MemoryShared,
    denylist: Denylist,
}

impl Envoy {
    fn new(config: FilterConfig) -> Envoy {
        Envoy {
            config,
            keys: op().key_set(),
            shared: MemoryShared::default(),
            denylist: Denylist::default(),
        }
    }

    fn decide(&self, auth: &str, cache: &mut TokenCache, now: u64) -> Outcome {
        let k = Knowledge {
            keys: &[&self.keys],
            denylist: &self.denylist,
            now,
            revocations_loaded: true,
            native: None,
            replay: &self.shared,
        };
        let headers = [("authorization", auth)];
        let request = RequestInfo {
            method: "GET",
            path: "/api",
            headers: &headers,
        };
        decide(&self.config, k, request, cache)
    }

    fn answer(
        &self,
        token: &str,
        status: Option<u32>,
        body: &[u8],
        now: u64,
    ) -> Result<(), Denial> {
        let cx = AnswerContext {
            keys: &self.keys,
            now,
            native: None,
            shared: &self.shared,
        };
        complete(&self.config, cx, 0, token, status, body)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn needs_introspection(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Introspect { provider: 0, token } if token == OPAQUE)
}

fn forwarded_header(outcome: &Outcome, name: &str) -> Option<String> {
    outcome
        .forwarded_headers()
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[test]
fn an_opaque_token_is_asked_once_then_served_to_every_worker_from_the_shared_answer() {
    let envoy = Envoy::new(config(json!({})));
    let mut worker_a = TokenCache::new(16);
    let mut worker_b = TokenCache::new(16);
    let first = envoy.decide(&bearer(OPAQUE), &mut worker_a, NOW);
    assert!(needs_introspection(&first), "{first:?}");
    envoy
        .answer(OPAQUE, Some(200), &active(json!({})), NOW)
        .unwrap();
    let again = envoy.decide(&bearer(OPAQUE), &mut worker_a, NOW);
    assert_eq!(
        forwarded_header(&again, "x-auth-sub").as_deref(),
        Some("alice")
    );
    assert_eq!(
        forwarded_header(&again, "x-auth-issuer").as_deref(),
        Some(OP)
    );
    let other_worker = envoy.decide(&bearer(OPAQUE), &mut worker_b, NOW + 1);
    assert!(
        matches!(other_worker, Outcome::Forward { .. }),
        "{other_worker:?}"
    );
}

#[test]
fn the_request_is_a_confidential_client_s_form_post() {
    let config = config(json!({}));
    let call = request(&config, 0, "a b&c", &Default::default()).unwrap();
    assert_eq!(call.cluster, "op");
    assert_eq!(call.body, b"token=a+b%26c&token_type_hint=access_token");
    assert!(
        call.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with("Basic "))
    );
}

#[test]
fn an_answer_is_kept_until_the_cap_or_the_token_s_expiry_whichever_is_first() {
    let envoy = Envoy::new(config(json!({})));
    envoy
        .answer(OPAQUE, Some(200), &active(json!({})), NOW)
        .unwrap();
    let mut cache = TokenCache::new(16);
    assert!(matches!(
        envoy.decide(&bearer(OPAQUE), &mut cache, NOW + 29),
        Outcome::Forward { .. }
    ));
    let after_cap = envoy.decide(&bearer(OPAQUE), &mut cache, NOW + 30);
    assert!(
        needs_introspection(&after_cap),
        "asked again after cache_seconds"
    );

    let envoy = Envoy::new(config(json!({})));
    envoy
        .answer(OPAQUE, Some(200), &active(json!({"exp": NOW + 10})), NOW)
        .unwrap();
    let mut cache = TokenCache::new(16);
    assert!(matches!(
        envoy.decide(&bearer(OPAQUE), &mut cache, NOW + 9),
        Outcome::Forward { .. }
    ));
    assert!(needs_introspection(&envoy.decide(
        &bearer(OPAQUE),
        &mut cache,
        NOW + 10
    )));
}

#[test]
fn inactive_is_a_401_kept_for_the_negative_ttl() {
    let envoy = Envoy::new(config(json!({})));
    assert_eq!(
        envoy.answer(OPAQUE, Some(200), br#"{"active": false}"#, NOW),
        Err(Denial::Inactive)
    );
    let mut cache = TokenCache::new(16);
    let refused = envoy.decide(&bearer(OPAQUE), &mut cache, NOW + 4);
    assert_eq!(refused, Outcome::Deny(Denial::Inactive));
    assert_eq!(Denial::Inactive.response("api").status, 401);
    assert!(needs_introspection(&envoy.decide(
        &bearer(OPAQUE),
        &mut cache,
        NOW + 5
    )));
}

#[test]
fn no_usable_answer_is_a_503_with_retry_after_and_nothing_is_kept() {
    for (status, body) in [
        (None, &b""[..]),
        (Some(500), br#"{"active": true}"#),
        (Some(503), b""),
        (Some(200), b"<html>"),
        (Some(200), br#"{"active": "yes"}"#),
        (Some(200), br#"{"sub": "alice"}"#),
    ] {
        let envoy = Envoy::new(config(json!({})));
        assert_eq!(
            envoy.answer(OPAQUE, status, body, NOW),
            Err(Denial::IntrospectionUnavailable),
            "{status:?} {}",
            String::from_utf8_lossy(body)
        );
        let response = Denial::IntrospectionUnavailable.response("api");
        assert_eq!((response.status, response.retry_after()), (503, Some("1")));
        let mut cache = TokenCache::new(16);
        assert!(needs_introspection(&envoy.decide(
            &bearer(OPAQUE),
            &mut cache,
            NOW
        )));
    }
}

#[test]
fn an_answer_the_gateway_refuses_is_refused_and_not_kept_as_active() {
    for (change, denial) in [
        (json!({"iss": "https://evil"}), Denial::WrongIssuer),
        (json!({"aud": "other-api"}), Denial::WrongAudience),
        (json!({"exp": NOW - 100}), Denial::Expired),
    ] {
        let envoy = Envoy::new(config(json!({})));
        assert_eq!(
            envoy.answer(OPAQUE, Some(200), &active(change.clone()), NOW),
            Err(denial),
            "{change}"
        );
        let mut cache = TokenCache::new(16);
        assert!(needs_introspection(&envoy.decide(
            &bearer(OPAQUE),
            &mut cache,
            NOW
        )));
    }
    // No iss in the answer: the provider's.
    let envoy = Envoy::new(config(json!({})));
    envoy
        .answer(OPAQUE, Some(200), &active(json!({"iss": null})), NOW)
        .unwrap();
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert_eq!(
        forwarded_header(&outcome, "x-auth-issuer").as_deref(),
        Some(OP)
    );
}

#[test]
fn rules_cut_offs_and_dpop_binding_apply_to_introspected_tokens() {
    let mut envoy = Envoy::new(config(json!({
        "rules": [{"match": {"prefix": "/api"}, "scopes": ["admin"]}]
    })));
    envoy
        .answer(OPAQUE, Some(200), &active(json!({})), NOW)
        .unwrap();
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert!(
        matches!(outcome, Outcome::Deny(Denial::InsufficientScope(_))),
        "{outcome:?}"
    );

    envoy.config = config(json!({}));
    let shared = MemoryShared::default();
    let cut = Revocation::cutoff(CutoffKind::Session, OP, "s-1", NOW, NOW + 600);
    record(&shared, &[cut], NOW).unwrap();
    envoy.denylist.sync(&shared);
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert_eq!(
        outcome,
        Outcome::Deny(Denial::Revoked),
        "its session was cut off"
    );

    let envoy = Envoy::new(config(json!({"providers": [{"dpop": "allowed"}]})));
    envoy
        .answer(
            OPAQUE,
            Some(200),
            &active(json!({"cnf": {"jkt": "thumb"}})),
            NOW,
        )
        .unwrap();
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert_eq!(
        outcome,
        Outcome::Deny(Denial::Dpop(DpopDenial::BoundTokenAsBearer))
    );
}

#[test]
fn a_jwt_answer_is_verified_with_the_provider_s_keys() {
    let envoy = Envoy::new(config(
        json!({"providers": [{"introspection": {"jwt_response": true}}]}),
    ));
    let op = op();
    let header = json!({"alg": "ES256", "typ": "token-introspection+jwt", "kid": op.kid()});
    let claims = |aud: &str| {
        json!({"iss": OP, "aud": aud, "iat": NOW,
               "token_introspection": serde_json::from_slice::<Value>(&active(json!({}))).unwrap()})
    };
    let signed = op.sign(&header, &claims("gateway"));
    envoy
        .answer(OPAQUE, Some(200), signed.as_bytes(), NOW)
        .unwrap();
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert_eq!(
        forwarded_header(&outcome, "x-auth-sub").as_deref(),
        Some("alice")
    );

    let forged = Issuer::es256(9, "op-key").sign(&header, &claims("gateway"));
    let other_aud = op.sign(&header, &claims("someone"));
    let plain = active(json!({}));
    for bad in [forged.as_bytes(), other_aud.as_bytes(), &plain] {
        let envoy = Envoy::new(config(
            json!({"providers": [{"introspection": {"jwt_response": true}}]}),
        ));
        assert_eq!(
            envoy.answer(OPAQUE, Some(200), bad, NOW),
            Err(Denial::IntrospectionUnavailable)
        );
    }
}

#[test]
fn introspect_always_asks_about_a_valid_jwt_too() {
    let envoy = Envoy::new(config(
        json!({"providers": [{"introspection": {"introspect": "always"}}]}),
    ));
    let jwt = op().token(&json!({
        "iss": OP, "aud": AUDIENCE, "sub": "alice", "exp": NOW + 600, "iat": NOW, "jti": "j-1"
    }));
    let mut cache = TokenCache::new(4);
    let first = envoy.decide(&bearer(&jwt), &mut cache, NOW);
    assert!(matches!(&first, Outcome::Introspect { provider: 0, token } if *token == jwt));
    assert_eq!(
        envoy.answer(&jwt, Some(200), br#"{"active": false}"#, NOW),
        Err(Denial::Inactive)
    );
    assert_eq!(
        envoy.decide(&bearer(&jwt), &mut cache, NOW),
        Outcome::Deny(Denial::Inactive)
    );
    // A forged JWT is refused before anyone is asked.
    let forged =
        Issuer::es256(9, "op-key").token(&json!({"iss": OP, "aud": AUDIENCE, "exp": NOW + 600}));
    assert_eq!(
        envoy.decide(&bearer(&forged), &mut cache, NOW),
        Outcome::Deny(Denial::BadSignature)
    );
}

#[test]
fn without_an_introspecting_provider_an_opaque_token_is_malformed_as_before() {
    let config = FilterConfig::from_json(
        json!({"providers": [{"issuer": OP, "audiences": [AUDIENCE], "algorithms": ["ES256"],
                              "inline_jwks": op().jwks()}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let envoy = Envoy::new(config);
    let outcome = envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(4), NOW);
    assert!(
        matches!(outcome, Outcome::Deny(Denial::Malformed(_))),
        "{outcome:?}"
    );
}

#[test]
fn an_active_answer_whose_exp_has_come_is_expired_and_not_kept() {
    let envoy = Envoy::new(config(json!({})));
    assert_eq!(
        envoy.answer(OPAQUE, Some(200), &active(json!({"exp": NOW - 1})), NOW),
        Err(Denial::Expired),
        "within the leeway a JWT would get, still nothing to keep"
    );
    assert!(needs_introspection(&envoy.decide(
        &bearer(OPAQUE),
        &mut TokenCache::new(4),
        NOW
    )));
}

#[test]
fn a_jwt_answer_by_a_key_not_fetched_yet_asks_for_the_keys() {
    let envoy = Envoy::new(config(
        json!({"providers": [{"introspection": {"jwt_response": true}}]}),
    ));
    let rotated = Issuer::es256(10, "new-key");
    let header = json!({"alg": "ES256", "typ": "token-introspection+jwt", "kid": "new-key"});
    let claims = json!({"iss": OP, "aud": "gateway", "iat": NOW,
        "token_introspection": serde_json::from_slice::<Value>(&active(json!({}))).unwrap()});
    assert_eq!(
        envoy.answer(
            OPAQUE,
            Some(200),
            rotated.sign(&header, &claims).as_bytes(),
            NOW
        ),
        Err(Denial::UnknownKey)
    );
}

#[test]
fn logout_with_an_opaque_token_uses_its_kept_answer() {
    use filter::admission::gateway::{logout_introspection, logout_subject};
    let envoy = Envoy::new(config(json!({})));
    let headers = [("authorization", "Bearer opaque-token-Zm9vYmFy")];
    let k = Knowledge {
        keys: &[&envoy.keys],
        denylist: &envoy.denylist,
        now: NOW,
        revocations_loaded: true,
        native: None,
        replay: &envoy.shared,
    };
    assert_eq!(
        logout_subject(&envoy.config, k, "/oauth2/logout", &headers).map(|_| ()),
        Err(Denial::IntrospectionUnavailable),
        "no answer kept yet"
    );
    assert_eq!(
        logout_introspection(&envoy.config, k, "/oauth2/logout", &headers),
        Some((0, OPAQUE.to_owned())),
        "the glue asks the provider first"
    );
    envoy
        .answer(OPAQUE, Some(200), &active(json!({})), NOW)
        .unwrap();
    assert_eq!(
        logout_introspection(&envoy.config, k, "/oauth2/logout", &headers),
        None,
        "answered: the logout can run"
    );
    let (token, verified, revoked) =
        logout_subject(&envoy.config, k, "/oauth2/logout", &headers).unwrap();
    assert_eq!(token, OPAQUE);
    assert_eq!(verified.sid.as_deref(), Some("s-1"));
    assert!(!revoked);
}

#[test]
fn an_answer_without_jti_names_the_token_by_its_digest_so_a_logout_can_refuse_it() {
    let mut envoy = Envoy::new(config(json!({})));
    let mut worker = TokenCache::new(16);
    let answer = active(json!({"jti": null, "sid": null, "sub": null}));
    assert_eq!(envoy.answer(OPAQUE, Some(200), &answer, NOW), Ok(()));
    let Outcome::Forward {
        token: Some(verified),
        ..
    } = envoy.decide(&bearer(OPAQUE), &mut worker, NOW)
    else {
        panic!("expected forward");
    };
    let jti = verified.jti.clone().unwrap();
    assert!(jti.starts_with("opaque-token:"), "{jti}");
    // What a logout records here: that id, which refuses the token on every worker at once,
    // though its answer is still cached.
    let entries = filter::logout::local_revocations(&envoy.config, &verified, NOW);
    assert_eq!(entries.len(), 1, "{entries:?}");
    envoy.denylist.revoke_jti(&jti, NOW + 600);
    assert_eq!(
        envoy.decide(&bearer(OPAQUE), &mut TokenCache::new(16), NOW + 1),
        Outcome::Deny(Denial::Revoked)
    );
    assert_eq!(
        envoy.decide(&bearer(OPAQUE), &mut worker, NOW + 1),
        Outcome::Deny(Denial::Revoked)
    );
    // Another opaque token is another id.
    let other = "opaque-token-b3RoZXI";
    assert_eq!(envoy.answer(other, Some(200), &answer, NOW), Ok(()));
    assert!(matches!(
        envoy.decide(&bearer(other), &mut worker, NOW + 1),
        Outcome::Forward { .. }
    ));
}
