//! A hardened HTTP server for a [`Stack`](crate::stack::Stack) (or any axum service, such as a
//! `Router`): TLS with rustls, header-read and idle timeouts,
//! header size limit, a cap on open connections, peer address for the proxy layer, and graceful
//! shutdown.
//!
//! `axum::serve` exposes neither hyper's header-read timeout nor its header buffer size, which
//! are the defence against slow-header (slowloris) clients and oversized heads, so this module
//! drives hyper-util's connection builder itself. Every request gets the TCP peer address as
//! axum's [`ConnectInfo`] and a [`Transport`] saying whether the connection is TLS.
//!
//! # How long a connection may hold a slot
//!
//! | phase | bound |
//! |---|---|
//! | TLS handshake | `header_read_timeout` |
//! | first request: telling HTTP/1 from HTTP/2 (up to 24 bytes, which hyper-util reads with no timeout of its own) and the whole request head | `header_read_timeout` from the connection's start (after TLS), then it is asked to close; an HTTP/1 head begun by then still has hyper's own `header_read_timeout`, counted from its first byte |
//! | between requests (keep-alive), HTTP/1 and HTTP/2 alike | `header_read_timeout` with no request in flight, then it is asked to close (HTTP/2: `GOAWAY`) |
//! | asked to close (idle, or the server shutting down) | dropped if still open with no request in flight one `header_read_timeout` later (say, an HTTP/2 peer that never answers the `GOAWAY`'s ping): no idle connection outlives twice `header_read_timeout` after its TLS handshake (or its start, without TLS) |
//! | a request in flight (until its response body is sent) | not cut by the above; the stack's request timeout bounds the handler |
//!
//! At most `max_connections` connections are open at once, across both listeners. When that
//! many are open the server stops accepting: new connections wait in the kernel's listen
//! backlog (and beyond it, clients retry their SYN) until one closes, which the bounds above
//! make sure happens. Waiting rather than accepting and closing at once means a burst of idle
//! connections delays other clients by at most `header_read_timeout` instead of failing them.
//! A connection upgraded away from HTTP (WebSocket) leaves the server's hands and its slot.
//!
//! # Example
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use buttress::server::{ServeOptions, Server};
//! use buttress::Buttress;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Buttress::from_settings(&Default::default())?
//!     .apply(Router::new().route("/", get(|| async { "hi" })))?;
//! let server = Server::bind(app, ServeOptions::default()).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "metrics")]
pub use metrics::{MetricsServer, MetricsServerError};

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::proxy::Transport;
use crate::settings::{Settings, Tls};

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}. Fix: choose a free port with --bind, or stop the process using it")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// A TLS certificate or key could not be loaded.
    #[error("TLS setup failed: {0}. Fix: give a PEM certificate chain and its PEM private key with --tls-cert/--tls-key, or use --dev-tls on loopback")]
    Tls(String),
}

/// How to serve: addresses, TLS and connection limits.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The main listener.
    pub bind: SocketAddr,
    /// With TLS, a plain-HTTP listener (its requests go through the same stack, whose HTTPS
    /// layer redirects them).
    pub http_bind: Option<SocketAddr>,
    /// TLS for the main listener.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time allowed for the TLS handshake, for a request head, and for a connection to sit with
    /// no request in flight (before its first request, and between requests, HTTP/1 and
    /// HTTP/2 alike): see the [module docs](self).
    pub header_read_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Connections open at once, across both listeners (at least 1; default 4096). At the cap
    /// the server stops accepting until one closes. Keep it under the process's open-file
    /// limit (`ulimit -n`), which every connection also counts against.
    pub max_connections: usize,
    /// Where a `--dev-tls` certificate was written, for clients to trust.
    pub dev_cert_path: Option<PathBuf>,
    /// Counts the refusals the server answers itself (a head over `max_header_bytes`: 431;
    /// none within `header_read_timeout`): give it [`Buttress::telemetry`](crate::Buttress::telemetry).
    /// Default: [`Telemetry::off`](crate::telemetry::Telemetry::off).
    pub telemetry: crate::telemetry::Telemetry,
}

