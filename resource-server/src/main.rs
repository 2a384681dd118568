use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;

/// Demo resource server protected by the oauth2 gateway.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (loopback only: it trusts the gateway's identity headers).
    #[arg(long, env = "RS_LISTEN", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Shared secret the gateway presents (header x-gateway-secret) to end a session at logout.
    #[arg(
        long,
        env = "RS_REVOKE_SECRET",
        default_value = "demo-gateway-to-rs-secret-0123456789"
    )]
    revoke_secret: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "resource-server: refusing to listen on {}: it trusts gateway headers, so it must stay on loopback",
            args.listen
        );
        return std::process::ExitCode::from(2);
    }
    if args.revoke_secret.len() < 16 {
        eprintln!("resource-server: --revoke-secret must be at least 16 characters");
        return std::process::ExitCode::from(2);
    }
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("resource-server: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
    println!("resource-server listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
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
    };
    match axum::serve(
        listener,
        resource_server::app(resource_server::AppState::new(args.revoke_secret)),
    )
    .with_graceful_shutdown(shutdown)
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resource-server: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
