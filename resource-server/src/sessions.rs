//! Per-session state of the demo resource server: the sessions it has seen (by `sid`, from the
//! gateway's `x-auth-sid` header), and the ones the gateway told it to end at logout.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// What the server keeps per session (a stand-in for a real app's cart, cache or websocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub sub: Option<String>,
    pub requests: u64,
}

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: HashMap<String, Session>,
    ended: HashSet<String>,
}

/// Caps keep the demo's memory bounded whatever clients send.
const MAX_SESSIONS: usize = 100_000;

impl Sessions {
    /// Records a request of session `sid`. `false` when that session was ended (logged out).
    pub fn touch(&self, sid: &str, sub: Option<&str>) -> bool {
        let Ok(mut s) = self.inner.lock() else {
            return false;
        };
        if s.ended.contains(sid) {
            return false;
        }
        if !s.live.contains_key(sid) && s.live.len() >= MAX_SESSIONS {
            return true; // serve, but do not track more
        }
        let entry = s.live.entry(sid.to_owned()).or_insert(Session {
            sub: sub.map(str::to_owned),
            requests: 0,
        });
        entry.requests += 1;
        true
    }

    pub fn get(&self, sid: &str) -> Option<Session> {
        self.inner.lock().ok()?.live.get(sid).cloned()
    }

    /// Ends a session: its state is dropped and later requests of it are refused. Returns whether
    /// state existed.
    pub fn end(&self, sid: &str) -> bool {
        let Ok(mut s) = self.inner.lock() else {
            return false;
        };
        if s.ended.len() < MAX_SESSIONS {
            s.ended.insert(sid.to_owned());
        }
        s.live.remove(sid).is_some()
    }
}
