//! The real `idp serve` binary as the hub, killed with SIGKILL (by its pid) while a transmitter
//! delivers events by poll: after a restart on the same database, every event it acknowledged
//! before it died is on the feed, and every event is in the end (none acknowledged before it was
//! stored, none lost).

use super::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn start(config: &std::path::Path, db: &str, log: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--database", db])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(addr) = line.trim().strip_prefix("idp listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "idp did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    (child, addr.to_owned())
}

async fn http_feed(base: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "GET /oauth2/revocations HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        basic(GATEWAY)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str::<Value>(body).unwrap()["revoked"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_acknowledged_before_a_sigkill_is_applied_after_the_restart() {
    let tx = Transmitter::start(AUD, None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        super::config(&tx, &format!("delivery = \"poll\"\n{}", bearer())),
    )
    .unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("hub.sqlite").display()
    );
    let log = dir.path().join("hub.log");
    let (mut child, _) = start(&config, &db, &log);
    assert!(
        tx.until(Duration::from_secs(15), |t| t.polls() > 0).await,
        "the hub did not poll: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let total = 80;
    let producer = {
        let tx = Arc::clone(&tx);
        tokio::spawn(async move {
            let mut sids = Vec::new();
            for i in 0..total {
                let sid = format!("kill-{i}");
                tx.queue(&session_revoked(&tx, &sid, now()));
                sids.push(sid);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sids
        })
    };
    assert!(
        tx.until(Duration::from_secs(10), |t| t.acks().len() >= 10)
            .await
    );
    child.kill().unwrap(); // SIGKILL, this child's pid only
    child.wait().unwrap();
    let acked_before: Vec<String> = tx.acks();
    let sids = producer.await.unwrap();
    let (mut child, base) = start(&config, &db, &log);
    let done = tx
        .until(Duration::from_secs(30), |t| t.pending() == 0)
        .await;
    let revoked = http_feed(&base).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(done, "events left undelivered");
    let on_feed: std::collections::BTreeSet<String> = revoked
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sid"].as_str().unwrap().to_owned())
        .collect();
    assert!(!acked_before.is_empty() && acked_before.len() < total + 1);
    for sid in &sids {
        assert!(on_feed.contains(sid), "{sid} missing after the restart");
    }
    assert_eq!(on_feed.len(), total);
    assert!(tx.set_errs().is_empty(), "{:?}", tx.set_errs());
}
