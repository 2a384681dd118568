//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, one server on a
//! free loopback port, stopped (by its PID) and deleted when the value is dropped. Tests make one
//! cluster per test binary run and one database per test ([`PostgresCluster::create_database`]).
//!
//! The server refuses to run as root, and the tests run as root: then `initdb` and `postgres` run
//! as the `postgres` user of Debian's `postgresql` package (`runuser -u postgres --`), on a
//! directory that user owns. A watchdog shell (as the caller's user) stops the server and deletes
//! the directory when the test process ends without dropping the cluster (a static, a panic with
//! `panic = abort`, a `kill -9`).
//!
//! Missing server binaries are an error saying to run `scripts/test` (which installs them),
//! unless [`SKIP_ENV`] is set: a PostgreSQL test is never skipped silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to skip the PostgreSQL tests on a machine without the server (they fail otherwise).
pub const SKIP_ENV: &str = "IDP_TEST_SKIP_POSTGRES";

/// Whether the PostgreSQL tests were explicitly switched off ([`SKIP_ENV`]).
pub fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Ports tried for the server: below e2e's range (20000–32000) and the kernel's ephemeral range.
const PORT_RANGE: std::ops::Range<u32> = 15_000..20_000;
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct PostgresCluster {
    /// The temporary directory (owned by the server's user): `data/`, the socket, `server.log`.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    /// The `postgres` (or `runuser`) process while the server runs.
    server: Option<Child>,
    watchdog: Option<Child>,
    databases: AtomicU32,
}

fn command_output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The directory of `initdb` and `postgres`: `$PG_BIN_DIR`, else Debian's
/// `/usr/lib/postgresql/VERSION/bin` (newest), else wherever `initdb` is on the PATH.
fn find_bin_dir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_server(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    Err(format!(
        "PostgreSQL server binaries (initdb, postgres) not found: run scripts/test, which installs \
         Debian's postgresql package (or `apt-get install postgresql`), or set {SKIP_ENV}=1 to skip \
         the PostgreSQL tests"
    ))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn signal(pid: &str, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, pid])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl PostgresCluster {
    /// Creates and starts a cluster (superuser `postgres`, trust authentication on loopback).
    pub fn start() -> Result<PostgresCluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres_user = is_root();
        let dir = PathBuf::from(command_output(
            Self::as_server_user(as_postgres_user, "mktemp").args(["-d", "/tmp/idp-pg-XXXXXXXX"]),
        )?);
        let mut cluster = PostgresCluster {
            dir,
            bin,
            port: 0,
            as_postgres_user,
            server: None,
            watchdog: None,
            databases: AtomicU32::new(0),
        };
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        let data = cluster.data_dir();
        command_output(cluster.server_command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        cluster.start_on_free_port()?;
        Ok(cluster)
    }

    fn as_server_user(as_postgres_user: bool, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn server_command(&self, name: &str) -> Command {
        Self::as_server_user(self.as_postgres_user, self.bin.join(name))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Stops the server and deletes the directory once this process is gone.
    fn spawn_watchdog(&self) -> Result<Child, String> {
        let script = format!(
            "while kill -0 {owner} 2>/dev/null; do sleep 1; done; \
             pid=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null); \
             if [ -n \"$pid\" ]; then kill -INT \"$pid\" 2>/dev/null; \
               while kill -0 \"$pid\" 2>/dev/null; do sleep 0.2; done; fi; \
             rm -rf '{dir}'",
            owner = std::process::id(),
            data = self.data_dir().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the cleanup watchdog: {e}"))
    }

    fn start_on_free_port(&mut self) -> Result<(), String> {
        let span = PORT_RANGE.end - PORT_RANGE.start;
        let offset = (std::process::id() * 7919) % span;
        let mut last_error = String::from("no port tried");
        for attempt in 0..20 {
            let Ok(port) = u16::try_from(PORT_RANGE.start + (offset + attempt * 97) % span) else {
                continue;
            };
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            self.port = port;
            match self.start_server() {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Starts the server on `self.port` and waits until it accepts queries.
    fn start_server(&mut self) -> Result<(), String> {
        let log = self.dir.join("server.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err_file = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = self
            .server_command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=400",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("postgres exited ({status}): {text}"));
            }
            if self.psql("postgres", "SELECT 1").is_ok() {
                self.server = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("postgres did not start in time: {text}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let local = self.bin.join("psql");
        let program = if local.is_file() {
            local
        } else {
            PathBuf::from("psql")
        };
        command_output(
            Command::new(program)
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
                .arg(self.port.to_string())
                .args(["-d", database, "-c", sql]),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new empty database (`{prefix}_{n}`, unique in this cluster) and gives its URL.
    pub fn create_database(&self, prefix: &str) -> Result<String, String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("{clean}_{n}");
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(&name))
    }

    /// Runs one SQL command on `database` (as the superuser) and gives psql's unaligned output.
    pub fn execute(&self, database: &str, sql: &str) -> Result<String, String> {
        self.psql(database, sql)
    }

    /// Stops the server (fast shutdown, by its PID) and waits for it; the data stays.
    pub fn stop(&mut self) {
        let pid_file = self.data_dir().join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
            && signal(&pid, "-INT")
        {
            let deadline = Instant::now() + START_TIMEOUT;
            while signal(&pid, "-0") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if signal(&pid, "-0") {
                signal(&pid, "-KILL");
            }
        }
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.start_server()
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = Command::new("rm").arg("-rf").arg(&self.dir).status();
    }
}
