//! A real third-party OpenID Provider for the end-to-end tests: node `oidc-provider` (panva,
//! 9.13.x, `e2e/oidc-provider/op.mjs`) on a free loopback port, killed when the handle is dropped.
//!
//! `scripts/test` runs `npm ci` in `e2e/oidc-provider` first (`ensure_oidc_provider_deps`); the
//! node binary is `node` on the `PATH`, or `NODE_BIN`. The OP's clients and resources:
//!
//! | client | secret | use |
//! |---|---|---|
//! | `gateway` | [`GATEWAY_SECRET`] | introspection (JSON, or RFC 9701 JWT), revocation of any client's tokens |
//! | `service` | [`SERVICE_SECRET`] | client_credentials for any of the three resources, scope `api` |
//! | `webapp` | [`WEBAPP_SECRET`] | authorization_code + PKCE S256 + refresh_token, back-channel logout |
//!
//! Resources (scope `api`): [`RESOURCE_ES256`] (JWT, ES256, the default), [`RESOURCE_RS256`] (JWT,
//! RS256), [`RESOURCE_OPAQUE`] (opaque). oidc-provider refuses to introspect or revoke its JWT
//! access tokens (`unsupported_token_type`): only opaque ones and refresh tokens.

use crate::client::{self, Response};
use crate::process::Proc;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The `gateway` client's secret (introspection and revocation).
pub const GATEWAY_SECRET: &str = "gateway-secret-0123456789abcdef";
/// The `service` client's secret (client_credentials).
pub const SERVICE_SECRET: &str = "service-secret-0123456789abcdef";
/// The `webapp` client's secret (authorization code flow).
pub const WEBAPP_SECRET: &str = "webapp-secret-0123456789abcdef";
/// The resource whose access tokens are JWTs signed ES256 (the default resource).
pub const RESOURCE_ES256: &str = "urn:gateway:es256";
/// The resource whose access tokens are JWTs signed RS256.
pub const RESOURCE_RS256: &str = "urn:gateway:rs256";
/// The resource whose access tokens are opaque (introspectable and revocable).
pub const RESOURCE_OPAQUE: &str = "urn:gateway:opaque";
/// The `webapp` client's registered redirect URI (never served: the code is read from it).
pub const WEBAPP_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The `webapp` client's registered post-logout redirect URI.
pub const WEBAPP_POST_LOGOUT_URI: &str = "http://127.0.0.1/logged-out";

/// How long the OP may take to print its readiness line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start the OP.
#[derive(Debug, Clone)]
pub struct OpOptions {
    /// The `webapp` client's `backchannel_logout_uri` (none: no back-channel logout).
    pub backchannel_logout_uri: Option<String>,
    /// Access token lifetime in seconds (client_credentials and user tokens).
    pub access_token_ttl: u64,
}

impl Default for OpOptions {
    fn default() -> Self {
        OpOptions {
            backchannel_logout_uri: None,
            access_token_ttl: 300,
        }
    }
}

/// What a user login returns (the token response of the authorization code grant).
#[derive(Debug, Clone)]
pub struct UserTokens {
    /// The access token (a JWT for the JWT resources, opaque for [`RESOURCE_OPAQUE`]).
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// The ID token (for `webapp`).
    pub id_token: String,
    /// The session's per-client `sid` for `webapp`, from the ID token (also in JWT access tokens,
    /// introspection answers and logout tokens).
    pub sid: String,
    /// The browser's cookies at the OP (its session), for [`OidcProvider::end_session`].
    jar: Jar,
}

/// A running node oidc-provider, stopped when dropped.
pub struct OidcProvider {
    proc: Proc,
    issuer: String,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The directory of op.mjs and its node_modules.
pub fn op_dir() -> PathBuf {
    crate::artifacts::workspace_root()
        .join("e2e")
        .join("oidc-provider")
}

impl OidcProvider {
    /// Starts `node op.mjs` on a free port and waits until it listens. Under heavy load node has
    /// twice not printed its ready line in time (its log held only its version warning): one more
    /// start is tried, and said.
    pub fn start(options: OpOptions) -> Result<OidcProvider, String> {
        match Self::start_once(&options) {
            Ok(op) => Ok(op),
            Err(first) => {
                eprintln!("oidc-provider did not start ({first}); starting it once more");
                Self::start_once(&options)
            }
        }
    }

