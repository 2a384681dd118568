//! The `[federation]` settings: the example hub configuration loads, and mistakes are refused at
//! start with the field named.

#[test]
fn the_example_hub_configuration_loads() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hub.toml")).unwrap();
    let settings = idp::settings::RawSettings::from_toml(&text)
        .unwrap()
        .validate(&Default::default())
        .unwrap();
    assert!(settings.users.is_empty());
    assert!(settings.clients.iter().all(|c| c.gateway));
    let issuer = &settings.federation.issuers[0];
    assert_eq!(issuer.issuer, "http://127.0.0.1:3000");
    assert_eq!(issuer.keys, idp::settings::KeysFrom::Discovery);
    assert_eq!(issuer.backchannel_audiences, ["webapp"]);
    assert_eq!(issuer.max_token_lifetime_seconds, 3600);
    assert_eq!(
        settings.clients[0].federated_issuers,
        ["http://127.0.0.1:3000"]
    );
}

#[test]
fn bad_federation_settings_are_refused_with_the_field_named() {
    let gateway = r#"
[[clients]]
id = "gw"
secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;
    let issuer = r#"
[[federation.issuers]]
issuer = "http://127.0.0.1:3000"
jwks_uri = "http://127.0.0.1:3000/jwks"
max_token_lifetime_seconds = 3600
"#;
    for (text, field) in [
        (
            format!(
                "{issuer}{gateway}gateway = true\nfederated_issuers = [\"http://127.0.0.1:4000\"]\n"
            ),
            "clients[0].federated_issuers[0]",
        ),
        (
            format!("{issuer}{gateway}federated_issuers = [\"http://127.0.0.1:3000\"]\n"),
            "clients[0].federated_issuers",
        ),
        (
            format!("{issuer}discovery = true\n"),
            "federation.issuers[0].jwks_uri",
        ),
        (
            issuer.replace("http://127.0.0.1:3000\"\njwks", "ftp://x\"\njwks"),
            "federation.issuers[0].issuer",
        ),
        (
            format!("{issuer}algorithms = [\"HS256\"]\n"),
            "federation.issuers[0].algorithms[0]",
        ),
        (
            issuer.replace("3000\"\njwks", "9000\"\njwks"),
            "federation.issuers[0].issuer",
        ),
        (
            issuer.replace("= 3600", "= 0"),
            "federation.issuers[0].max_token_lifetime_seconds",
        ),
    ] {
        let e = idp::settings::RawSettings::from_toml(&text)
            .unwrap()
            .validate(&Default::default())
            .unwrap_err();
        assert_eq!(e.field, field, "{text}: {e}");
    }
}
