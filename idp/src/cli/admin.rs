//! `idp client add` and `idp user add`: edit the configuration file in place (comments and
//! layout kept, through `toml_edit`), refusing any change that would make it invalid. Secrets
//! and passwords arrive on stdin and are stored only as digests; nothing here prints them.

use crate::settings::{MIN_SECRET_LEN, Overrides, RawSettings, SettingsError};
use sha2::Digest;
use std::path::{Path, PathBuf};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

/// Why a configuration edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The file, or the file with the change, would not load.
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    #[error("configuration: {0}")]
    Toml(#[from] toml_edit::TomlError),
    #[error("{0} must be an array of tables ([[{0}]])")]
    NotTables(String),
    /// The change itself is refused (a duplicate, a short secret or password).
    #[error("{0}")]
    Refused(String),
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A client to add.
#[derive(Debug, Default, Clone)]
pub struct NewClient {
    pub id: String,
    /// `None`: a public client.
    pub secret: Option<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub skip_consent: bool,
    /// `dpop_bound_access_tokens`: every token request needs a DPoP proof.
    pub dpop_bound_access_tokens: bool,
}

/// A user to add.
#[derive(Debug, Default, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

fn strings(values: &[String]) -> Array {
    values.iter().map(String::as_str).collect()
}

fn tables<'a>(doc: &'a mut DocumentMut, key: &str) -> Result<&'a mut ArrayOfTables, AdminError> {
    if !doc.contains_key(key) {
        doc.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc[key]
        .as_array_of_tables_mut()
        .ok_or_else(|| AdminError::NotTables(key.to_owned()))
}

/// The configuration checked as the server would load it.
fn check(text: &str) -> Result<(), AdminError> {
    RawSettings::from_toml(text)?.validate(&Overrides::default())?;
    Ok(())
}

/// `text` with `client` added; an error if it exists or the result would not be valid.
pub fn add_client(text: &str, client: &NewClient) -> Result<String, AdminError> {
    check(text)?;
    let mut doc: DocumentMut = text.parse()?;
    let clients = tables(&mut doc, "clients")?;
    if clients
        .iter()
        .any(|t| t.get("id").and_then(Item::as_str) == Some(client.id.as_str()))
    {
        return Err(AdminError::Refused(format!(
            "client {:?} exists already",
            client.id
        )));
    }
    let mut t = Table::new();
    t.insert("id", value(client.id.as_str()));
    if let Some(secret) = &client.secret {
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(AdminError::Refused(format!(
                "client secrets must be at least {MIN_SECRET_LEN} characters"
            )));
        }
        let digest = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
        t.insert("secret_sha256", value(digest));
    }
    t.insert("scopes", value(strings(&client.scopes)));
    t.insert("audiences", value(strings(&client.audiences)));
    t.insert("grant_types", value(strings(&client.grant_types)));
    if !client.redirect_uris.is_empty() {
        t.insert("redirect_uris", value(strings(&client.redirect_uris)));
    }
    if client.skip_consent {
        t.insert("skip_consent", value(true));
    }
    if client.dpop_bound_access_tokens {
        t.insert("dpop_bound_access_tokens", value(true));
    }
    clients.push(t);
    let out = doc.to_string();
    check(&out)?;
    Ok(out)
}

/// `text` with `user` added (password hashed with argon2id); an error if the username exists or
/// the result would not be valid.
pub fn add_user(text: &str, user: &NewUser) -> Result<String, AdminError> {
    use argon2::PasswordHasher;
    check(text)?;
    if user.password.chars().count() < 8 {
        return Err(AdminError::Refused(
            "passwords must be at least 8 characters".into(),
        ));
    }
    let mut doc: DocumentMut = text.parse()?;
    let users = tables(&mut doc, "users")?;
    if users
        .iter()
        .any(|t| t.get("username").and_then(Item::as_str) == Some(user.username.as_str()))
    {
        return Err(AdminError::Refused(format!(
            "user {:?} exists already",
            user.username
        )));
    }
    let hash = argon2::Argon2::default()
        .hash_password(user.password.as_bytes())
        .map_err(|e| AdminError::Hash(e.to_string()))?;
    let mut t = Table::new();
    t.insert("username", value(user.username.as_str()));
    t.insert("password_argon2", value(hash.to_string()));
    if let Some(name) = &user.name {
        t.insert("name", value(name.as_str()));
    }
    if let Some(email) = &user.email {
        t.insert("email", value(email.as_str()));
    }
    users.push(t);
    let out = doc.to_string();
    check(&out)?;
    Ok(out)
}

