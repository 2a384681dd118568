//! A load generator for fault tests: threads that keep sending valid, invalid and revoked tokens
//! through a gateway, judge every answer, and count what they saw (issue 19, part 3).
//!
//! A *wrong answer* is a decision the gateway must never make: a revoked or invalid token
//! accepted (200), a valid token refused as a token (401). Anything else that is not the expected
//! answer is an *error*, counted by kind (the status and what answered it: the filter's 503
//! without keys or before its revocation feed was read, Envoy's own 503 when an upstream is
//! down, a transport failure), so each test
//! can say which kinds it allows. Tokens can change class while the load runs: a token revoked
//! during an outage is moved to the revoked class once the test has seen the gateway refuse it.

use crate::client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a token is, so what the gateway must answer for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Signed by the IDP, not expired, not revoked: 200 (never 401).
    Valid,
    /// Garbage, a bad signature, another audience: 401 (never 200).
    Invalid,
    /// Revoked at the IDP before the gateway could last reach it: 401 (never 200).
    Revoked,
}

/// The kind of an answer that was not the expected one but not wrong either.
pub fn error_kind(res: &Result<client::Response, String>) -> String {
    match res {
        Err(e) if e.contains("timed out") || e.contains("Timeout") => "transport: timeout".into(),
        Err(_) => "transport: connection failed".into(),
        Ok(r) if r.status == 503 && r.body.contains("token keys are not available") => {
            "503 no keys (filter)".into()
        }
        Ok(r) if r.status == 503 && r.body.contains("revoked tokens are not loaded") => {
            "503 revocations not loaded (filter)".into()
        }
        Ok(r) if r.status == 503 && r.body.contains("upstream connect error") => {
            "503 upstream unreachable (Envoy)".into()
        }
        Ok(r) if r.status == 503 && r.body.contains("no healthy upstream") => {
            "503 no healthy upstream (Envoy)".into()
        }
        Ok(r) if r.status == 504 => "504 upstream timeout (Envoy)".into(),
        Ok(r) => format!("{} other", r.status),
    }
}

/// What the load saw, all threads together.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub sent: u64,
    /// Per class: requests sent.
    pub sent_by_class: BTreeMap<String, u64>,
    pub wrong: u64,
    /// The first few wrong answers, described (for the failure message).
    pub wrong_examples: Vec<String>,
    /// Errors (neither the expected answer nor a wrong one) by kind.
    pub errors: BTreeMap<String, u64>,
    /// When the last error or wrong answer was seen.
    pub last_bad_at: Option<Instant>,
}

impl Tally {
    fn record(&mut self, class: Class, res: &Result<client::Response, String>, at: Instant) {
        self.sent += 1;
        *self.sent_by_class.entry(format!("{class:?}")).or_default() += 1;
        let status = res.as_ref().map(|r| r.status).ok();
        let (expected, wrong) = match class {
            Class::Valid => (200, status == Some(401)),
            Class::Invalid | Class::Revoked => (401, status == Some(200)),
        };
        if wrong {
            self.wrong += 1;
            if self.wrong_examples.len() < 5 {
                self.wrong_examples
                    .push(format!("{class:?} token answered {status:?}"));
            }
            self.last_bad_at = Some(at);
        } else if status != Some(expected) {
            *self.errors.entry(error_kind(res)).or_default() += 1;
            self.last_bad_at = Some(at);
        }
    }

    /// Errors whose kind is not in `allowed` (e.g. a 5xx the fault does not explain).
    pub fn unexpected_errors(&self, allowed: &[&str]) -> BTreeMap<String, u64> {
        self.errors
            .iter()
            .filter(|(kind, _)| !allowed.iter().any(|a| kind.starts_with(a)))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// The tokens the load sends, by class (shared with the threads, so classes can change).
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    pub valid: Vec<String>,
    pub invalid: Vec<String>,
    pub revoked: Vec<String>,
}

impl Tokens {
    /// Round robin over the classes (a class with no token is skipped).
    fn pick(&self, n: usize) -> Option<(Class, String)> {
        let classes = [
            (Class::Valid, &self.valid),
            (Class::Invalid, &self.invalid),
            (Class::Revoked, &self.revoked),
        ];
        (0..3)
            .map(|i| classes[(n + i) % 3])
            .find(|(_, list)| !list.is_empty())
            .and_then(|(class, list)| list.get((n / 3) % list.len()).map(|t| (class, t.clone())))
    }
}

/// Running load; stopped (and its threads joined) by [`Load::finish`] or when dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    tokens: Arc<Mutex<Tokens>>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

/// Pause between two requests of one thread: the machine has 2 cores that Envoy, the IDP and the
/// test share; the load is there to be in flight when the fault strikes, not to saturate.
const PAUSE: Duration = Duration::from_millis(2);

impl Load {
    /// Starts `threads` threads sending `GET {gateway}{path}` with the tokens, round robin
    /// over the classes.
    pub fn start(gateway: &str, path: &str, tokens: Tokens, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let tokens = Arc::new(Mutex::new(tokens));
        let url = format!("{gateway}{path}");
        let threads = (0..threads)
            .map(|seed| {
                let (stop, tally, tokens, url) = (
                    Arc::clone(&stop),
                    Arc::clone(&tally),
                    Arc::clone(&tokens),
                    url.clone(),
                );
                std::thread::spawn(move || run(&url, seed, &stop, &tally, &tokens))
            })
            .collect();
        Load {
            stop,
            tally,
            tokens,
            threads,
            started: Instant::now(),
        }
    }

