//! Two real IDP processes on one PostgreSQL database (`e2e::postgres`): one is killed with
//! SIGKILL under load (password logins, refresh rotations, client_credentials tokens and
//! revocations on both replicas at once). Whatever a client was answered 200 must hold
//! afterwards on the other replica: acknowledged revocations are in the feed, acknowledged tokens
//! introspect as they should, no rotated-away refresh token works, and every token carries the
//! one signing key. The killed replica is then started again and serves with no manual step.

use e2e::artifacts;
use e2e::client;
use e2e::postgres::{PostgresCluster, SKIP_ENV, skip_requested};
use e2e::process::{Proc, free_port};
use e2e::stack::{self, DEMO_CLIENT, GATEWAY_CLIENT};
use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEK: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// One IDP replica on the PostgreSQL database `db` (also used by `idp_cluster_gateways`).
pub fn start_replica(dir: &std::path::Path, name: &str, port: u16, issuer: &str, db: &str) -> Proc {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, stack::idp_config()).unwrap();
    let mut cmd = Command::new(artifacts::idp_bin().unwrap());
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--issuer", issuer])
        .args(["--database", db])
        .env("IDP_KEY_ENCRYPTION_KEY", KEK)
        .env("RUST_LOG", "info");
    let (proc, _) =
        Proc::start_until_line(name, cmd, dir, "idp listening on ", Duration::from_secs(60))
            .unwrap();
    proc
}

fn payload(jwt: &str, part: usize) -> Value {
    use base64::Engine;
    let text = jwt.split('.').nth(part).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

fn gateway_auth() -> String {
    use base64::Engine;
    let (id, secret) = GATEWAY_CLIENT;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn revoke(url: &str, token: &str) -> bool {
    let (id, secret) = DEMO_CLIENT;
    let form = [
        ("token", token),
        ("client_id", id),
        ("client_secret", secret),
    ];
    client::post_form(&format!("{url}/oauth2/revoke"), &[], &form).is_ok_and(|r| r.status == 200)
}

fn introspect_active(url: &str, token: &str) -> bool {
    let auth = gateway_auth();
    let r = client::post_form(
        &format!("{url}/oauth2/introspect"),
        &[("authorization", auth.as_str())],
        &[("token", token)],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().unwrap()["active"] == true
}

/// Every `jti` in the feed (all pages).
fn feed_jtis(url: &str) -> HashSet<String> {
    let auth = gateway_auth();
    let mut cursor = 0;
    let mut jtis = HashSet::new();
    loop {
        let r = client::get(
            &format!("{url}/oauth2/revocations?since={cursor}"),
            &[("authorization", auth.as_str())],
        )
        .unwrap();
        let body = r.json().unwrap();
        let entries = body["revoked"].as_array().unwrap();
        if entries.is_empty() {
            return jtis;
        }
        jtis.extend(
            entries
                .iter()
                .filter_map(|e| e["jti"].as_str().map(str::to_owned)),
        );
        cursor = body["cursor"].as_i64().unwrap();
    }
}

/// What the load generator was answered 200 for.
#[derive(Default)]
struct Acknowledged {
    /// Access tokens: revoked (acknowledged), not revoked (never asked), or `None`: a
    /// revocation was asked and not answered (in flight on the killed replica: either way).
    tokens: Vec<(String, Option<bool>)>,
    /// Per refresh chain, the last token a rotation replaced (so it must never work again).
    rotated: Vec<String>,
}

fn load(replicas: [String; 2], seed: usize, stop: Arc<AtomicBool>, out: Arc<Mutex<Acknowledged>>) {
    let mut chain: Option<String> = None;
    let mut last_rotated = None;
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let url = &replicas[i % 2];
        // a refresh chain: log in when there is none (or it broke on the killed replica)
        match chain.take() {
            None => {
                if let Ok(body) = stack::password_login(url) {
                    chain = body["refresh_token"].as_str().map(str::to_owned);
                }
            }
            Some(rt) => match stack::refresh(url, &rt) {
                Ok((200, body)) => {
                    chain = body["refresh_token"].as_str().map(str::to_owned);
                    last_rotated = Some(rt);
                }
                // refused (a rotation in flight on the killed replica may have used it) or the
                // replica is gone: start a new chain, keeping what this one proved
                _ => {
                    if let Some(rt) = last_rotated.take() {
                        out.lock().unwrap().rotated.push(rt);
                    }
                }
            },
        }
        if let Ok(token) = stack::token_from(url, DEMO_CLIENT, Some("read")) {
            let revoked = if i.is_multiple_of(3) {
                revoke(url, &token).then_some(true)
            } else {
                Some(false)
            };
            out.lock().unwrap().tokens.push((token, revoked));
        }
    }
    if let Some(rt) = last_rotated {
        out.lock().unwrap().rotated.push(rt);
    }
}

#[test]
fn a_replica_killed_under_load_loses_nothing_acknowledged_and_rejoins() {
    let _slot = crate::slot();
    if skip_requested() {
        eprintln!("PostgreSQL test skipped: {SKIP_ENV} is set");
        return;
    }
    let cluster = PostgresCluster::start().unwrap();
    let db = cluster.create_database("replicas").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port().unwrap(), free_port().unwrap());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let mut a = start_replica(dir.path(), "idp-a", port_a, &issuer, &db);
    let _b = start_replica(dir.path(), "idp-b", port_b, &issuer, &db);
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workers: Vec<_> = (0..4)
        .map(|seed| {
            let (replicas, stop, acked) = (
                [url_a.clone(), url_b.clone()],
                Arc::clone(&stop),
                Arc::clone(&acked),
            );
            std::thread::spawn(move || load(replicas, seed, stop, acked))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    a.stop(); // SIGKILL, in the middle of the load
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let revoked: Vec<&str> = acked
        .tokens
        .iter()
        .filter(|(_, r)| *r == Some(true))
        .map(|(t, _)| t.as_str())
        .collect();
    assert!(
        revoked.len() >= 3 && acked.rotated.len() >= 2,
        "too little load to judge: {} tokens, {} revoked, {} chains",
        acked.tokens.len(),
        revoked.len(),
        acked.rotated.len()
    );
    // every acknowledged revocation is in the feed, on the surviving replica
    let feed = feed_jtis(&url_b);
    for token in &revoked {
        let jti = payload(token, 1)["jti"].as_str().unwrap().to_owned();
        assert!(feed.contains(&jti), "acknowledged revocation {jti} lost");
    }
    // every acknowledged token introspects as it should, and all carry one key
    let kids: HashSet<String> = acked
        .tokens
        .iter()
        .map(|(t, _)| payload(t, 0)["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 1, "tokens signed by several keys: {kids:?}");
    for (token, revoked) in &acked.tokens {
        if let Some(revoked) = revoked {
            assert_eq!(introspect_active(&url_b, token), !revoked);
        }
    }
    // no refresh token both rotated and still valid
    for rt in &acked.rotated {
        let (status, body) = stack::refresh(&url_b, rt).unwrap();
        assert_eq!(status, 400, "a rotated refresh token still works: {body}");
    }
    println!(
        "load: {} tokens ({} revoked), {} refresh chains checked",
        acked.tokens.len(),
        revoked.len(),
        acked.rotated.len()
    );

    // the killed replica comes back and serves, with the same key
    let _a = start_replica(dir.path(), "idp-a-again", port_a, &issuer, &db);
    let token = stack::token_from(&url_a, DEMO_CLIENT, Some("read")).unwrap();
    assert!(kids.contains(payload(&token, 0)["kid"].as_str().unwrap()));
    assert!(introspect_active(&url_b, &token));
    drop(cluster);
}
