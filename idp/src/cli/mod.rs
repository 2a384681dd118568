//! The `idp` command: `serve`, managing clients and users in the configuration file, hashing
//! secrets and passwords, rotating signing keys.

pub mod admin;
pub mod end_sessions;

use crate::http::state::StartError;
use crate::settings::{MIN_SECRET_LEN, Overrides, RawSettings, Settings, SettingsError};
use admin::AdminError;
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// OAuth 2.0 authorization server of the oauth2 gateway.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML configuration file.
        #[arg(long, default_value = "idp/idp.toml")]
        config: PathBuf,
        /// Address to listen on (overrides the file).
        #[arg(long, env = "IDP_LISTEN")]
        listen: Option<String>,
        /// Database URL, e.g. sqlite://.data/idp.sqlite?mode=rwc (overrides the file).
        #[arg(long, env = "IDP_DATABASE")]
        database: Option<String>,
        /// Issuer URL put in tokens and discovery (overrides the file).
        #[arg(long, env = "IDP_ISSUER")]
        issuer: Option<String>,
        /// Largest request body in bytes (overrides http.max_body_bytes; default 65536).
        #[arg(long, env = "IDP_MAX_BODY_BYTES")]
        max_body_bytes: Option<u64>,
        /// Largest sum of request header names and values in bytes (overrides
        /// http.max_header_bytes; default 16384).
        #[arg(long, env = "IDP_MAX_HEADER_BYTES")]
        max_header_bytes: Option<u64>,
        /// Most request header fields (overrides http.max_headers; default 64).
        #[arg(long, env = "IDP_MAX_HEADERS")]
        max_headers: Option<u64>,
    },
    /// Manage clients in the configuration file (restart the server to load the change).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users in the configuration file (restart the server to load the change).
    #[command(subcommand)]
    User(UserCommand),
    /// Read a client secret on stdin and print the secret_sha256 value for the configuration.
    HashSecret,
    /// Read a user password on stdin and print the password_argon2 value for the configuration.
    HashPassword,
    /// Start a signing-key rotation: the new key is published at once (the running server picks
    /// it up within a second) and signs after --publish-seconds.
    RotateKey {
        #[arg(long, default_value = "idp/idp.toml")]
        config: PathBuf,
        #[arg(long, env = "IDP_DATABASE")]
        database: Option<String>,
        /// How long the new key is published before it signs; longer than the gateways' JWKS
        /// refresh interval.
        #[arg(long, default_value_t = 600)]
        publish_seconds: u32,
        /// The new key's algorithm (ES256, RS256, EdDSA); default: signing_algorithm of the
        /// configuration.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// End a user's token sessions (all of them with --sub, one with --sid) as a logout does;
    /// the running server sends the SSF session-revoked SETs and back-channel logout tokens.
    EndSessions {
        #[arg(long, default_value = "idp/idp.toml")]
        config: PathBuf,
        #[arg(long, env = "IDP_DATABASE")]
        database: Option<String>,
        /// The subject whose every live session ends.
        #[arg(long, conflicts_with = "sid", required_unless_present = "sid")]
        sub: Option<String>,
        /// The one session (`sid`) to end.
        #[arg(long)]
        sid: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add a client; its secret is read on stdin (at least 32 characters) unless --public.
    Add {
        #[arg(long, default_value = "idp/idp.toml")]
        config: PathBuf,
        #[arg(long)]
        id: String,
        /// A public client (no secret; authorization code with PKCE, implicit).
        #[arg(long)]
        public: bool,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// authorization_code, client_credentials, password, refresh_token, implicit.
        #[arg(long = "grant")]
        grant_types: Vec<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A first-party client: no consent page.
        #[arg(long)]
        skip_consent: bool,
        /// Every token request must carry a DPoP proof (RFC 9449); its tokens are DPoP-bound.
        #[arg(long)]
        dpop_bound: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read on stdin (at least 8 characters).
    Add {
        #[arg(long, default_value = "idp/idp.toml")]
        config: PathBuf,
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
}

/// Why a command failed (printed as `idp: …`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read stdin: {0}")]
    Stdin(std::io::Error),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Config {
        path: PathBuf,
        source: SettingsError,
    },
    #[error("{}: {source}", path.display())]
    Edit { path: PathBuf, source: AdminError },
    #[error("{0}")]
    Usage(&'static str),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Rotate(#[from] RotateError),
    #[error(transparent)]
    EndSessions(#[from] end_sessions::EndSessionsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// One line of stdin without its line ending (a secret or a password; never echoed).
fn read_stdin_secret() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(CliError::Stdin)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn edit_config(
    config: &std::path::Path,
    edit: impl FnOnce(&str) -> Result<String, AdminError>,
) -> Result<(), CliError> {
    let failed = |source| CliError::Edit {
        path: config.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(config).map_err(|source| CliError::Read {
        path: config.to_owned(),
        source,
    })?;
    let out = edit(&text).map_err(failed)?;
    admin::write_atomically(config, &out).map_err(failed)
}

/// The settings of the file `config` with `overrides`.
fn load_settings(config: &std::path::Path, overrides: &Overrides) -> Result<Settings, CliError> {
    let text = std::fs::read_to_string(config).map_err(|source| CliError::Read {
        path: config.to_owned(),
        source,
    })?;
    RawSettings::from_toml(&text)
        .and_then(|raw| raw.validate(overrides))
        .map_err(|source| CliError::Config {
            path: config.to_owned(),
            source,
        })
}

fn client_command(command: ClientCommand) -> Result<String, CliError> {
    match command {
        ClientCommand::Add {
            config,
            id,
            public,
            scopes,
            audiences,
            grant_types,
            redirect_uris,
            skip_consent,
            dpop_bound,
        } => {
            let secret = if public {
                None
            } else {
                Some(read_stdin_secret()?)
            };
            let client = admin::NewClient {
                id: id.clone(),
                secret,
                scopes,
                audiences,
                grant_types,
                redirect_uris,
                skip_consent,
                dpop_bound_access_tokens: dpop_bound,
            };
            edit_config(&config, |text| admin::add_client(text, &client))?;
            Ok(format!(
                "client {id:?} added to {} (restart the IDP to load it)",
                config.display()
            ))
        }
    }
}

fn user_command(command: UserCommand) -> Result<String, CliError> {
    match command {
        UserCommand::Add {
            config,
            username,
            name,
            email,
        } => {
            let user = admin::NewUser {
                username: username.clone(),
                password: read_stdin_secret()?,
                name,
                email,
            };
            edit_config(&config, |text| admin::add_user(text, &user))?;
            Ok(format!(
                "user {username:?} added to {} (restart the IDP to load it)",
                config.display()
            ))
        }
    }
}

fn rotate_key_command(
    config: &std::path::Path,
    overrides: &Overrides,
    algorithm: Option<&str>,
    publish_seconds: u32,
) -> Result<String, CliError> {
    let settings = load_settings(config, overrides)?;
    let alg = match algorithm {
        None => settings.signing_algorithm,
        Some(a) => crate::settings::SigningAlg::parse(a)
            .ok_or(CliError::Usage("--algorithm must be ES256, RS256 or EdDSA"))?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let kid = runtime.block_on(rotate_key(&settings, alg, i64::from(publish_seconds)))?;
    Ok(format!(
        "new key {kid} published; it signs in {publish_seconds} s"
    ))
}

fn end_sessions_command(
    config: &std::path::Path,
    overrides: &Overrides,
    sub: Option<String>,
    sid: Option<String>,
) -> Result<String, CliError> {
    let settings = load_settings(config, overrides)?;
    let which = match (&sub, &sid) {
        (Some(s), None) => end_sessions::Which::Subject(s),
        (None, Some(s)) => end_sessions::Which::Session(s),
        _ => return Err(CliError::Usage("give exactly one of --sub and --sid")),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let n = runtime.block_on(end_sessions::end_sessions(&settings, which))?;
    Ok(format!("{n} session(s) ended"))
}

fn serve_command(config: &std::path::Path, overrides: &Overrides) -> Result<String, CliError> {
    let settings = load_settings(config, overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(serve(settings))?;
    Ok(String::new())
}

fn report(result: Result<String, CliError>) -> ExitCode {
    match result {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command line (the `idp` binary).
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Client(command) => report(client_command(command)),
        Command::User(command) => report(user_command(command)),
        Command::HashSecret => hash_secret(),
        Command::HashPassword => hash_password(),
        Command::RotateKey {
            config,
            database,
            publish_seconds,
            algorithm,
        } => {
            let overrides = Overrides {
                database,
                key_encryption_key: key_encryption_key_from_env(),
                ..Default::default()
            };
            report(rotate_key_command(
                &config,
                &overrides,
                algorithm.as_deref(),
                publish_seconds,
            ))
        }
        Command::EndSessions {
            config,
            database,
            sub,
            sid,
        } => {
            let overrides = Overrides {
                database,
                key_encryption_key: key_encryption_key_from_env(),
                ..Default::default()
            };
            report(end_sessions_command(&config, &overrides, sub, sid))
        }
        Command::Serve {
            config,
            listen,
            database,
            issuer,
            max_body_bytes,
            max_header_bytes,
            max_headers,
        } => {
            let overrides = Overrides {
                listen,
                database,
                issuer,
                key_encryption_key: key_encryption_key_from_env(),
                max_body_bytes,
                max_header_bytes,
                max_headers,
            };
            report(serve_command(&config, &overrides))
        }
    }
}

/// `IDP_KEY_ENCRYPTION_KEY`: read from the environment only (a flag would show in `ps`).
fn key_encryption_key_from_env() -> Option<crate::settings::RedactedString> {
    std::env::var("IDP_KEY_ENCRYPTION_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(crate::settings::RedactedString)
}

fn hash_secret() -> ExitCode {
    let mut secret = String::new();
    if std::io::stdin().read_to_string(&mut secret).is_err() {
        eprintln!("idp: cannot read the secret from stdin");
        return ExitCode::FAILURE;
    }
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.chars().count() < MIN_SECRET_LEN {
        eprintln!("idp: client secrets must be at least {MIN_SECRET_LEN} characters");
        return ExitCode::FAILURE;
    }
    use sha2::Digest;
    println!("{}", hex::encode(sha2::Sha256::digest(secret.as_bytes())));
    ExitCode::SUCCESS
}

fn hash_password() -> ExitCode {
    use argon2::PasswordHasher;
    let mut password = String::new();
    if std::io::stdin().read_to_string(&mut password).is_err() {
        eprintln!("idp: cannot read the password from stdin");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        eprintln!("idp: passwords must be at least 8 characters");
        return ExitCode::FAILURE;
    }
    match argon2::Argon2::default().hash_password(password.as_bytes()) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idp: hashing failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a key rotation could not be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreOpenError),
    #[error(transparent)]
    Kek(#[from] crate::oauth::keys::encryption::KekError),
    #[error(transparent)]
    Keys(#[from] crate::oauth::keys::KeyError),
}

/// `idp rotate-key`: migrates and advances the keys as the server would, checks that the
/// key-encryption key opens them (a key sealed with another one could never sign), then
/// schedules a new `alg` key that signs after `publish_seconds`.
pub async fn rotate_key(
    settings: &crate::settings::Settings,
    alg: crate::settings::SigningAlg,
    publish_seconds: i64,
) -> Result<String, RotateError> {
    use crate::oauth::keys;
    let store = crate::store::open(&settings.database).await?;
    let kek = keys::encryption::Kek::load(&settings.key_encryption)?;
    let now = crate::http::state::unix_now();
    keys::seal_plaintext_keys(&*store, &kek).await?;
    keys::load(&*store, &kek).await?;
    keys::advance(&*store, &kek, keys::KeyPolicy::of(settings), now).await?;
    Ok(keys::schedule_rotation(&*store, &kek, alg, now, publish_seconds).await?)
}

async fn serve(settings: Settings) -> Result<(), CliError> {
    let listen = settings.listen;
    let state = crate::http::AppState::open(settings).await?;
    state.spawn_key_refresh(std::time::Duration::from_secs(1));
    state.spawn_purge(std::time::Duration::from_secs(300));
    crate::http::routes::ssf::spawn_event_delivery(&state);
    state.hub.spawn_refresh(std::time::Duration::from_secs(
        state.settings.federation.key_refresh_seconds,
    ));
    let count: crate::federation::ssf::Count = {
        let state = Arc::clone(&state);
        Arc::new(move |endpoint, outcome| state.metrics.federation(endpoint, outcome))
    };
    state
        .hub
        .ssf
        .spawn(Arc::clone(&state.store), &state.settings.federation, count);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| CliError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(CliError::Serve)?;
    println!("idp listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(issuer = %state.settings.issuer, %addr, "serving");
    let app = crate::http::app(Arc::clone(&state));
    let limits = state.settings.http;
    crate::http::server::serve(listener, app, limits, async move {
        shutdown_signal().await;
        // long polls answer now, so the graceful shutdown does not wait for them
        state.begin_shutdown();
    })
    .await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