    fn start_once(options: &OpOptions) -> Result<OidcProvider, String> {
        let dir = op_dir();
        if !dir.join("node_modules").join("oidc-provider").is_dir() {
            return Err(format!(
                "{}/node_modules/oidc-provider is missing: run scripts/test (it runs npm ci in e2e/oidc-provider)",
                dir.display()
            ));
        }
        let log_dir = tempfile::Builder::new()
            .prefix("oauth2gw-oidc-provider-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".to_owned());
        let mut cmd = Command::new(node);
        cmd.current_dir(&dir)
            .arg("op.mjs")
            .arg("0")
            .env("OP_ACCESS_TOKEN_TTL", options.access_token_ttl.to_string())
            .env_remove("OP_PORT")
            .env_remove("OP_BACKCHANNEL_LOGOUT_URI");
        if let Some(uri) = &options.backchannel_logout_uri {
            cmd.env("OP_BACKCHANNEL_LOGOUT_URI", uri);
        }
        let (proc, rest) = Proc::start_until_line(
            "oidc-provider",
            cmd,
            log_dir.path(),
            "OP_READY ",
            START_TIMEOUT,
        )?;
        let issuer = rest.trim().to_owned();
        let port = issuer
            .strip_prefix("http://127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| format!("unexpected issuer {issuer:?}"))?;
        Ok(OidcProvider {
            proc,
            issuer,
            port,
            _dir: log_dir,
        })
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the OP listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JWKS URL (RS256 and ES256 keys, fresh at each start).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The OpenID discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The introspection endpoint's URL (RFC 7662; `gateway` client).
    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// The revocation endpoint's URL (RFC 7009; `gateway` client).
    pub fn revocation_url(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// The OP's log (its stderr, with every back-channel logout attempt as `OP_BACKCHANNEL …`).
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// The `service` client's access token for `resource` (client_credentials, scope `api`).
    pub fn client_credentials(&self, resource: &str) -> Result<String, String> {
        let res = self.post_basic(
            &self.token_url(),
            "service",
            SERVICE_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api"),
                ("resource", resource),
            ],
        )?;
        let body = expect_json(&res, "client_credentials")?;
        string_member(&body, "access_token")
    }

    /// Signs `user` in as `webapp` through the dev login (authorization code + PKCE, consent,
    /// `openid offline_access api` for `resource`) and exchanges the code.
    pub fn login(&self, user: &str, resource: &str) -> Result<UserTokens, String> {
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes(32)?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = URL_SAFE_NO_PAD.encode(random_bytes(12)?);
        let nonce = URL_SAFE_NO_PAD.encode(random_bytes(12)?);
        let query = serde_urlencoded::to_string([
            ("client_id", "webapp"),
            ("response_type", "code"),
            ("redirect_uri", WEBAPP_REDIRECT_URI),
            ("scope", "openid offline_access api"),
            ("resource", resource),
            // offline_access is ignored without prompt=consent (OpenID Connect Core §11)
            ("prompt", "consent"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            // the per-client sid in the ID token and the tokens also without back-channel logout
            ("claims", r#"{"id_token":{"sid":null}}"#),
        ])
        .map_err(|e| e.to_string())?;
        let mut jar = Jar::default();
        let mut url = format!("{}/auth?{query}", self.issuer);
        let mut res = jar.get(&url)?;
        let mut code = None;
        // /auth -> /interaction/A (login) -> /auth/A -> /interaction/B (consent) -> /auth/B -> callback
        for _ in 0..12 {
            if !(300..400).contains(&res.status) {
                return Err(format!(
                    "login: expected a redirect from {url}, got {}: {}",
                    res.status, res.body
                ));
            }
            url = self.absolute(location(&res)?)?;
            if let Some(query) = url.strip_prefix(&format!("{WEBAPP_REDIRECT_URI}?")) {
                let params: BTreeMap<String, String> =
                    serde_urlencoded::from_str(query).map_err(|e| e.to_string())?;
                if params.contains_key("error") {
                    return Err(format!("login: the OP answered the client with {params:?}"));
                }
                if params.get("state") != Some(&state) {
                    return Err(format!("login: state mismatch in {url}"));
                }
                code = params.get("code").cloned();
                break;
            }
            let path = url.strip_prefix(&self.issuer).unwrap_or(&url).to_owned();
            if path.starts_with("/interaction/") {
                let page = jar.get(&url)?;
                if page.status != 200 {
                    return Err(format!(
                        "login: interaction page {url}: {}: {}",
                        page.status, page.body
                    ));
                }
                res = if page.body.contains(r#"name="prompt" value="login""#) {
                    jar.post(
                        &url,
                        &[("prompt", "login"), ("login", user), ("password", "any")],
                    )?
                } else if page.body.contains(r#"name="prompt" value="consent""#) {
                    jar.post(&url, &[("prompt", "consent")])?
                } else {
                    return Err(format!("login: unexpected interaction page: {}", page.body));
                };
            } else {
                res = jar.get(&url)?;
            }
        }
        let code =
            code.ok_or_else(|| format!("login: no code after the dev login (last: {url})"))?;
        let res = self.post_basic(
            &self.token_url(),
            "webapp",
            WEBAPP_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", WEBAPP_REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
            ],
        )?;
        let body = expect_json(&res, "authorization_code")?;
        let id_token = string_member(&body, "id_token")?;
        let (_, claims) = decode_jwt(&id_token)?;
        if claims["nonce"].as_str() != Some(nonce.as_str()) {
            return Err(format!("login: nonce mismatch in the ID token {claims}"));
        }
        let access_token = string_member(&body, "access_token")?;
        let refresh_token = string_member(&body, "refresh_token")?;
        let sid = claims["sid"]
            .as_str()
            .ok_or_else(|| format!("login: no sid in the ID token {claims}"))?
            .to_owned();
        Ok(UserTokens {
            access_token,
            refresh_token,
            id_token,
            sid,
            jar,
        })
    }

    /// Exchanges `webapp`'s refresh token; the token response as JSON.
    pub fn refresh(&self, refresh_token: &str) -> Result<serde_json::Value, String> {
        let res = self.post_basic(
            &self.token_url(),
            "webapp",
            WEBAPP_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )?;
        expect_json(&res, "refresh_token")
    }

    /// RP-initiated logout of the session `tokens` came from (`/session/end` with `id_token_hint`,
    /// then "Yes, sign me out"): the OP sends back-channel logout to `webapp` before answering.
    pub fn end_session(&self, tokens: &UserTokens) -> Result<(), String> {
        let mut jar = tokens.jar.clone();
        let query = serde_urlencoded::to_string([
            ("id_token_hint", tokens.id_token.as_str()),
            ("post_logout_redirect_uri", WEBAPP_POST_LOGOUT_URI),
            ("state", "logged-out"),
        ])
        .map_err(|e| e.to_string())?;
        let page = jar.get(&format!("{}/session/end?{query}", self.issuer))?;
        if page.status != 200 {
            return Err(format!("end_session: {}: {}", page.status, page.body));
        }
        let xsrf = hidden_field(&page.body, "xsrf")
            .ok_or_else(|| format!("end_session: no xsrf field in {}", page.body))?;
        if !page.body.contains(r#"value="yes" name="logout""#) {
            return Err(format!(
                "end_session: not the logout confirmation page (no session at the OP?): {}",
                page.body
            ));
        }
        let res = jar.post(
            &format!("{}/session/end/confirm", self.issuer),
            &[("xsrf", xsrf.as_str()), ("logout", "yes")],
        )?;
        let to = location(&res)?;
        if !(300..400).contains(&res.status) || !to.starts_with(WEBAPP_POST_LOGOUT_URI) {
            return Err(format!(
                "end_session: expected a redirect to {WEBAPP_POST_LOGOUT_URI}, got {} to {to}: {}",
                res.status, res.body
            ));
        }
        Ok(())
    }

    /// Revokes `token` as the `gateway` client (RFC 7009); `hint` is the `token_type_hint`.
    pub fn revoke(&self, token: &str, hint: Option<&str>) -> Result<(), String> {
        let mut form = vec![("token", token)];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let res = self.post_basic(&self.revocation_url(), "gateway", GATEWAY_SECRET, &form)?;
        if res.status == 200 {
            Ok(())
        } else {
            Err(format!("revocation: {}: {}", res.status, res.body))
        }
    }

    /// Introspects `token` as the `gateway` client (RFC 7662): the JSON answer (`active`, …).
    pub fn introspect(&self, token: &str) -> Result<serde_json::Value, String> {
        let res = client::collect(
            client::agent()
                .post(&self.introspection_url())
                .header("authorization", basic("gateway", GATEWAY_SECRET))
                .header("accept", "application/json")
                .send_form([("token", token)]),
        )?;
        expect_json(&res, "introspection")
    }

    /// Introspects `token` as the `gateway` client asking for a JWT answer (RFC 9701): the JWT.
    pub fn introspect_jwt(&self, token: &str) -> Result<String, String> {
        let res = client::collect(
            client::agent()
                .post(&self.introspection_url())
                .header("authorization", basic("gateway", GATEWAY_SECRET))
                .header("accept", "application/token-introspection+jwt")
                .send_form([("token", token)]),
        )?;
        if res.status != 200 {
            return Err(format!("JWT introspection: {}: {}", res.status, res.body));
        }
        Ok(res.body)
    }

    /// Requests the OP received at its introspection and revocation endpoints: `(introspections, revocations)`.
    pub fn counters(&self) -> Result<(u64, u64), String> {
        let res = client::get(&format!("{}/test/counters", self.issuer), &[])?;
        let body = expect_json(&res, "counters")?;
        let count = |name: &str| {
            body[name]
                .as_u64()
                .ok_or_else(|| format!("counters: no {name} in {body}"))
        };
        Ok((count("introspection")?, count("revocation")?))
    }

    /// Makes the introspection endpoint answer 503 (`true`) or work again (`false`).
    pub fn set_introspection_failing(&self, failing: bool) -> Result<(), String> {
        let on = if failing { "1" } else { "0" };
        let res = client::post_form(&format!("{}/test/fail?on={on}", self.issuer), &[], &[])?;
        let body = expect_json(&res, "test/fail")?;
        if body["introspection_failing"].as_bool() == Some(failing) {
            Ok(())
        } else {
            Err(format!("test/fail: {body}"))
        }
    }

    fn post_basic(
        &self,
        url: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Result<Response, String> {
        client::post_form(url, &[("authorization", &basic(client_id, secret))], form)
    }

    /// `location` made absolute against the issuer.
    fn absolute(&self, location: &str) -> Result<String, String> {
        if location.starts_with('/') {
            Ok(format!("{}{location}", self.issuer))
        } else if location.starts_with("http://") || location.starts_with("https://") {
            Ok(location.to_owned())
        } else {
            Err(format!("unexpected redirect {location:?}"))
        }
    }
}

/// A JWT's header and payload, decoded (the signature is not checked).
pub fn decode_jwt(token: &str) -> Result<(serde_json::Value, serde_json::Value), String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a JWS compact serialisation: {token}"));
    };
    let part = |p: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| format!("JWT part {p}: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JWT part {p}: {e}"))
    };
    Ok((part(header)?, part(payload)?))
}

fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

fn expect_json(res: &Response, what: &str) -> Result<serde_json::Value, String> {
    if res.status != 200 {
        return Err(format!("{what}: {}: {}", res.status, res.body));
    }
    res.json()
}

fn string_member(body: &serde_json::Value, name: &str) -> Result<String, String> {
    body[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in {body}"))
}

fn location(res: &Response) -> Result<&str, String> {
    res.header("location")
        .ok_or_else(|| format!("expected a redirect, got {}: {}", res.status, res.body))
}

/// The value of the hidden input `name` of a page (oidc-provider's values are URL-safe).
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let rest = &html[html.find(&marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf)
}

/// A browser's cookies at the OP, by name (paths ignored: the OP's cookie names are distinct).
#[derive(Debug, Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, res: &Response) {
        for (k, v) in &res.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let (pair, attrs) = v.split_once(';').unwrap_or((v.as_str(), ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let attrs = attrs.to_ascii_lowercase();
            let expired = value.is_empty()
                || attrs.contains("max-age=0")
                || attrs.contains("expires=thu, 01 jan 1970");
            if expired {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    /// A GET that does not follow redirects, with the jar's cookies (keeping the new ones).
    fn get(&mut self, url: &str) -> Result<Response, String> {
        let res = client::collect(
            client::agent_following(0)
                .get(url)
                .header("cookie", self.header())
                .call(),
        )?;
        self.take(&res);
        Ok(res)
    }

    /// A form POST that does not follow redirects, with the jar's cookies.
    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Result<Response, String> {
        let res = client::collect(
            client::agent_following(0)
                .post(url)
                .header("cookie", self.header())
                .send_form(form.iter().copied()),
        )?;
        self.take(&res);
        Ok(res)
    }
}
