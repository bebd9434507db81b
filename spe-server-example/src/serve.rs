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
//! - a client has [`ConnectionLimits::write_timeout`] to take each part of
//!   an answer: one that stops reading (a big answer, or many pipelined
//!   requests, left unread) has its connection closed once a write has
//!   waited that long, else it would hold its connection, and a graceful
//!   stop, forever (TCP keeps a connection with a zero window open);
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
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt as _;

/// How long `accept` pauses after an error (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// How long a write may wait for a client that does not read
/// ([`ConnectionLimits::write_timeout`] as the server sets it).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits on connections, before any request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's head (its line and headers).
    pub header_timeout: Duration,
    /// Time a write of an answer may wait for the client to read.
    pub write_timeout: Duration,
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
        let stream = WriteTimeout::new(stream, limits.write_timeout);
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

/// A stream whose writes fail (`TimedOut`) once one has waited `timeout`
/// for the peer to make room; any progress restarts the wait.
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            waiting: None,
        }
    }

    /// `poll`, an attempt to write, or an error if writes have waited too long.
    fn limit<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.waiting = None;
            return poll;
        }
        let timeout = self.timeout;
        let waiting = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if waiting.as_mut().poll(cx).is_ready() {
            self.waiting = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the answer",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.limit(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.limit(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.limit(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off_and_does_not_hold_the_stop() {
        // Answers far bigger than the sockets' buffers, pipelined, never read.
        let answer = vec![b'x'; 256 << 10];
        let router = Router::new().route("/big", get(move || async move { answer.clone() }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_millis(500),
            max_connections: 8,
        };
        let server = tokio::spawn(serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        for _ in 0..200 {
            client
                .write_all(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .expect("send a request");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the stop is not held by a client that reads nothing")
            .expect("no panic");
        drop(client);
    }
}