    /// What was seen so far.
    pub fn tally(&self) -> Tally {
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From now on, `token` is sent as a token of `class` (e.g. a token revoked during an outage,
    /// once the test has seen the gateway refuse it).
    pub fn add(&self, class: Class, token: String) {
        let mut guard = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let tokens = &mut *guard;
        for list in [&mut tokens.valid, &mut tokens.invalid, &mut tokens.revoked] {
            list.retain(|t| *t != token);
        }
        match class {
            Class::Valid => tokens.valid.push(token),
            Class::Invalid => tokens.invalid.push(token),
            Class::Revoked => tokens.revoked.push(token),
        }
    }

    /// Stops the threads and returns the final tally and how long the load ran.
    pub fn finish(mut self) -> (Tally, Duration) {
        self.stop_threads();
        (self.tally(), self.started.elapsed())
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn run(url: &str, seed: usize, stop: &AtomicBool, tally: &Mutex<Tally>, tokens: &Mutex<Tokens>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let picked = tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pick(n);
        let Some((class, token)) = picked else {
            std::thread::sleep(PAUSE);
            continue;
        };
        let res = client::collect(
            agent
                .get(url)
                .header("authorization", &format!("Bearer {token}"))
                .call(),
        );
        tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(class, &res, Instant::now());
        std::thread::sleep(PAUSE);
    }
}

/// The answer to a logout through the gateway: status and the steps it names as failed.
#[derive(Debug, Clone)]
pub struct LogoutAnswer {
    pub status: u16,
    pub failed_steps: Vec<String>,
    pub body: String,
}

/// `POST {gateway}/oauth2/logout` with `token`.
pub fn logout(gateway: &str, token: &str) -> Result<LogoutAnswer, String> {
    let auth = format!("Bearer {token}");
    let res = client::post_form(
        &format!("{gateway}/oauth2/logout"),
        &[("authorization", auth.as_str())],
        &[],
    )?;
    let failed_steps = serde_json::from_str::<serde_json::Value>(&res.body)
        .ok()
        .and_then(|v| {
            v["failed_steps"].as_array().map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| s["step"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    Ok(LogoutAnswer {
        status: res.status,
        failed_steps,
        body: res.body,
    })
}

/// One fault's figures, as RELIABILITY.md reports them.
#[derive(Debug, Clone)]
pub struct FaultReport {
    pub fault: String,
    pub tally: Tally,
    pub ran_for: Duration,
    /// Logouts and writes tried while the fault lasted, and how they were answered.
    pub during: BTreeMap<String, u64>,
    /// Fault end → first correct answer of what the fault broke (named).
    pub recovery: Vec<(String, Duration)>,
}

impl FaultReport {
    /// Prints the report's line, then fails the test on any wrong answer, or on any error but
    /// the `allowed` kinds (prefixes of [`Tally::errors`]' keys; none: no error at all).
    pub fn check(&self, allowed: &[&str]) {
        println!("{}", self.line());
        assert_eq!(self.tally.wrong, 0, "{:?}", self.tally.wrong_examples);
        let unexpected = self.tally.unexpected_errors(allowed);
        assert!(unexpected.is_empty(), "{}", self.line());
    }

    /// One line per fault, printed by the tests (`--nocapture`) and copied into RELIABILITY.md.
    pub fn line(&self) -> String {
        let errors = if self.tally.errors.is_empty() {
            "none".to_owned()
        } else {
            join(&self.tally.errors)
        };
        let recovery = self
            .recovery
            .iter()
            .map(|(what, d)| format!("{what} {} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "fault report | {} | {} requests in {:.1} s ({}) | wrong {} | errors: {} | answers during the fault: {} | recovery: {}",
            self.fault,
            self.tally.sent,
            self.ran_for.as_secs_f64(),
            join(&self.tally.sent_by_class),
            self.tally.wrong,
            errors,
            if self.during.is_empty() {
                "none".to_owned()
            } else {
                join(&self.during)
            },
            if recovery.is_empty() {
                "n/a".to_owned()
            } else {
                recovery
            },
        )
    }
}

fn join(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Polls `probe` every 20 ms until it says yes; returns how long that took, or `Err` after
/// `limit`.
pub fn time_until(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if probe() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(format!("{what}: not within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, Tally};
    use crate::client::Response;
    use std::time::Instant;

    fn answer(status: u16, body: &str) -> Result<Response, String> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        })
    }

    #[test]
    fn wrong_answers_and_errors_are_told_apart() {
        let mut tally = Tally::default();
        let now = Instant::now();
        tally.record(Class::Valid, &answer(200, ""), now);
        tally.record(Class::Revoked, &answer(401, ""), now);
        assert_eq!((tally.wrong, tally.errors.len()), (0, 0));
        tally.record(Class::Revoked, &answer(200, ""), now);
        tally.record(Class::Invalid, &answer(200, ""), now);
        tally.record(Class::Valid, &answer(401, ""), now);
        assert_eq!(tally.wrong, 3);
        let no_keys = "token keys are not available yet; try again shortly\n";
        tally.record(Class::Valid, &answer(503, no_keys), now);
        let not_loaded = "revoked tokens are not loaded yet; try again shortly\n";
        tally.record(Class::Revoked, &answer(503, not_loaded), now);
        tally.record(Class::Revoked, &answer(503, "upstream connect error"), now);
        tally.record(Class::Valid, &Err("connection refused".to_owned()), now);
        assert_eq!(tally.wrong, 3);
        assert_eq!(tally.sent, 9);
        assert_eq!(
            tally
                .unexpected_errors(&["503 no keys", "503 revocations not loaded"])
                .keys()
                .collect::<Vec<_>>(),
            [
                "503 upstream unreachable (Envoy)",
                "transport: connection failed"
            ]
        );
    }
}
