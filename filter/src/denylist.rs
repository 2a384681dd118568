//! Revoked tokens (by `jti`) and ended sessions (by `sid`), learnt from the IDP's revocation feed
//! and from logouts through this gateway. Bounded: an entry is dropped once the tokens it names
//! have expired anyway (plus the largest leeway a provider may grant).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A hard cap on entries; above it the oldest-expiring are dropped first (and an error logged by
/// the glue). With entries dying at token expiry this is only reached under abuse.
pub const MAX_ENTRIES: usize = 200_000;
/// Entries outlive the token's `exp` by this much, since a provider may accept a token for up to
/// its leeway (at most 300 s) after `exp`.
pub const EXPIRY_MARGIN_SECONDS: u64 = 300;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denylist {
    /// The feed position this list is up to date with (opaque, from the IDP).
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    jti: BTreeMap<String, u64>,
    #[serde(default)]
    sid: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("revocation feed answer is not the expected JSON: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct FeedPage {
    cursor: Value,
    revoked: Vec<FeedEntry>,
}

#[derive(Deserialize)]
struct FeedEntry {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    exp: u64,
}

impl Denylist {
    pub fn is_revoked(&self, jti: Option<&str>, sid: Option<&str>) -> bool {
        jti.is_some_and(|j| self.jti.contains_key(j))
            || sid.is_some_and(|s| self.sid.contains_key(s))
    }

    pub fn len(&self) -> usize {
        self.jti.len() + self.sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn revoke_jti(&mut self, jti: &str, exp: u64) {
        let e = self.jti.entry(jti.to_owned()).or_insert(exp);
        *e = (*e).max(exp);
    }

    pub fn revoke_sid(&mut self, sid: &str, exp: u64) {
        let e = self.sid.entry(sid.to_owned()).or_insert(exp);
        *e = (*e).max(exp);
    }

    /// Applies one page of the feed (`{"cursor": C, "revoked": [{"jti"|"sid": .., "exp": ..}]}`)
    /// and moves the cursor. Returns how many entries it named.
    pub fn apply_feed(&mut self, body: &[u8], now: u64) -> Result<usize, FeedError> {
        let page: FeedPage =
            serde_json::from_slice(body).map_err(|e| FeedError::Shape(e.to_string()))?;
        let cursor = match page.cursor {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Null => return Err(FeedError::Shape("cursor is null".into())),
            other => {
                return Err(FeedError::Shape(format!(
                    "cursor {other} is not a string or number"
                )));
            }
        };
        if !cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            return Err(FeedError::Shape(
                "cursor has characters unsafe in a URL".into(),
            ));
        }
        let count = page.revoked.len();
        for entry in page.revoked {
            match (entry.jti, entry.sid) {
                (Some(jti), _) if !jti.is_empty() => self.revoke_jti(&jti, entry.exp),
                (_, Some(sid)) if !sid.is_empty() => self.revoke_sid(&sid, entry.exp),
                _ => {
                    return Err(FeedError::Shape(
                        "an entry names neither jti nor sid".into(),
                    ));
                }
            }
        }
        self.cursor = Some(cursor);
        self.prune(now);
        Ok(count)
    }

    /// Drops entries whose tokens are expired beyond any leeway, and enforces [`MAX_ENTRIES`].
    /// Returns how many were dropped because of the cap (0 normally).
    pub fn prune(&mut self, now: u64) -> usize {
        let alive = |exp: &u64| exp.saturating_add(EXPIRY_MARGIN_SECONDS) > now;
        self.jti.retain(|_, exp| alive(exp));
        self.sid.retain(|_, exp| alive(exp));
        let mut over = self.len().saturating_sub(MAX_ENTRIES);
        let dropped = over;
        while over > 0 {
            let oldest_jti = self
                .jti
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, e)| (k.clone(), *e));
            let oldest_sid = self
                .sid
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, e)| (k.clone(), *e));
            match (oldest_jti, oldest_sid) {
                (Some((j, je)), Some((_, se))) if je <= se => self.jti.remove(&j),
                (_, Some((s, _))) => self.sid.remove(&s),
                (Some((j, _)), None) => self.jti.remove(&j),
                (None, None) => break,
            };
            over -= 1;
        }
        dropped
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A corrupt shared copy reads as empty with no cursor: the next poll starts over.
    pub fn decode(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// Merges another list (a concurrent writer's) into this one.
    pub fn merge(&mut self, other: &Denylist) {
        for (k, e) in &other.jti {
            self.revoke_jti(k, *e);
        }
        for (k, e) in &other.sid {
            self.revoke_sid(k, *e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_pages_add_entries_and_move_the_cursor() {
        let mut d = Denylist::default();
        let page =
            br#"{"cursor": 7, "revoked": [{"jti": "a", "exp": 1000}, {"sid": "s", "exp": 2000}]}"#;
        assert_eq!(d.apply_feed(page, 500), Ok(2));
        assert_eq!(d.cursor.as_deref(), Some("7"));
        assert!(d.is_revoked(Some("a"), None));
        assert!(d.is_revoked(Some("other"), Some("s")));
        assert!(!d.is_revoked(Some("b"), Some("t")));
        assert!(!d.is_revoked(None, None));
    }

    #[test]
    fn entries_die_after_expiry_plus_margin() {
        let mut d = Denylist::default();
        d.revoke_jti("a", 1000);
        d.revoke_sid("s", 5000);
        d.prune(1000 + EXPIRY_MARGIN_SECONDS - 1);
        assert!(d.is_revoked(Some("a"), None));
        d.prune(1000 + EXPIRY_MARGIN_SECONDS);
        assert!(!d.is_revoked(Some("a"), None));
        assert!(d.is_revoked(None, Some("s")));
    }

    #[test]
    fn bad_pages_change_nothing() {
        let mut d = Denylist::default();
        d.revoke_jti("keep", 10_000);
        let before = d.clone();
        for bad in [
            &br#"{"revoked": []}"#[..],
            br#"{"cursor": null, "revoked": []}"#,
            br#"{"cursor": "a b", "revoked": []}"#,
            br#"{"cursor": 1, "revoked": [{"exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"jti": "x"}]}"#,
            b"not json",
        ] {
            assert!(d.apply_feed(bad, 0).is_err());
            assert_eq!(d, before);
        }
    }

    #[test]
    fn roundtrip_merge_and_corruption() {
        let mut a = Denylist::default();
        a.revoke_jti("a", 10);
        a.cursor = Some("3".into());
        let decoded = Denylist::decode(&a.encode());
        assert_eq!(decoded, a);
        let mut b = Denylist::default();
        b.revoke_sid("s", 20);
        b.merge(&a);
        assert!(b.is_revoked(Some("a"), None) && b.is_revoked(None, Some("s")));
        assert_eq!(Denylist::decode(b"garbage"), Denylist::default());
    }

    #[test]
    fn the_cap_drops_the_soonest_expiring_first() {
        let mut d = Denylist::default();
        for i in 0..(MAX_ENTRIES as u64 + 3) {
            d.revoke_jti(&format!("j{i}"), 1_000_000 + i);
        }
        assert_eq!(d.prune(0), 3);
        assert_eq!(d.len(), MAX_ENTRIES);
        assert!(!d.is_revoked(Some("j0"), None));
        assert!(d.is_revoked(Some(&format!("j{}", MAX_ENTRIES as u64 + 2)), None));
    }
}
