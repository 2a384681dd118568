//! Revocation, the revocation feed and introspection through the real router.

use super::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

#[tokio::test]
async fn revocation_feeds_the_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let feed = |since: Option<i64>, auth: String| {
        let path = since.map_or("/oauth2/revocations".to_owned(), |s| {
            format!("/oauth2/revocations?since={s}")
        });
        Request::get(path)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    let empty = send(&app, feed(None, basic(GATEWAY))).await;
    assert_eq!(
        empty.json,
        json!({"cursor": 0, "revoked": [], "more": false})
    );
    // only gateways may read it
    assert_eq!(
        send(&app, feed(None, basic(DEMO))).await.json["error"],
        "unauthorized_client"
    );
    assert_eq!(
        send(&app, feed(None, basic((GATEWAY.0, "bad"))))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, feed(Some(-1), basic(GATEWAY))).await.json["error"],
        "invalid_request"
    );

    let t1 = token(&app, None).await;
    let t2 = token(&app, None).await;
    // the owner revokes its own token; RFC 7009 answers 200 for garbage too
    assert_eq!(
        send(
            &app,
            form("/oauth2/revoke", Some(basic(DEMO)), &format!("token={t1}"))
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            form("/oauth2/revoke", Some(basic(DEMO)), "token=garbage")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            form(
                "/oauth2/revoke",
                Some(basic(DEMO)),
                &format!("token={t1}&token_type_hint=id_token")
            )
        )
        .await
        .status,
        StatusCode::OK,
        "an unknown hint is ignored (RFC 7009 §2.1)"
    );
    let page = send(&app, feed(None, basic(GATEWAY))).await.json;
    assert_eq!(page["revoked"].as_array().unwrap().len(), 1);
    assert_eq!(page["more"], false);
    let cursor = page["cursor"].as_i64().unwrap();
    // the gateway revokes another client's token
    send(
        &app,
        form(
            "/oauth2/revoke",
            Some(basic(GATEWAY)),
            &format!("token={t2}"),
        ),
    )
    .await;
    let next = send(&app, feed(Some(cursor), basic(GATEWAY))).await.json;
    assert_eq!(next["revoked"].as_array().unwrap().len(), 1, "{next}");
    assert!(next["cursor"].as_i64().unwrap() > cursor);
    // a repeated revocation adds nothing to the feed
    send(
        &app,
        form(
            "/oauth2/revoke",
            Some(basic(GATEWAY)),
            &format!("token={t2}"),
        ),
    )
    .await;
    let after = send(&app, feed(next["cursor"].as_i64(), basic(GATEWAY)))
        .await
        .json;
    assert_eq!(after["revoked"], json!([]));
    // introspection agrees
    for t in [&t1, &t2] {
        let r = send(
            &app,
            form(
                "/oauth2/introspect",
                Some(basic(GATEWAY)),
                &format!("token={t}"),
            ),
        )
        .await;
        assert_eq!(r.json, json!({"active": false}));
    }
}

/// A full page says more follow (`"more": true`), so a fresh gateway asks again before it counts
/// itself up to date; the page after it, not full, says `false`.
#[tokio::test]
async fn a_full_feed_page_says_more_follow() {
    use idp::http::routes::REVOCATIONS_PAGE as PAGE;
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut tx = state.store.begin().await.unwrap();
    for i in 0..=PAGE {
        tx.revoke_jti(&format!("jti-{i}"), now + 600, now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let app = idp::app(state);
    let feed = |query: String| {
        Request::get(format!("/oauth2/revocations{query}"))
            .header(header::AUTHORIZATION, basic(GATEWAY))
            .body(Body::empty())
            .unwrap()
    };
    let first = send(&app, feed(String::new())).await.json;
    assert_eq!(first["revoked"].as_array().unwrap().len() as i64, PAGE);
    assert_eq!(first["more"], true, "a full page");
    let cursor = first["cursor"].as_i64().unwrap();
    // `wait` does not hold a poll that has entries to give.
    let rest = send(&app, feed(format!("?since={cursor}&wait=5")))
        .await
        .json;
    assert_eq!(rest["revoked"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["more"], false);
    let end = rest["cursor"].as_i64().unwrap();
    let empty = send(&app, feed(format!("?since={end}"))).await.json;
    assert_eq!(empty, json!({"cursor": end, "revoked": [], "more": false}));
}

#[tokio::test]
async fn revoke_and_introspect_authenticate_the_client_first_and_ignore_unknown_hints() {
    // Conformance 10 and 11 (issue 20): parameters were checked before client authentication
    // (400 instead of 401 for a request without credentials), and revoke refused an unknown
    // token_type_hint that introspect ignored.
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    for path in ["/oauth2/revoke", "/oauth2/introspect"] {
        for body in ["", "token_type_hint=access_token"] {
            let r = send(&app, form(path, None, body)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} {body:?}");
            assert_eq!(r.json["error"], "invalid_client", "{path}");
            assert!(r.headers.contains_key(header::WWW_AUTHENTICATE), "{path}");
        }
        // an authenticated client without a token is a bad request
        let r = send(&app, form(path, Some(basic(GATEWAY)), "")).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{path}"
        );
    }
    let at = token(&app, None).await;
    let introspect = |hint: &str| {
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={at}&token_type_hint={hint}"),
        )
    };
    assert_eq!(send(&app, introspect("made_up")).await.json["active"], true);
    let r = send(
        &app,
        form(
            "/oauth2/revoke",
            Some(basic(DEMO)),
            &format!("token={at}&token_type_hint=made_up"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        send(&app, introspect("made_up")).await.json["active"],
        false,
        "revoked whatever the hint said"
    );
}
