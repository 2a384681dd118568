//! A scripted introspection endpoint for the answers oidc-provider cannot be made to give (used
//! by [`super::scripted_answers`]).

use super::{Setup, introspection, shape};
use e2e::process::free_port;
use e2e::third_party::{Build, now_secs};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::Issuer;

/// The issuer the scripted endpoint speaks for.
pub(super) const SCRIPTED_ISSUER: &str = "https://scripted-op.invalid";
pub(super) const SCRIPTED_AUDIENCE: &str = "urn:gateway:scripted";

/// A loopback introspection endpoint (a thread of the test) whose answer depends on the token's
/// prefix: `ok-` active; `noiss-` active without `iss`; `otheriss-` another issuer; `otheraud-`
/// another audience; `big-` active with more than 4 KiB of claims; `leeway-` active, `exp` one
/// second ago; `slow-` never answers; anything else inactive. Counts the calls per token. With a
/// signing key set, answers asked as `application/token-introspection+jwt` are RFC 9701 JWTs,
/// and `GET /jwks` publishes the keys set by [`ScriptedOp::publish`].
pub(super) struct ScriptedOp {
    port: u16,
    state: Arc<Mutex<Scripted>>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Scripted {
    calls: HashMap<String, u64>,
    jwks_fetches: u64,
    /// The keys `GET /jwks` publishes (`Issuer::es256` seed, kid).
    published: Vec<(u8, String)>,
    /// The key RFC 9701 answers are signed with.
    signer: Option<(u8, String)>,
}

impl ScriptedOp {
    pub(super) fn start() -> ScriptedOp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(Scripted::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let c = Arc::clone(&c);
                        std::thread::spawn(move || serve_scripted(conn, &c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ScriptedOp { port, state, stop }
    }

    pub(super) fn calls(&self, token: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    /// Envoy with the filter, its one provider this endpoint's issuer ([`SCRIPTED_ISSUER`]):
    /// introspection at this endpoint with the `introspection` members `extra`, the keys from its
    /// `/jwks` with `jwks`.
    pub(super) fn gateway(&self, kind: Build, extra: Value, jwks: bool) -> Setup {
        let shape = shape(
            vec![SCRIPTED_AUDIENCE],
            introspection(self.port, extra),
            jwks,
        );
        Setup::launch(
            kind,
            None,
            SCRIPTED_ISSUER,
            self.port,
            free_port().unwrap(),
            &shape,
        )
    }

    pub(super) fn jwks_fetches(&self) -> u64 {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Publishes `keys` at `/jwks` and signs RFC 9701 answers with `signer`.
    pub(super) fn publish(&self, keys: &[(u8, &str)], signer: (u8, &str)) {
        let mut state = self.state.lock().unwrap();
        state.published = keys.iter().map(|(s, k)| (*s, (*k).to_owned())).collect();
        state.signer = Some((signer.0, signer.1.to_owned()));
    }
}

impl Drop for ScriptedOp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(conn: &mut TcpStream, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// One connection: reads one request (headers, then `content-length` bytes), answers, closes.
fn serve_scripted(mut conn: TcpStream, state: &Mutex<Scripted>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.starts_with("get /jwks ") {
        let mut state = state.lock().unwrap();
        state.jwks_fetches += 1;
        let keys: Vec<Issuer> = state
            .published
            .iter()
            .map(|(seed, kid)| Issuer::es256(*seed, kid))
            .collect();
        drop(state);
        let body = test_support::jwks(&keys.iter().collect::<Vec<_>>()).to_string();
        respond(&mut conn, "application/json", &body);
        return;
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let form: HashMap<String, String> =
        serde_urlencoded::from_bytes(&buf[head_end..head_end + length]).unwrap_or_default();
    let token = form.get("token").cloned().unwrap_or_default();
    let signer = {
        let mut state = state.lock().unwrap();
        *state.calls.entry(token.clone()).or_insert(0) += 1;
        state.signer.clone()
    };
    let now = now_secs();
    // a JWT (introspect: always) is answered by its `sub`
    let jwt_sub = e2e::oidc_provider::decode_jwt(&token)
        .ok()
        .and_then(|(_, claims)| claims["sub"].as_str().map(str::to_owned));
    let prefix = jwt_sub
        .as_deref()
        .unwrap_or_else(|| token.split('-').next().unwrap_or(""));
    let mut answer = json!({
        "active": true,
        "iss": SCRIPTED_ISSUER,
        "aud": SCRIPTED_AUDIENCE,
        "client_id": "scripted-client",
        "sub": prefix,
        "scope": "api",
        "iat": now,
        "exp": now + 300,
    });
    match prefix {
        "ok" => {}
        "noiss" => {
            answer.as_object_mut().map(|a| a.remove("iss"));
        }
        "otheriss" => answer["iss"] = json!("https://elsewhere.invalid"),
        "otheraud" => answer["aud"] = json!("urn:gateway:someone-else"),
        "big" => answer["padding"] = json!("x".repeat(5000)),
        "huge" => answer["padding"] = json!("x".repeat(20_000)),
        "leeway" => answer["exp"] = json!(now - 1),
        "notjson" => {
            respond(&mut conn, "text/html", "<html>maintenance</html>");
            return;
        }
        "activestring" => answer["active"] = json!("true"),
        // `short-EXP-…`: active until EXP
        "short" => {
            let exp: u64 = token
                .split('-')
                .nth(1)
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            if now < exp {
                answer["exp"] = json!(exp);
            } else {
                answer = json!({"active": false});
            }
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(4));
            return;
        }
        _ => answer = json!({"active": false}),
    }
    match signer {
        Some((seed, kid)) if head.contains("accept: application/token-introspection+jwt") => {
            let key = Issuer::es256(seed, &kid);
            let header = json!({"alg": "ES256", "typ": "token-introspection+jwt", "kid": kid});
            let claims = json!({
                "iss": SCRIPTED_ISSUER, "aud": "gateway", "iat": now, "token_introspection": answer
            });
            let jwt = key.sign(&header, &claims);
            respond(&mut conn, "application/token-introspection+jwt", &jwt);
        }
        _ => respond(&mut conn, "application/json", &answer.to_string()),
    }
}
