//! The gateway's core behaviour as one suite that runs against any Envoy template with the
//! filter (`StackOptions::envoy_template`): the local stack's `envoy/envoy.yaml` and the
//! Istio-sidecar-shaped `envoy/istio-sidecar.yaml` must behave alike (e2e/tests/e2e/istio.rs).
//!
//! Each check returns `Err` naming what differed, so the suite is plain library code.

use crate::client::{self, Response};
use crate::process::free_port;
use crate::stack::{
    DEMO_CLIENT, OTHER_CLIENT, SHORT_CLIENT, Stack, password_login, start_idp, token_from,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::{Duration, Instant};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    match method {
        "GET" => client::get(url, headers),
        _ => client::post_form(url, headers, &[]),
    }
}

fn call(stack: &Stack, method: &str, path: &str, token: Option<&str>) -> Result<Response, String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(method, &format!("{}{path}", stack.gateway_url), &headers)
}

fn challenge(res: &Response) -> String {
    res.header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

fn expect_invalid_token(res: &Response, case: &str) -> Result<(), String> {
    ensure!(
        res.status == 401,
        "{case}: status {} {}",
        res.status,
        res.body
    );
    let c = challenge(res);
    ensure!(
        c.starts_with("Bearer ") && c.contains("error=\"invalid_token\""),
        "{case}: challenge {c:?}"
    );
    Ok(())
}

fn json_field(res: &Response, field: &str) -> Result<String, String> {
    Ok(res.json()?[field].as_str().unwrap_or_default().to_owned())
}

/// Runs every check of the suite.
pub fn run_all(stack: &Stack) -> Result<(), String> {
    let started = Instant::now();
    accepted_token_and_claim_headers(stack).map_err(|e| format!("accepted token: {e}"))?;
    refusals(stack).map_err(|e| format!("refusals: {e}"))?;
    rules_scopes_and_claims(stack).map_err(|e| format!("rules: {e}"))?;
    logout(stack).map_err(|e| format!("logout: {e}"))?;
    println!(
        "behaviour suite passed against envoy/{} in {:?}",
        stack.options.envoy_template,
        started.elapsed()
    );
    Ok(())
}

/// A valid token reaches the resource server, which sees the verified claims in headers (never
/// the client's own copies of them).
pub fn accepted_token_and_claim_headers(stack: &Stack) -> Result<(), String> {
    let token = stack.token(DEMO_CLIENT, None)?;
    let res = call(stack, "GET", "/api/hello", Some(&token))?;
    ensure!(
        res.status == 200,
        "valid token: {} {}",
        res.status,
        res.body
    );
    let body = res.json()?;
    ensure!(body["sub"] == "client:demo-client", "sub: {body}");
    ensure!(body["client_id"] == "demo-client", "client_id: {body}");
    ensure!(body["issuer"] == stack.issuer.as_str(), "issuer: {body}");
    ensure!(
        stack.counter("oauth2gw.allowed").unwrap_or(0) >= 1,
        "allowed not counted"
    );

    let auth = format!("Bearer {token}");
    let forged = client::get(
        &format!("{}/api/hello", stack.gateway_url),
        &[
            ("authorization", &auth),
            ("x-auth-sub", "admin"),
            ("x-auth-client-id", "ops"),
        ],
    )?;
    ensure!(
        json_field(&forged, "sub")? == "client:demo-client"
            && json_field(&forged, "client_id")? == "demo-client",
        "forged identity headers reached the upstream: {}",
        forged.body
    );
    // the scope claim, copied for the resource server
    let read_only = stack.token(DEMO_CLIENT, Some("read"))?;
    let res = client::get(
        &format!("{}/api/orders", stack.gateway_url),
        &[
            ("authorization", &format!("Bearer {read_only}")),
            ("x-auth-scope", "admin"),
        ],
    )?;
    ensure!(
        res.status == 200 && json_field(&res, "scope")? == "read",
        "scope header: {} {}",
        res.status,
        res.body
    );
    Ok(())
}

/// Missing, malformed, tampered, foreign, unknown-key and expired tokens: 401 with RFC 6750's
/// challenge, each counted under its reason.
pub fn refusals(stack: &Stack) -> Result<(), String> {
    let missing_before = stack.counter("oauth2gw.denied.missing").unwrap_or(0);
    let res = call(stack, "GET", "/api/hello", None)?;
    ensure!(res.status == 401, "missing: {} {}", res.status, res.body);
    let c = challenge(&res);
    ensure!(
        c.starts_with("Bearer realm=\"") && !c.contains("error="),
        "missing: challenge {c:?} (RFC 6750 §3.1: no error code)"
    );
    ensure!(
        stack.counter("oauth2gw.denied.missing").unwrap_or(0) > missing_before,
        "missing not counted"
    );

    let token = stack.token(DEMO_CLIENT, None)?;
    let parts: Vec<&str> = token.split('.').collect();
    ensure!(parts.len() == 3, "not a JWS: {token}");
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|e| format!("claims: {e}"))?;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&claims_bytes).map_err(|e| format!("claims: {e}"))?;
    claims["scope"] = "read write admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|e| e.to_string())?),
        parts[2]
    );
    expect_invalid_token(
        &call(stack, "GET", "/api/hello", Some(&tampered))?,
        "tampered",
    )?;
    expect_invalid_token(
        &call(stack, "GET", "/api/hello", Some("not.a.jwt"))?,
        "garbage",
    )?;
    let other = stack.token(OTHER_CLIENT, None)?;
    expect_invalid_token(
        &call(stack, "GET", "/api/hello", Some(&other))?,
        "wrong audience",
    )?;

    // same issuer name, another key
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rogue = start_idp(dir.path(), "rogue-idp", free_port()?, &stack.issuer)?;
    let forged = token_from(&rogue.url, DEMO_CLIENT, None)?;
    expect_invalid_token(
        &call(stack, "GET", "/api/hello", Some(&forged))?,
        "unknown key",
    )?;

    let short = stack.token(SHORT_CLIENT, None)?;
    let fresh = call(stack, "GET", "/api/hello", Some(&short))?;
    ensure!(
        fresh.status == 200,
        "short-lived token while fresh: {}",
        fresh.status
    );
    let leeway = Duration::from_secs(stack.options.leeway_seconds);
    std::thread::sleep(Duration::from_millis(2_100) + leeway);
    let res = call(stack, "GET", "/api/hello", Some(&short))?;
    expect_invalid_token(&res, "expired")?;
    ensure!(
        challenge(&res).contains("expired"),
        "expired: {:?}",
        challenge(&res)
    );

    // oversized token and two Authorization headers: 400 invalid_request
    let big = format!("{token}{}", "A".repeat(9_000));
    let res = call(stack, "GET", "/api/hello", Some(&big))?;
    ensure!(
        res.status == 400 && challenge(&res).contains("invalid_request"),
        "oversized: {} {:?}",
        res.status,
        challenge(&res)
    );
    let auth = format!("Bearer {token}");
    let two = client::get(
        &format!("{}/api/hello", stack.gateway_url),
        &[("authorization", &auth), ("authorization", &auth)],
    )?;
    ensure!(
        two.status == 400,
        "two Authorization headers: {}",
        two.status
    );
    Ok(())
}

