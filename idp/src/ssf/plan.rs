//! Which signed tokens one stored [`SecurityEvent`] becomes, for [`EventStore::fan_out`]:
//! - a `session-revoked` SET for every stream that asked for it, and a logout token for the
//!   session's client if it registered a `backchannel_logout_uri`;
//! - a `token-revoked` SET for every stream that asked for it.
//!
//! A token that cannot be signed (no active key: never expected) is logged and skipped, so one
//! bad event does not hold up the others.
//!
//! [`EventStore::fan_out`]: crate::store::events::EventStore::fan_out

use super::set::{self, SESSION_REVOKED, TOKEN_REVOKED};
use super::stream::{audience, config_of};
use crate::backchannel_sender;
use crate::oauth::keys::{KeyError, KeyRing};
use crate::settings::Settings;
use crate::store::events::{EventKind, NewDelivery, SecurityEvent, StreamRecord, Target};
use serde_json::Value;

/// The claims of one SET for a stream audience (`None`: the event lacks what it needs).
type ClaimsFor<'a> = Box<dyn Fn(&str) -> Option<Value> + 'a>;

fn signed(target: Target, result: Result<(String, String), KeyError>, out: &mut Vec<NewDelivery>) {
    match result {
        Ok((jti, token)) => out.push(NewDelivery { target, jti, token }),
        Err(e) => tracing::error!(error = %e, "signing an event token failed; event skipped"),
    }
}

/// The deliveries of `event` at `now`.
pub fn deliveries(
    settings: &Settings,
    keys: &KeyRing,
    event: &SecurityEvent,
    streams: &[StreamRecord],
    now: i64,
) -> Vec<NewDelivery> {
    let issuer = &settings.issuer;
    let mut out = Vec::new();
    let (event_type, claims_for): (&str, ClaimsFor<'_>) = match event.kind {
        EventKind::SessionRevoked => (
            SESSION_REVOKED,
            Box::new(|aud: &str| {
                let sid = event.sid.as_deref()?;
                Some(set::session_revoked(
                    issuer,
                    aud,
                    now,
                    sid,
                    &event.sub,
                    event.occurred_at,
                ))
            }),
        ),
        EventKind::TokenRevoked => (
            TOKEN_REVOKED,
            Box::new(|aud: &str| {
                let jti = event.jti.as_deref()?;
                Some(set::token_revoked(issuer, aud, now, jti, event.occurred_at))
            }),
        ),
    };
    for stream in streams {
        let Some(config) = config_of(stream) else {
            continue;
        };
        if !config.delivers(event_type) {
            continue;
        }
        if let Some(claims) = claims_for(audience(stream)) {
            signed(
                Target::Stream(stream.stream_id.clone()),
                set::sign(keys, &claims),
                &mut out,
            );
        }
    }
    if event.kind == EventKind::SessionRevoked
        && let Some(sid) = &event.sid
        && let Some(client) = settings.client(&event.client_id)
        && client.backchannel_logout_uri.is_some()
    {
        let claims = backchannel_sender::claims(
            issuer,
            &client.id,
            &event.sub,
            sid,
            now,
            settings.backchannel_logout.token_ttl_seconds,
        );
        signed(
            Target::Client(client.id.clone()),
            backchannel_sender::sign(keys, &claims),
            &mut out,
        );
    }
    out
}