/// The default [`ServeOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_bind: None,
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            dev_cert_path: None,
            telemetry: crate::telemetry::Telemetry::off(),
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("bind", &self.bind)
            .field("http_bind", &self.http_bind)
            .field("tls", &self.tls.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections", &self.max_connections)
            .field("telemetry", &self.telemetry)
            .finish()
    }
}

impl ServeOptions {
    /// Options from settings; loads the certificate files, or makes a self-signed certificate
    /// for `localhost` (written to `<data_dir>/dev-tls/cert.pem`) with `dev_tls`.
    pub fn from_settings(s: &Settings) -> Result<ServeOptions, ServerError> {
        let mut opts = ServeOptions {
            bind: s.bind,
            http_bind: s.http_bind.filter(|_| s.serves_tls()),
            tls: None,
            header_read_timeout: s.header_read_timeout,
            max_header_bytes: s.max_header_bytes,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            dev_cert_path: None,
            telemetry: crate::telemetry::Telemetry::off(),
        };
        match s.tls() {
            Tls::Off => {}
            Tls::Files { cert, key } => opts.tls = Some(tls_from_files(&cert, &key)?),
            Tls::DevSelfSigned => {
                let (config, path) = dev_tls(&s.data_dir)?;
                opts.tls = Some(config);
                opts.dev_cert_path = Some(path);
            }
        }
        Ok(opts)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn tls_from_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let read = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| ServerError::Tls(format!("cannot read {}: {}", p.display(), e.kind())))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ServerError::Tls(format!("{} is not a PEM certificate chain", cert.display()))
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| ServerError::Tls(format!("{} holds no PEM private key", key.display())))?;
    server_config(certs, key)
}

