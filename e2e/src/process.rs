//! Child processes that die with their guard, and waiting for a readiness line.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running process, killed when dropped. Its stderr goes to a log file kept for diagnosis.
pub struct Proc {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd`, waits (up to `timeout`) for a stdout line starting with `ready_prefix`, and
    /// returns the process with the rest of that line.
    pub fn start_until_line(
        name: &str,
        mut cmd: Command,
        log_dir: &Path,
        ready_prefix: &str,
        timeout: Duration,
    ) -> Result<(Proc, String), String> {
        let log = log_dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{name}: log file: {e}"))?;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut proc = Proc {
            name: name.to_owned(),
            child,
            log,
        };
        let (tx, rx) = mpsc::channel();
        let prefix = ready_prefix.to_owned();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(&prefix) {
                    let _ = tx.send(rest.to_owned());
                    break;
                }
            }
            // keep draining so the child never blocks on a full pipe
            for _ in lines {}
        });
        match rx.recv_timeout(timeout) {
            Ok(rest) => Ok((proc, rest)),
            Err(_) => {
                let status = proc.child.try_wait().ok().flatten();
                let tail = proc.log_tail();
                proc.kill();
                Err(format!(
                    "{name} did not print {ready_prefix:?} within {timeout:?} (exit: {status:?}); log:\n{tail}"
                ))
            }
        }
    }

    /// Starts `cmd` with stdout and stderr into the log file.
    pub fn start(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc, String> {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| format!("{name}: log file: {e}"))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{name}: log file: {e}"))?;
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process now (it is also stopped when dropped).
    pub fn stop(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (for signals).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name `kill` knows: `STOP`, `CONT`, `KILL`, …) to the process.
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .map_err(|e| format!("kill -{signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{signal} {} failed: {status}", self.name))
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // a stopped process (SIGSTOP) dies of SIGKILL as well
        self.kill();
    }
}

/// Ports handed out come from below the kernel's ephemeral range (32768–60999 on Linux): a port
/// the kernel picked for `bind(0)` and then released can be picked again by the kernel for
/// another process's `bind(0)` or outgoing connection before ours binds it ("address already in
/// use", seen in CI). Ports from this range are never assigned by the kernel, so only processes
/// using explicit ports can collide, and each test process starts at its own offset.
const PORT_RANGE: std::ops::Range<u32> = 20_000..32_000;

/// A loopback port that is free now and not handed out before by this process (for processes
/// that cannot report their own).
pub fn free_port() -> Result<u16, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let offset = (std::process::id() * 7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let candidate = PORT_RANGE.start + (offset + n) % span;
        let Ok(port) = u16::try_from(candidate) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free port in {PORT_RANGE:?}"))
}