/// Per-route rules: bypass, allow_missing, scopes (403 insufficient_scope naming the scope),
/// method-specific scopes, claim values; the resource server's internal endpoints unreachable.
pub fn rules_scopes_and_claims(stack: &Stack) -> Result<(), String> {
    let rw = stack.token(DEMO_CLIENT, None)?;
    let read_only = stack.token(DEMO_CLIENT, Some("read"))?;
    let status = |method: &str, path: &str, token: Option<&str>| -> Result<u16, String> {
        Ok(call(stack, method, path, token)?.status)
    };

    ensure!(status("GET", "/healthz", Some("garbage"))? == 200, "bypass");
    ensure!(
        status("GET", "/api/public/info", None)? == 200,
        "allow_missing without a token"
    );
    ensure!(
        status("GET", "/api/public/info", Some("garbage"))? == 401,
        "allow_missing with a bad token"
    );
    ensure!(status("GET", "/api/anything", None)? == 401, "default rule");

    let res = call(stack, "GET", "/api/admin/users", Some(&rw))?;
    let c = challenge(&res);
    ensure!(
        res.status == 403
            && c.contains("error=\"insufficient_scope\"")
            && c.contains("scope=\"admin\""),
        "admin scope: {} {c:?}",
        res.status
    );
    ensure!(
        status("GET", "/api/orders", Some(&read_only))? == 200,
        "GET orders read-only"
    );
    ensure!(
        status("POST", "/api/orders", Some(&read_only))? == 403,
        "POST orders read-only"
    );
    ensure!(
        status("POST", "/api/orders", Some(&rw))? == 200,
        "POST orders rw"
    );
    ensure!(
        status("GET", "/api/clients/demo-client/private", Some(&rw))? == 200,
        "claim match"
    );
    // the short-lived client's token lives seconds: taken just before it is used (taken at the
    // start of this step, it expired on a loaded machine before the calls above were done)
    let short = stack.token(SHORT_CLIENT, None)?;
    let res = call(
        stack,
        "GET",
        "/api/clients/demo-client/private",
        Some(&short),
    )?;
    ensure!(
        res.status == 403 && challenge(&res).contains("insufficient_scope"),
        "claim mismatch: {} {:?}",
        res.status,
        challenge(&res)
    );

    // envoy.yaml: a 404 route; the Istio sidecar: the AuthorizationPolicy's RBAC deny (403)
    let internal = status("POST", "/internal/sessions/revoke", Some(&rw))?;
    ensure!(
        internal == 403 || internal == 404,
        "internal endpoint reachable by a client: {internal}"
    );
    Ok(())
}