fn dev_tls(data_dir: &Path) -> Result<(Arc<rustls::ServerConfig>, PathBuf), ServerError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| ServerError::Tls(e.to_string()))?;
    let dir = data_dir.join("dev-tls");
    let path = dir.join("cert.pem");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, certified.cert.pem()))
        .map_err(|e| ServerError::Tls(format!("cannot write {}: {}", path.display(), e.kind())))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = server_config(vec![certified.cert.der().clone()], key)?;
    Ok((config, path))
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds the listeners (port 0 picks a free port) and starts serving `app`: the
    /// [`Stack`](crate::stack::Stack) that [`Buttress::apply`](crate::Buttress::apply) made, or
    /// any other service of axum requests (a bare `Router` has none of the protections).
    pub async fn bind<S>(app: S, opts: ServeOptions) -> Result<Server, ServerError>
    where
        S: App,
    {
        let listener = TcpListener::bind(opts.bind)
            .await
            .map_err(|source| ServerError::Bind {
                addr: opts.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: opts.bind,
            source,
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let opts = Arc::new(opts);
        let slots = Arc::new(Semaphore::new(
            opts.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            app.clone(),
            opts.clone(),
            opts.tls.clone(),
            None,
            stop_rx.clone(),
            slots.clone(),
        ))];
        let mut http_addr = None;
        if let Some(http) = opts.http_bind {
            let l = TcpListener::bind(http)
                .await
                .map_err(|source| ServerError::Bind { addr: http, source })?;
            http_addr = l.local_addr().ok();
            let https_port = opts.tls.as_ref().map(|_| addr.port());
            tasks.push(tokio::spawn(accept_loop(
                l,
                app,
                opts.clone(),
                None,
                https_port,
                stop_rx,
                slots,
            )));
        }
        Ok(Server {
            addr,
            http_addr,
            stop,
            tasks,
        })
    }

    /// The main listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain-HTTP redirect listener's address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Stops accepting, lets in-flight requests finish, and returns when all connections closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A service the server can run: axum requests in, axum responses out, never failing.
/// [`Stack`](crate::stack::Stack) and `Router` are such services.
pub trait App:
    tower_service::Service<
        http::Request<Body>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> App for S where
    S: tower_service::Service<
            http::Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

async fn accept_loop<S: App>(
    listener: TcpListener,
    app: S,
    opts: Arc<ServeOptions>,
    tls: Option<Arc<rustls::ServerConfig>>,
    https_port: Option<u16>,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) {
    // Each connection subscribes before it is spawned, so none misses the shutdown signal; the
    // loop then waits for every subscription to be dropped (hyper-util's GracefulShutdown, whose
    // watcher only takes its own connection type).
    let (close_all, _) = watch::channel(());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut at_cap = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_cap = false;
                slot
            }
            Err(_) => {
                if !at_cap {
                    tracing::warn!(
                        max_connections = opts.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                    at_cap = true;
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let opts = opts.clone();
        let acceptor = acceptor.clone();
        let closing = close_all.subscribe();
        tokio::spawn(async move {
            let _slot: OwnedSemaphorePermit = slot;
            match acceptor {
                None => {
                    let transport = Transport {
                        tls: false,
                        https_port,
                    };
                    serve_io(stream, peer, transport, app, &opts, closing).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(opts.header_read_timeout, acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(tls)) => {
                            let transport = Transport {
                                tls: true,
                                https_port: None,
                            };
                            serve_io(tls, peer, transport, app, &opts, closing).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = close_all.send(());
    close_all.closed().await;
}

/// What a connection is doing, for its idle timeout: how many requests are in flight (from
/// the head's arrival until the response body is sent or dropped) and since when none is.
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Nanoseconds from `start` to when the last request ended (or the clock was restarted).
    idle_from: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_from: AtomicU64::new(0),
        }
    }

    /// Restarts the idle clock (when nothing is in flight, idleness counts from now).
    fn restart(&self) {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_from.store(now, Ordering::Release);
    }

    /// Since when nothing is in flight, or `None` while something is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.start + Duration::from_nanos(self.idle_from.load(Ordering::Acquire)))
    }

    /// Resolves once nothing has been in flight for `limit` (at once, if that is already so).
    async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self
                .idle_since()
                .map_or_else(|| Instant::now() + limit, |since| since + limit);
            tokio::time::sleep_until(deadline).await;
            if self
                .idle_since()
                .is_some_and(|since| since + limit <= Instant::now())
            {
                return;
            }
        }
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The time first, so whoever sees the count at zero also sees when it got there.
        self.0.restart();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is sent or dropped.
    struct Tracked<B> {
        #[pin]
        inner: B,
        in_flight: InFlight,
    }
}

impl<B: http_body::Body> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a connection that ended on a head over the limit (hyper answered 431) or one that
/// did not come in time.
fn head_refusal(
    telemetry: &crate::telemetry::Telemetry,
    e: &(dyn std::error::Error + 'static),
    peer: SocketAddr,
) {
    use crate::telemetry::Refusal;
    let Some(e) = e.downcast_ref::<hyper::Error>() else {
        return;
    };
    let refusal = if e.is_parse_too_large() {
        Refusal::HeadersTooLarge
    } else if e.is_timeout() {
        Refusal::HeaderTimeout
    } else {
        return;
    };
    telemetry.refused_by_server(refusal, Some(peer.ip()));
}

async fn serve_io<I, S: App>(
    io: I,
    peer: SocketAddr,
    transport: Transport,
    app: S,
    opts: &ServeOptions,
    mut closing: watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        // Plain HTTP with no TLS listener to point at is what a missing `Transport` means:
        // one map insert fewer on every such request.
        if transport != Transport::default() {
            req.extensions_mut().insert(transport);
        }
        let in_flight = InFlight::start(&requests);
        app.clone()
            .oneshot(req)
            .map(move |res| res.map(|res| res.map(|inner| Tracked { inner, in_flight })))
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle_limit = opts.header_read_timeout;
    // Asked to close (idle, or the server stopping); `idle_limit` more of idleness drops it.
    let mut asked = false;
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    head_refusal(&opts.telemetry, &*e, peer);
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            // Also when the accept loop is gone: stop either way.
            _ = closing.changed(), if !stopping => {
                stopping = true;
                if !asked {
                    asked = true;
                    activity.restart();
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = activity.idle_for(idle_limit) => {
                if asked {
                    tracing::debug!(%peer, "connection still idle after being asked to close: dropped");
                    break;
                }
                tracing::debug!(%peer, "connection idle: asked to close");
                asked = true;
                activity.restart();
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
