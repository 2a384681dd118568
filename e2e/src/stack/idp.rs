//! The IDP of the test stack: its configuration (the clients and user the tests use) and
//! starting it on a port and a SQLite database.

use super::{
    ALICE, ALICE_ARGON2, DEMO_CLIENT, GATEWAY_CLIENT, OTHER_CLIENT, SHORT_CLIENT, START_TIMEOUT,
    WEB_CLIENT, WEB_CLIENT_REDIRECT, sha256_hex,
};
use crate::artifacts;
use crate::process::Proc;
use std::path::Path;
use std::process::Command;

/// The IDP configuration of the test stack.
pub fn idp_config() -> String {
    let client = |(id, secret): (&str, &str), scopes: &str, aud: &str, extra: &str| {
        format!(
            "[[clients]]\nid = \"{id}\"\nsecret_sha256 = \"{}\"\nscopes = [{scopes}]\naudiences = [\"{aud}\"]\ngrant_types = [{grants}]\n{extra}\n",
            sha256_hex(secret),
            grants = if extra.contains("gateway") {
                ""
            } else if id == DEMO_CLIENT.0 {
                "\"client_credentials\", \"password\", \"refresh_token\""
            } else {
                "\"client_credentials\""
            },
        )
    };
    [
        "access_token_ttl_seconds = 300\n".to_owned(),
        client(DEMO_CLIENT, "\"read\", \"write\"", "demo-api", ""),
        client(OTHER_CLIENT, "\"read\"", "other-api", ""),
        client(
            SHORT_CLIENT,
            "\"read\"",
            "demo-api",
            "access_token_ttl_seconds = 1",
        ),
        client(GATEWAY_CLIENT, "", "idp", "gateway = true"),
        format!(
            "[[clients]]\nid = \"{}\"\nsecret_sha256 = \"{}\"\nscopes = [\"openid\", \"read\"]\naudiences = [\"demo-api\"]\ngrant_types = [\"authorization_code\", \"refresh_token\"]\nredirect_uris = [\"{WEB_CLIENT_REDIRECT}\"]\nskip_consent = true\n",
            WEB_CLIENT.0,
            sha256_hex(WEB_CLIENT.1)
        ),
        format!(
            "[[users]]\nusername = \"{}\"\npassword_argon2 = \"{ALICE_ARGON2}\"\n",
            ALICE.0
        ),
    ]
    .concat()
}

/// A started IDP.
pub struct Idp {
    pub proc: Proc,
    pub url: String,
}

/// Starts an IDP with its own database in `dir`, issuing as `issuer` (None: its own URL).
pub fn start_idp(dir: &Path, name: &str, port: u16, issuer: &str) -> Result<Idp, String> {
    start_idp_with_config(dir, name, port, issuer, &idp_config())
}

/// Starts an IDP as [`start_idp`] does, with the given TOML configuration.
pub fn start_idp_with_config(
    dir: &Path,
    name: &str,
    port: u16,
    issuer: &str,
    toml: &str,
) -> Result<Idp, String> {
    start_idp_on(
        dir,
        name,
        port,
        issuer,
        toml,
        &dir.join(format!("{name}.sqlite")),
    )
}

/// Starts an IDP as [`start_idp_with_config`] does, on the SQLite database file `database`
/// (e.g. the one of an IDP that was killed, or one on a small file system).
pub fn start_idp_on(
    dir: &Path,
    name: &str,
    port: u16,
    issuer: &str,
    toml: &str,
    database: &Path,
) -> Result<Idp, String> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(artifacts::idp_bin()?);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--issuer", issuer])
        .arg("--database")
        .arg(format!("sqlite://{}?mode=rwc", database.display()))
        .env("RUST_LOG", "info");
    let (proc, url) = Proc::start_until_line(name, cmd, dir, "idp listening on ", START_TIMEOUT)?;
    Ok(Idp { proc, url })
}
