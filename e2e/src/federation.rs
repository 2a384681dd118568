//! "Every gateway learns it": a third-party OP (node `oidc-provider`, [`crate::oidc_provider`]),
//! our IDP binary as its **revocation hub** (federation role only: no users, one gateway client
//! per gateway), and Envoys with the filter (Wasm or native module), each in front of a demo
//! resource server of its own, validating the OP's tokens with the OP's JWKS, long-polling the
//! hub's revocation feed, reporting its logouts' cut-offs to the hub and forwarding the logout
//! tokens it receives there.
//! Everything on free loopback ports, stopped when dropped.
//!
//! The Envoy bootstraps are built here (JSON, which Envoy reads as YAML); Envoy refuses an invalid
//! one at start-up. Used by `tests/e2e/federation.rs`.

use crate::client::{self, Response};
use crate::oidc_provider::{
    GATEWAY_SECRET, OidcProvider, OpOptions, RESOURCE_ES256, RESOURCE_RS256,
};
use crate::process::{Proc, free_port};
use crate::scenario_runner::Module;
use crate::stack::{Idp, sha256_hex, start_idp_with_config, start_resource_server};
use crate::third_party::{bootstrap, counter_name, read_stat, start_envoy};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Gateway clients at the hub (id, secret). A and B may report cut-offs for the OP's issuer.
pub const GATEWAY_A: (&str, &str) = ("gateway-a", "gateway-a-secret-0123456789abcdef0123");
pub const GATEWAY_B: (&str, &str) = ("gateway-b", "gateway-b-secret-0123456789abcdef0123");
/// A gateway client of the hub that is NOT allowed the OP's issuer (no `federated_issuers`).
pub const GATEWAY_UNFEDERATED: (&str, &str) =
    ("gateway-c", "gateway-c-secret-0123456789abcdef0123");
/// The filter's logout path and back-channel logout path (also the hub's receiver path).
pub const LOGOUT_PATH: &str = "/oauth2/logout";
pub const BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";
/// The OP's longest access-token lifetime as the hub and the gateways are told it.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 600;
const RS_SECRET: &str = "demo-gateway-to-rs-secret-0123456789";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The hub's configuration: the OP as its one federated issuer (keys from its JWKS), logout
/// tokens for `webapp`, and the three gateway clients.
pub fn hub_config(op: &OidcProvider) -> String {
    let iss = op.issuer();
    let client = |(id, secret): (&str, &str), federated: bool| {
        format!(
            "[[clients]]\nid = \"{id}\"\nsecret_sha256 = \"{}\"\ngateway = true\n{}\n",
            sha256_hex(secret),
            if federated {
                format!("federated_issuers = [\"{iss}\"]\n")
            } else {
                String::new()
            }
        )
    };
    [
        format!(
            "[federation]\nkey_refresh_seconds = 300\n\n[[federation.issuers]]\nissuer = \"{iss}\"\n\
             jwks_uri = \"{jwks}\"\nalgorithms = [\"RS256\", \"ES256\"]\n\
             backchannel_audiences = [\"webapp\"]\nmax_token_lifetime_seconds = {MAX_TOKEN_LIFETIME_SECONDS}\n\
             leeway_seconds = 5\nlogout_token_max_age_seconds = 300\n\n",
            jwks = op.jwks_url()
        ),
        client(GATEWAY_A, true),
        client(GATEWAY_B, true),
        client(GATEWAY_UNFEDERATED, false),
    ]
    .concat()
}

/// The filter's configuration: the OP as provider (JWKS, revocation as the OP's `gateway`
/// client, logout tokens for `webapp`), the hub's feed and the hub for the OP's issuer, logout
/// and the back-channel logout receiver.
pub fn filter_config(op: &OidcProvider, (client_id, client_secret): (&str, &str)) -> String {
    let authority = format!("127.0.0.1:{}", op.port());
    json!({
        "realm": "gateway",
        "providers": [{
            "name": "oidc-provider",
            "issuer": op.issuer(),
            "audiences": [RESOURCE_ES256, RESOURCE_RS256],
            "algorithms": ["ES256", "RS256"],
            "leeway_seconds": 5,
            "max_token_lifetime_seconds": MAX_TOKEN_LIFETIME_SECONDS,
            "backchannel_logout_audiences": ["webapp"],
            "jwks": {"cluster": "op", "path": "/jwks", "authority": authority, "refresh_seconds": 300},
            "revoke": {
                "cluster": "op", "path": "/token/revocation", "authority": authority,
                "timeout_ms": 3000, "client_id": "gateway", "client_secret": GATEWAY_SECRET
            }
        }],
        "idp_client": {"client_id": client_id, "client_secret": client_secret},
        "revocation_feed": {"cluster": "hub", "path": "/oauth2/revocations", "poll_ms": 500},
        "hub": {"cluster": "hub", "issuers": [op.issuer()], "timeout_ms": 3000},
        "logout": {
            "path": LOGOUT_PATH,
            "resource_server": {
                "cluster": "resource_server", "path": "/internal/sessions/revoke",
                "secret_header": "x-gateway-secret", "secret": RS_SECRET, "timeout_ms": 3000
            }
        },
        "backchannel_logout": {},
        "rules": [
            {"match": {"exact": "/healthz"}, "action": "bypass"},
            {"match": {"prefix": "/api/"}}
        ]
    })
    .to_string()
}