/// Replaces `path` with `text` atomically (a sibling temporary file renamed over it), so a
/// crash never leaves a half-written configuration.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), AdminError> {
    let io = |source| AdminError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).map_err(io)?;
    std::fs::write(tmp.path(), text).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# the demo\nissuer = \"http://127.0.0.1:9000\"\n\n[[clients]]\nid = \"a\" # first\nsecret_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";

    fn client(id: &str) -> NewClient {
        NewClient {
            id: id.into(),
            secret: Some("s".repeat(32)),
            scopes: vec!["read".into()],
            audiences: vec!["api".into()],
            grant_types: vec!["client_credentials".into()],
            ..NewClient::default()
        }
    }

    #[test]
    fn adds_a_client_keeping_comments_and_storing_only_the_digest() {
        let out = add_client(BASE, &client("b")).unwrap();
        assert!(out.starts_with("# the demo\n") && out.contains("id = \"a\" # first"));
        assert!(
            !out.contains(&"s".repeat(32)),
            "the secret itself is never written"
        );
        let s = RawSettings::from_toml(&out)
            .unwrap()
            .validate(&Overrides::default())
            .unwrap();
        assert_eq!(s.client("b").unwrap().scopes, ["read"]);
        assert!(!s.client("b").unwrap().dpop_bound_access_tokens);
        let dpop = NewClient {
            dpop_bound_access_tokens: true,
            ..client("c")
        };
        let s = RawSettings::from_toml(&add_client(&out, &dpop).unwrap())
            .unwrap()
            .validate(&Overrides::default())
            .unwrap();
        assert!(s.client("c").unwrap().dpop_bound_access_tokens);
    }

    #[test]
    fn refuses_duplicates_short_secrets_and_invalid_results() {
        assert!(
            add_client(BASE, &client("a"))
                .unwrap_err()
                .to_string()
                .contains("exists")
        );
        let mut short = client("c");
        short.secret = Some("short".into());
        assert!(add_client(BASE, &short).is_err());
        let mut public_cc = client("d");
        public_cc.secret = None;
        let e = add_client(BASE, &public_cc).unwrap_err().to_string();
        assert!(e.contains("clients[1].grant_types"), "{e}");
        let mut bad_uri = client("e");
        bad_uri.grant_types = vec!["authorization_code".into()];
        bad_uri.redirect_uris = vec!["http://evil.example/cb".into()];
        assert!(
            add_client(BASE, &bad_uri)
                .unwrap_err()
                .to_string()
                .contains("redirect_uris")
        );
    }

    #[test]
    fn adds_a_user_with_an_argon2_hash() {
        let user = NewUser {
            username: "bob".into(),
            password: "bob-password-123".into(),
            name: Some("Bob".into()),
            email: None,
        };
        let out = add_user(BASE, &user).unwrap();
        assert!(!out.contains("bob-password-123"));
        let s = RawSettings::from_toml(&out)
            .unwrap()
            .validate(&Overrides::default())
            .unwrap();
        let bob = s.user("bob").unwrap();
        assert!(bob.password_argon2.starts_with("$argon2id$"));
        assert!(
            add_user(&out, &user)
                .unwrap_err()
                .to_string()
                .contains("exists")
        );
        let weak = NewUser {
            username: "carol".into(),
            password: "short".into(),
            ..NewUser::default()
        };
        assert!(add_user(BASE, &weak).is_err());
    }

    #[test]
    fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idp.toml");
        std::fs::write(&path, BASE).unwrap();
        write_atomically(&path, "issuer = \"http://127.0.0.1:1\"\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "issuer = \"http://127.0.0.1:1\"\n"
        );
    }
}