/// Logout of a user session: 200 only when the IDP revoked and the resource server ended the
/// session; the token is refused at once, the session is gone at the resource server.
pub fn logout(stack: &Stack) -> Result<(), String> {
    let login = password_login(&stack.idp.url)?;
    let access = login["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned();
    let auth = format!("Bearer {access}");
    let session = client::get(
        &format!("{}/api/session", stack.gateway_url),
        &[("authorization", &auth)],
    )?;
    ensure!(
        session.status == 200,
        "session: {} {}",
        session.status,
        session.body
    );
    let sid = json_field(&session, "sid")?;
    ensure!(!sid.is_empty(), "no sid: {}", session.body);

    ensure!(
        call(stack, "POST", "/oauth2/logout", None)?.status == 401,
        "logout without a token"
    );
    let res = call(stack, "POST", "/oauth2/logout", Some(&access))?;
    ensure!(res.status == 200, "logout: {} {}", res.status, res.body);
    ensure!(
        json_field(&res, "status")? == "logged_out",
        "logout body: {}",
        res.body
    );
    let after = call(stack, "GET", "/api/hello", Some(&access))?;
    ensure!(
        after.status == 401 && challenge(&after).contains("revoked"),
        "revoked token: {} {:?}",
        after.status,
        challenge(&after)
    );
    // asked directly, as the gateway would forward
    let direct = client::get(
        &format!("http://127.0.0.1:{}/api/session", stack.rs_port),
        &[("x-auth-sid", &sid), ("x-auth-sub", "alice")],
    )?;
    ensure!(
        direct.status == 401,
        "session still alive at the resource server: {} {}",
        direct.status,
        direct.body
    );
    ensure!(
        stack.counter("oauth2gw.logout_ok").unwrap_or(0) >= 1,
        "logout_ok not counted"
    );
    Ok(())
}