/// Ports of one Envoy.
#[derive(Debug, Clone, Copy)]
struct Ports {
    listen: u16,
    admin: u16,
    op: u16,
    hub: u16,
    rs: u16,
}

/// One gateway of the federation: what to start.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub name: &'static str,
    pub module: Module,
    /// Its client at the hub (feed, cut-off reports, forwarded logout tokens).
    pub client: (&'static str, &'static str),
}

/// A running Envoy with the filter, in front of its resource server, on the hub's feed.
pub struct HubGateway {
    pub name: &'static str,
    pub module: Module,
    pub client_id: &'static str,
    pub proc: Proc,
    pub url: String,
    pub admin_url: String,
    /// One keep-alive connection's worth of client (for tight polling).
    agent: ureq::Agent,
}

impl HubGateway {
    fn launch(
        spec: &GatewaySpec,
        dir: &std::path::Path,
        op: &OidcProvider,
        ports: Ports,
    ) -> Result<HubGateway, String> {
        let filter = filter_config(op, spec.client);
        let clusters = [
            ("op", ports.op),
            ("hub", ports.hub),
            ("resource_server", ports.rs),
        ];
        let bootstrap = bootstrap(&spec.module, &filter, ports.listen, ports.admin, &clusters);
        let proc = start_envoy(spec.name, &spec.module, &bootstrap, dir)?;
        Ok(HubGateway {
            name: spec.name,
            module: spec.module.clone(),
            client_id: spec.client.0,
            proc,
            url: format!("http://127.0.0.1:{}", ports.listen),
            admin_url: format!("http://127.0.0.1:{}", ports.admin),
            agent: client::agent(),
        })
    }

    /// Envoy is live, the filter has the OP's keys and has read the hub's feed up to date.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.proc.is_running() {
                return Err(format!(
                    "{} exited; log:\n{}",
                    self.name,
                    self.proc.log_tail()
                ));
            }
            if self.counter("jwks_fetch_ok") >= 1 && self.counter("revocation_feed_synced") >= 1 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: no OP keys or no feed sync within {START_TIMEOUT:?}; log:\n{}",
                    self.name,
                    self.proc.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The filter's counter `oauth2gw.NAME` (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        read_stat(&self.admin_url, &counter_name(&self.module, name))
    }

    /// An Envoy statistic by its full name (e.g. `cluster.resource_server.upstream_rq_4xx`), 0
    /// when absent.
    pub fn stat(&self, name: &str) -> u64 {
        read_stat(&self.admin_url, name)
    }

    /// `GET /api/hello` with `token` as bearer, on this gateway's keep-alive agent.
    pub fn hello(&self, token: &str) -> Result<Response, String> {
        client::collect(
            self.agent
                .get(format!("{}/api/hello", self.url))
                .header("authorization", format!("Bearer {token}"))
                .call(),
        )
    }

    /// Logout through this gateway with `token` (`POST /oauth2/logout`, bearer).
    pub fn logout(&self, token: &str) -> Result<Response, String> {
        client::post_form(
            &format!("{}{LOGOUT_PATH}", self.url),
            &[("authorization", &format!("Bearer {token}"))],
            &[],
        )
    }

    /// This gateway's back-channel logout URL.
    pub fn backchannel_url(&self) -> String {
        format!("{}{BACKCHANNEL_PATH}", self.url)
    }

    /// POSTs a form `body` (as the OP sends it) to the back-channel logout path.
    pub fn post_backchannel(&self, body: &str) -> Result<Response, String> {
        post_form_body(&self.backchannel_url(), body)
    }

    /// The tail of Envoy's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }
}

/// POSTs an already encoded form body.
pub fn post_form_body(url: &str, body: &str) -> Result<Response, String> {
    client::collect(
        client::agent()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.as_bytes()),
    )
}

/// The addresses known before the OP starts (so that its back-channel logout URI can name one).
#[derive(Debug, Clone)]
pub struct Addresses {
    pub hub_url: String,
    /// Each gateway's URL, in the order of the specs.
    pub gateway_urls: Vec<String>,
}

/// The OP, the hub, the resource servers and the gateways, stopped when dropped.
pub struct Federation {
    pub gateways: Vec<HubGateway>,
    pub hub: Idp,
    pub hub_url: String,
    pub op: OidcProvider,
    /// One per gateway, in the same order.
    pub resource_servers: Vec<Proc>,
    pub dir: tempfile::TempDir,
}

