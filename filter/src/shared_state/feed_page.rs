//! One page of the IDP's revocation feed: `{"cursor": C, "revoked": [{"jti"|"sid": .., "exp": ..}],
//! "more": false}`, parsed whole before anything is applied (a bad page changes nothing).
//!
//! A hub (the IDP in its federation role) also sends **cut-offs** for the issuers it federates:
//! `{"iss": I, "sid"|"sub": .., "cutoff": T, "exp": E}`: tokens of issuer I with that session (or
//! subject) issued at or before T are refused; E is when the entry may be forgotten (every such
//! token has expired). An entry with `iss` must have `cutoff` and exactly one of `sid`/`sub`.
//!
//! `more` is `true` when the IDP cut the page short (it serves a bounded number of entries per
//! page) and more entries follow the cursor already; an IDP that does not send it is taken to
//! have sent everything (`false`). A gateway is up to date once it has applied a page with
//! `more: false` (see [`crate::shared_state::feed_sync`]).

use crate::shared_state::denylist::{CutoffKind, IdKind};
use crate::shared_state::denylist_store::Revocation;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("revocation feed answer is not the expected JSON: {0}")]
    Shape(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// Where the next poll starts (opaque, from the IDP; safe in a URL).
    pub cursor: String,
    pub revocations: Vec<Revocation>,
    /// More entries follow this page (the IDP cut it short): poll again before counting the
    /// denylist as up to date.
    pub more: bool,
}

#[derive(Deserialize)]
struct RawPage {
    cursor: Value,
    revoked: Vec<RawEntry>,
    /// Absent for IDPs that do not send it: everything was sent.
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    cutoff: Option<u64>,
    exp: u64,
}

impl RawEntry {
    fn revocation(&self) -> Result<Revocation, FeedError> {
        fn named(id: &Option<String>) -> Option<&str> {
            id.as_deref().filter(|s| !s.is_empty())
        }
        let shape = |why: &str| Err(FeedError::Shape(why.into()));
        match (named(&self.iss), self.cutoff) {
            (Some(iss), Some(at)) => match (named(&self.sid), named(&self.sub)) {
                (Some(sid), None) => Ok(Revocation::cutoff(
                    CutoffKind::Session,
                    iss,
                    sid,
                    at,
                    self.exp,
                )),
                (None, Some(sub)) => Ok(Revocation::cutoff(
                    CutoffKind::Subject,
                    iss,
                    sub,
                    at,
                    self.exp,
                )),
                _ => shape("a cut-off names exactly one of sid and sub"),
            },
            (Some(_), None) => shape("an entry with iss has no cutoff"),
            (None, Some(_)) => shape("a cutoff without iss"),
            (None, None) => match (named(&self.jti), named(&self.sid)) {
                (Some(jti), _) => Ok(Revocation::new(IdKind::Jti, jti, self.exp)),
                (_, Some(sid)) => Ok(Revocation::new(IdKind::Sid, sid, self.exp)),
                _ => shape("an entry names neither jti nor sid"),
            },
        }
    }
}

impl FeedPage {
    pub fn parse(body: &[u8]) -> Result<FeedPage, FeedError> {
        let page: RawPage =
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
        let revocations = page
            .revoked
            .iter()
            .map(RawEntry::revocation)
            .collect::<Result<_, _>>()?;
        Ok(FeedPage {
            cursor,
            revocations,
            more: page.more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_or_are_refused_whole() {
        let page = FeedPage::parse(
            br#"{"cursor": 7, "revoked": [{"jti": "a", "exp": 1000}, {"sid": "s", "exp": 2000}]}"#,
        );
        assert_eq!(
            page,
            Ok(FeedPage {
                cursor: "7".into(),
                revocations: vec![
                    Revocation::new(IdKind::Jti, "a", 1000),
                    Revocation::new(IdKind::Sid, "s", 2000)
                ],
                more: false,
            })
        );
        for bad in [
            &br#"{"revoked": []}"#[..],
            br#"{"cursor": null, "revoked": []}"#,
            br#"{"cursor": "a b", "revoked": []}"#,
            br#"{"cursor": [1], "revoked": []}"#,
            br#"{"cursor": 1, "revoked": [{"exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"jti": "", "exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"jti": "x"}]}"#,
            br#"{"cursor": 1, "revoked": [], "more": "yes"}"#,
            br#"{"cursor": 1, "revoked": [], "more": null}"#,
            b"not json",
        ] {
            assert!(
                FeedPage::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cut_offs_parse_with_their_issuer_and_time_or_are_refused() {
        let page = FeedPage::parse(
            br#"{"cursor": 9, "revoked": [
                {"iss": "https://op", "sid": "s1", "cutoff": 1000, "exp": 4600},
                {"iss": "https://op", "sub": "alice", "cutoff": 1200, "exp": 4800}]}"#,
        );
        assert_eq!(
            page.map(|p| p.revocations),
            Ok(vec![
                Revocation::cutoff(CutoffKind::Session, "https://op", "s1", 1000, 4600),
                Revocation::cutoff(CutoffKind::Subject, "https://op", "alice", 1200, 4800),
            ])
        );
        for bad in [
            &br#"{"cursor": 1, "revoked": [{"iss": "i", "sid": "s", "exp": 5}]}"#[..],
            br#"{"cursor": 1, "revoked": [{"sid": "s", "cutoff": 3, "exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"iss": "i", "sid": "s", "sub": "u", "cutoff": 3, "exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"iss": "i", "cutoff": 3, "exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"iss": "i", "sub": "u", "cutoff": -3, "exp": 5}]}"#,
            br#"{"cursor": 1, "revoked": [{"iss": "i", "sub": "u", "cutoff": "3", "exp": 5}]}"#,
        ] {
            assert!(
                FeedPage::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn more_says_whether_the_page_was_cut_short_and_is_false_when_absent() {
        let more = |body: &[u8]| FeedPage::parse(body).map(|p| p.more);
        assert_eq!(
            more(br#"{"cursor": 3, "revoked": [], "more": true}"#),
            Ok(true)
        );
        assert_eq!(
            more(br#"{"cursor": 3, "revoked": [], "more": false}"#),
            Ok(false)
        );
        assert_eq!(more(br#"{"cursor": 3, "revoked": []}"#), Ok(false));
    }
}
