//! The real `idp` binary on a free loopback port (port 0) with a temporary SQLite database and
//! the demo configuration (`idp/idp.toml`), and a raw HTTP/1.1 client that can send what no
//! well-behaved client would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const DEMO: (&str, &str) = ("demo-client", "demo-client-secret-0123456789abcdef");
pub const GATEWAY: (&str, &str) = ("gateway", "gateway-secret-0123456789abcdef0123");

/// A running `idp serve`; killed (by its own pid) when dropped.
pub struct LiveIdp {
    child: Child,
    pub addr: SocketAddr,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl LiveIdp {
    pub fn start() -> LiveIdp {
        let dir = tempfile::tempdir().unwrap();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("idp.toml");
        let stderr = dir.path().join("idp.stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("idp.sqlite").display()
            ))
            .env("RUST_LOG", "info")
            .env_remove("IDP_MAX_BODY_BYTES")
            .env_remove("IDP_MAX_HEADER_BYTES")
            .env_remove("IDP_MAX_HEADERS")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("idp listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "idp did not start ({line:?}): {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        LiveIdp {
            addr: addr.parse().unwrap(),
            child,
            stderr,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Still running, answering `/healthz`, and no panic in its log.
    pub fn assert_healthy(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the idp exited: {}",
            self.log()
        );
        let r = self.send(b"GET /healthz HTTP/1.1\r\nHost: idp\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "healthz after the run");
        assert!(!self.log().contains("panicked"), "{}", self.log());
    }

    /// Sends SIGTERM to this idp (by its pid) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `request` as raw bytes and reads the answer (the connection is closed after it).
    pub fn send(&self, request: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // The server may answer and close before it has read everything (a body over the
        // limit): a failed write is not an error here, the answer is what counts.
        let _ = stream.write_all(request);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Answer::parse(&raw)
    }
}

impl Drop for LiveIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer, parsed loosely.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "{} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `Authorization: Basic` for a client.
pub fn basic((id, secret): (&str, &str)) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}