impl Federation {
    /// Starts everything; `backchannel_logout_uri` says where the OP sends `webapp`'s logout
    /// tokens, given the hub's and the gateways' addresses (chosen before anything starts).
    pub fn start(
        specs: &[GatewaySpec],
        backchannel_logout_uri: impl FnOnce(&Addresses) -> Option<String>,
    ) -> Result<Federation, String> {
        Self::start_with_hub_extra(specs, backchannel_logout_uri, |_, _| String::new())
    }

    /// [`Federation::start`] with more hub configuration (TOML appended to [`hub_config`]),
    /// given the addresses and the OP's issuer — e.g. `[[federation.ssf_streams]]`.
    pub fn start_with_hub_extra(
        specs: &[GatewaySpec],
        backchannel_logout_uri: impl FnOnce(&Addresses) -> Option<String>,
        hub_extra: impl FnOnce(&Addresses, &str) -> String,
    ) -> Result<Federation, String> {
        let dir = tempfile::Builder::new()
            .prefix("oauth2gw-federation-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let hub_port = free_port()?;
        let hub_url = format!("http://127.0.0.1:{hub_port}");
        let mut listen = Vec::with_capacity(specs.len());
        for _ in specs {
            listen.push((free_port()?, free_port()?));
        }
        let addresses = Addresses {
            hub_url: hub_url.clone(),
            gateway_urls: listen
                .iter()
                .map(|(l, _)| format!("http://127.0.0.1:{l}"))
                .collect(),
        };
        let op = OidcProvider::start(OpOptions {
            backchannel_logout_uri: backchannel_logout_uri(&addresses),
            ..OpOptions::default()
        })?;
        let hub_toml = format!(
            "{}\n{}",
            hub_config(&op),
            hub_extra(&addresses, op.issuer())
        );
        let hub = start_idp_with_config(dir.path(), "hub", hub_port, &hub_url, &hub_toml)?;
        let mut gateways = Vec::with_capacity(specs.len());
        let mut resource_servers = Vec::with_capacity(specs.len());
        for (spec, &(listen, admin)) in specs.iter().zip(&listen) {
            // each gateway its own resource server: a logout ends the session only at the one
            // behind the gateway it went through, so what the other gateway refuses, it refuses
            // itself (the hub's feed), not its resource server
            let (rs, rs_port) =
                start_resource_server(dir.path(), &format!("resource-server-{}", spec.name), 0)?;
            resource_servers.push(rs);
            let ports = Ports {
                listen,
                admin,
                op: op.port(),
                hub: hub_port,
                rs: rs_port,
            };
            gateways.push(HubGateway::launch(spec, dir.path(), &op, ports)?);
        }
        for gateway in &mut gateways {
            gateway.wait_ready()?;
        }
        Ok(Federation {
            gateways,
            hub,
            hub_url,
            op,
            resource_servers,
            dir,
        })
    }

    /// The hub's revocation feed from the start, read as gateway client `client` (no wait).
    pub fn hub_feed(&self, (id, secret): (&str, &str)) -> Result<Value, String> {
        let auth = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let res = client::get(
            &format!("{}/oauth2/revocations?since=0", self.hub_url),
            &[("authorization", &auth)],
        )?;
        if res.status != 200 {
            return Err(format!("hub feed: {}: {}", res.status, res.body));
        }
        res.json()
    }

    /// The hub's Prometheus text (`/metrics`), or an empty string.
    pub fn hub_metrics(&self) -> String {
        client::get(&format!("{}/metrics", self.hub_url), &[])
            .map(|r| r.body)
            .unwrap_or_default()
    }
}

/// One back-channel logout the [`Relay`] passed on: the OP's form body, and the answer of the
/// gateway it was relayed to.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub body: String,
    pub status: u16,
    pub answer: String,
}

/// A loopback HTTP listener that takes the OP's back-channel logout POSTs, passes each body on
/// to `target` (a gateway's back-channel logout URL) as it came, answers the OP with the target's
/// status and body, and hands over what it relayed (so a test can replay the logout token).
pub struct Relay {
    pub url: String,
    pub relayed: mpsc::Receiver<Relayed>,
}

impl Relay {
    pub fn start(target: String) -> Result<Relay, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(read_half) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read_half);
                let mut request_line = String::new();
                // oidc-provider's SSRF guard connects, then drops the socket: not a request
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length.min(64 * 1024)];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, answer) = match post_form_body(&target, &body) {
                    Ok(res) => (res.status, res.body),
                    Err(e) => (502, format!("relay: {e}")),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Relayed\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.flush();
                if tx
                    .send(Relayed {
                        body,
                        status,
                        answer,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Relay {
            url: format!("http://127.0.0.1:{port}/backchannel-logout"),
            relayed: rx,
        })
    }
}
