use clap::{Parser, Subcommand};
use idp::settings::{MIN_SECRET_LEN, Overrides, RawSettings};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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

/// One line of stdin without its line ending (a secret or a password; never echoed).
fn read_stdin_secret() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn edit_config(
    config: &std::path::Path,
    edit: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let out = edit(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    idp::admin::write_atomically(config, &out)
}

fn client_command(command: ClientCommand) -> Result<String, String> {
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
        } => {
            let secret = if public {
                None
            } else {
                Some(read_stdin_secret()?)
            };
            let client = idp::admin::NewClient {
                id: id.clone(),
                secret,
                scopes,
                audiences,
                grant_types,
                redirect_uris,
                skip_consent,
            };
            edit_config(&config, |text| idp::admin::add_client(text, &client))?;
            Ok(format!(
                "client {id:?} added to {} (restart the IDP to load it)",
                config.display()
            ))
        }
    }
}

fn user_command(command: UserCommand) -> Result<String, String> {
    match command {
        UserCommand::Add {
            config,
            username,
            name,
            email,
        } => {
            let user = idp::admin::NewUser {
                username: username.clone(),
                password: read_stdin_secret()?,
                name,
                email,
            };
            edit_config(&config, |text| idp::admin::add_user(text, &user))?;
            Ok(format!(
                "user {username:?} added to {} (restart the IDP to load it)",
                config.display()
            ))
        }
    }
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
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
            let run = async {
                let text = std::fs::read_to_string(&config)
                    .map_err(|e| format!("{}: {e}", config.display()))?;
                let settings = RawSettings::from_toml(&text)
                    .and_then(|raw| raw.validate(&overrides))
                    .map_err(|e| format!("{}: {e}", config.display()))?;
                let alg = match algorithm.as_deref() {
                    None => settings.signing_algorithm,
                    Some(a) => idp::keys::SigningAlg::parse(a)
                        .ok_or("--algorithm must be ES256, RS256 or EdDSA")?,
                };
                let store = idp::store::open(&settings.database).await?;
                let kek = idp::key_encryption::Kek::load(&settings.key_encryption)
                    .map_err(|e| e.to_string())?;
                let now = idp::state::unix_now();
                idp::keys::seal_plaintext_keys(&*store, &kek).await?;
                idp::keys::advance(&*store, &kek, settings.key_policy(), now).await?;
                idp::keys::schedule_rotation(&*store, &kek, alg, now, i64::from(publish_seconds))
                    .await
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => match rt.block_on(run) {
                    Ok(kid) => {
                        println!("new key {kid} published; it signs in {publish_seconds} s");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("idp: {e}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("idp: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            config,
            listen,
            database,
            issuer,
        } => {
            let overrides = Overrides {
                listen,
                database,
                issuer,
                key_encryption_key: key_encryption_key_from_env(),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("idp: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config, overrides)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("idp: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `IDP_KEY_ENCRYPTION_KEY`: read from the environment only (a flag would show in `ps`).
fn key_encryption_key_from_env() -> Option<idp::settings::RedactedString> {
    std::env::var("IDP_KEY_ENCRYPTION_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(idp::settings::RedactedString)
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

async fn serve(config: PathBuf, overrides: Overrides) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    let settings = RawSettings::from_toml(&text)
        .and_then(|raw| raw.validate(&overrides))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let listen = settings.listen;
    let state = idp::AppState::open(settings).await?;
    state.spawn_key_refresh(std::time::Duration::from_secs(1));
    state.spawn_purge(std::time::Duration::from_secs(300));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("idp listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(issuer = %state.settings.issuer, %addr, "serving");
    let app = idp::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
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
