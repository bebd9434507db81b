//! Serving connections: hyper under the router, with the limits that must
//! hold before a request exists.
//!
//! The middleware stack ([`layers`](crate::layers)) bounds requests: their
//! number, size and time. It cannot bound a client that never finishes its
//! request's head, nor the number of connections, because those come before
//! any request. Without them, clients that open connections and send their
//! headers a byte at a time (or never) hold a file descriptor each until the
//! process runs out and stops accepting anyone, `/livez` included. So:
//!
//! - a client has [`ConnectionLimits::header_timeout`] to send each request's
//!   head, else its connection is closed (hyper's HTTP/1 header-read timer,
//!   which runs from the connection's start and between two requests, so it
//!   also closes a silent connection and an idle keep-alive one);
//! - at most [`ConnectionLimits::max_connections`] connections are open at
//!   once; one more is closed as soon as it is accepted (the client sees the
//!   connection close, and may retry), so that the listener never stalls;
//! - an `accept` error (out of file descriptors) pauses accepting briefly
//!   instead of spinning;
//! - on shutdown, the listener closes, connections finish their request in
//!   flight and close, and [`serve`] returns when all are closed.
//!
//! Each request carries the peer's address as `ConnectInfo<SocketAddr>`, as
//! `axum::serve` with `into_make_service_with_connect_info` would set it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How long `accept` pauses after an error (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits on connections, before any request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's head (its line and headers).
    pub header_timeout: Duration,
    /// Connections open at once; one more is closed at once.
    pub max_connections: usize,
}

/// Serve `router` on `listener` until `shutdown` completes, then let the
/// open connections finish and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    // HTTP/1 only: browsers speak HTTP/2 over TLS only, and sniffing the
    // version would wait, without a timer, for a client that sends nothing.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max_connections = limits.max_connections,
                "too many open connections: closing a new one"
            );
            continue;
        };
        // No Nagle delay on the last segment of an answer.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client that went away, or too slow to send its headers.
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
