//! The HTTP/1.1 server (hyper) under the router, with the read limits of [`HttpLimits`]: the
//! parser holds at most twice `max_header_bytes` (plus 8 KiB) of request head and twice
//! `max_headers` fields, and a head must arrive within [`HEADER_READ_TIMEOUT`]. What exceeds
//! that is refused by the parser itself (431 or 400 with no body, connection closed), before
//! any endpoint is known; what exceeds the limits themselves but fits that margin reaches the
//! router and is refused in the endpoint's shape (`limits`).

use crate::settings::HttpLimits;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send a request head (slow-header clients are cut off).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's smallest allowed read buffer.
const MIN_READ_BUFFER: usize = 8192;

/// The HTTP/1 connection settings for `limits`.
fn http1(limits: HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(
            limits
                .max_header_bytes
                .saturating_mul(2)
                .saturating_add(8192)
                .max(MIN_READ_BUFFER),
        )
        .max_headers(limits.max_headers.saturating_mul(2));
    builder
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// their requests. Handlers see the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let builder = http1(limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // e.g. out of file descriptors: wait a little instead of spinning
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
