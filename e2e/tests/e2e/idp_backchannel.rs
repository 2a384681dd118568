//! Our IDP as the OpenID Provider of a gateway's back-channel logout receiver (issue 27): the
//! demo client registers the gateway's `/oauth2/backchannel-logout` as its
//! `backchannel_logout_uri`, the gateway (each module on real Envoy) accepts logout tokens for that
//! client, and a session ended at the IDP (RFC 7009 revocation of its token, not through the
//! gateway) makes the IDP's sender post a logout token that the gateway's receiver takes
//! (`backchannel_logout_ok`), the IDP counting it delivered; that session's token is refused.

use e2e::client;
use e2e::process::free_port;
use e2e::stack::start_resource_server;
use e2e::stack::{DEMO_CLIENT, Gateway, idp_config, password_login, start_idp_with_config};
use std::time::{Duration, Instant};

const ALGORITHMS: &str = r#""algorithms": ["ES256"],"#;
const REALM: &str = r#""realm": "gateway","#;

fn backchannel_logout_reaches(template: &str) {
    let _slot = crate::slot();
    let dir = tempfile::Builder::new()
        .prefix("oauth2gw-e2e-")
        .tempdir()
        .unwrap();
    let (_rs, rs_port) = start_resource_server(dir.path(), "resource-server", 0).unwrap();
    let idp_port = free_port().unwrap();
    let listen_port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let client = format!("id = \"{}\"\n", DEMO_CLIENT.0);
    let idp_toml = idp_config();
    assert!(idp_toml.contains(&client), "no {client:?} in idp.toml");
    let idp_toml = idp_toml.replacen(
        &client,
        &format!(
            "{client}backchannel_logout_uri = \"http://127.0.0.1:{listen_port}/oauth2/backchannel-logout\"\n"
        ),
        1,
    );
    let idp = start_idp_with_config(dir.path(), "idp", idp_port, &issuer, &idp_toml).unwrap();
    let path = e2e::artifacts::workspace_root()
        .join("envoy")
        .join(template);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(ALGORITHMS) && text.contains(REALM),
        "{template}"
    );
    let text = text
        .replacen(
            ALGORITHMS,
            &format!(
                r#"{ALGORITHMS} "backchannel_logout_audiences": ["{}"],"#,
                DEMO_CLIENT.0
            ),
            1,
        )
        .replacen(REALM, &format!(r#"{REALM} "backchannel_logout": {{}},"#), 1)
        .replace("${LISTEN_PORT}", &listen_port.to_string());
    let gateway =
        Gateway::start_text(&text, dir.path(), "envoy", (idp_port, rs_port), &issuer).unwrap();
    // Envoy listens where the IDP posts (the port written into the template above, not the
    // one `Gateway` picked for its placeholder).
    let gateway_url = format!("http://127.0.0.1:{listen_port}");

    let login = password_login(&idp.url).unwrap();
    let access = login["access_token"].as_str().unwrap();
    let auth = [("authorization", format!("Bearer {access}"))];
    let hello = || {
        client::get(
            &format!("{gateway_url}/api/hello"),
            &[("authorization", auth[0].1.as_str())],
        )
        .unwrap()
    };
    assert_eq!(hello().status, 200);
    let accepted_before = gateway
        .counter("oauth2gw.backchannel_logout_ok")
        .unwrap_or(0);

    // The session ends at the IDP itself; its sender posts the logout token to the gateway.
    let revoked = client::post_form(
        &format!("{}/oauth2/revoke", idp.url),
        &[],
        &[
            ("token", access),
            ("client_id", DEMO_CLIENT.0),
            ("client_secret", DEMO_CLIENT.1),
        ],
    )
    .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while gateway
        .counter("oauth2gw.backchannel_logout_ok")
        .unwrap_or(0)
        <= accepted_before
    {
        assert!(
            Instant::now() < deadline,
            "{template}: the gateway's receiver took no logout token within 20 s; refused: {:?}; IDP metrics:\n{}",
            gateway.counter("oauth2gw.backchannel_logout_refused"),
            client::get(&format!("{}/metrics", idp.url), &[])
                .map(|r| r.body)
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        gateway.counter("oauth2gw.backchannel_logout_refused"),
        Some(0),
        "{template}"
    );
    let res = hello();
    assert_eq!(res.status, 401, "{template}: {}", res.body);
    let metrics = client::get(&format!("{}/metrics", idp.url), &[])
        .unwrap()
        .body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("idp_event_deliveries_total")
                && l.contains("backchannel")
                && l.contains("delivered")),
        "the IDP counts the logout token delivered:\n{metrics}"
    );
}

#[test]
fn our_idps_logout_token_is_taken_by_the_wasm_gateway() {
    backchannel_logout_reaches("envoy.yaml");
}

#[test]
fn our_idps_logout_token_is_taken_by_the_native_gateway() {
    backchannel_logout_reaches("envoy-native.yaml");
}
