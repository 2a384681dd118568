//! Every IDP configuration the docs show is one the IDP accepts: each ```` ```toml ```` block of
//! docs/*.md marked `<!-- idp-settings -->` goes through the settings reader `idp serve` uses
//! (the file's shape, then every bound). `filter/tests/docs_configs.rs` refuses a TOML block of
//! the docs that carries no marker, so none escapes this test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use idp::settings::RawSettings;
use std::path::Path;

/// The `idp-settings` TOML blocks of `markdown`, with the line each starts on.
fn settings_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut marked = false;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match &mut current {
            None if trimmed == "```toml" && marked => current = Some((n + 1, String::new())),
            None => {}
            Some(_) if trimmed == "```" => out.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
        if !trimmed.is_empty() {
            marked = trimmed == "<!-- idp-settings -->";
        }
    }
    out
}

fn load(text: &str) -> Result<idp::settings::Settings, String> {
    RawSettings::from_toml(text)
        .and_then(|raw| raw.validate(&Default::default()))
        .map_err(|e| e.to_string())
}

#[test]
fn every_idp_configuration_in_the_docs_is_accepted() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut paths: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    paths.sort();
    let mut loaded = 0;
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, block) in settings_blocks(&text) {
            if let Err(e) = load(&block) {
                panic!(
                    "{}:{line}: refused by the IDP: {e}\n{block}",
                    path.display()
                );
            }
            loaded += 1;
        }
    }
    assert!(
        loaded >= 2,
        "only {loaded} IDP configurations found in docs/"
    );
}

#[test]
fn only_marked_blocks_are_read_and_a_bad_one_is_refused() {
    let text = "<!-- idp-settings -->\n```toml\naccess_token_ttl_seconds = 0\n```\n\n```toml\nx = 1\n```\n";
    let blocks = settings_blocks(text);
    assert_eq!(blocks, [(2, "access_token_ttl_seconds = 0\n".to_owned())]);
    assert!(
        load(&blocks[0].1)
            .unwrap_err()
            .contains("access_token_ttl_seconds")
    );
    assert!(load("no_such_key = 1\n").is_err());
    assert!(load("access_token_ttl_seconds = 300\n").is_ok());
}

/// The demo secrets docs/idp.md lists (its "demo configuration" table: `| \`id\` | \`secret\` |`)
/// are the ones `idp/idp.toml` stores the digests of, and alice's password is hers.
#[test]
fn the_demo_secrets_in_the_docs_are_those_of_the_demo_configuration() {
    use sha2::{Digest, Sha256};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let settings = load(&std::fs::read_to_string(root.join("idp.toml")).unwrap()).unwrap();
    let page = std::fs::read_to_string(root.join("../docs/idp.md")).unwrap();
    let section = page
        .split("\n## ")
        .find(|s| s.starts_with("The demo configuration"))
        .expect("docs/idp.md has a section \"The demo configuration\"");
    let mut checked = 0;
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(id), Some(secret)) = (
            cells
                .get(1)
                .and_then(|c| c.strip_prefix('`')?.strip_suffix('`')),
            cells
                .get(2)
                .and_then(|c| c.strip_prefix('`')?.strip_suffix('`')),
        ) else {
            continue;
        };
        let client = settings
            .client(id)
            .unwrap_or_else(|| panic!("docs/idp.md lists {id}, idp/idp.toml does not"));
        let stored = client.secret.as_ref().map(|h| h.0);
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert_eq!(stored, Some(digest), "{id}: the secret docs/idp.md gives");
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} demo secrets found in docs/idp.md"
    );
    assert!(section.contains("`alice` / `alice-password-123`"));
    let alice = settings.user("alice").expect("alice");
    let hash = argon2::PasswordHash::new(&alice.password_argon2).unwrap();
    use argon2::PasswordVerifier;
    assert!(
        argon2::Argon2::default()
            .verify_password(b"alice-password-123", &hash)
            .is_ok(),
        "alice's password in docs/idp.md"
    );
}
