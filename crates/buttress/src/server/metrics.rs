//! [`MetricsServer`]: `GET /metrics` on a listener of its own (features `metrics` and
//! `server`), never on the application's.
//!
//! It runs on [`buttress::server`](crate::server) (the same header-read timeout, head size and
//! connection limits) and answers only `GET /metrics`: 200 with the text exposition, 401 with
//! `WWW-Authenticate: Bearer` when a token is set and the request does not carry it, 404 for
//! anything else.

use std::net::SocketAddr;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::{ServeOptions, Server, ServerError};
use crate::telemetry::{MetricsToken, Telemetry};

/// The content type of the exposition (OpenMetrics text, which Prometheus scrapes).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the metrics listener did not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsServerError {
    /// A non-loopback address without a token would publish the counters to anyone.
    #[error("the metrics listener on {addr} is not on loopback and has no token. Fix: set BUTTRESS_METRICS_TOKEN (make one with `openssl rand -hex 32`; Prometheus sends it as a bearer token), or bind BUTTRESS_METRICS_BIND to 127.0.0.1")]
    NoToken {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The telemetry counts nothing (made with [`Telemetry::off`]).
    #[error("this telemetry counts nothing. Fix: build with Telemetry::new(), or set BUTTRESS_METRICS_BIND so that Buttress counts")]
    Off,
    /// The address could not be bound.
    #[error(transparent)]
    Server(#[from] ServerError),
}

#[derive(Clone)]
struct Scrape {
    telemetry: Telemetry,
    token: Option<MetricsToken>,
}

/// The running metrics listener. Dropping it does not stop it; call
/// [`MetricsServer::shutdown`].
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use buttress::{server::MetricsServer, telemetry::Telemetry};
/// let telemetry = Telemetry::new();
/// let metrics = MetricsServer::bind("127.0.0.1:0".parse()?, telemetry, None).await?;
/// let body = reqwest::get(format!("http://{}/metrics", metrics.local_addr())).await?.text().await?;
/// assert!(body.contains("buttress_requests_total"));
/// metrics.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    server: Server,
}

impl MetricsServer {
    /// Serves `telemetry`'s metrics on `addr` (port 0 picks a free one). A non-loopback
    /// address needs a `token`.
    pub async fn bind(
        addr: SocketAddr,
        telemetry: Telemetry,
        token: Option<MetricsToken>,
    ) -> Result<MetricsServer, MetricsServerError> {
        if !telemetry.counts() {
            return Err(MetricsServerError::Off);
        }
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(MetricsServerError::NoToken { addr });
        }
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Scrape { telemetry, token });
        let opts = ServeOptions {
            bind: addr,
            max_connections: 64,
            ..ServeOptions::default()
        };
        Ok(MetricsServer {
            server: Server::bind(app, opts).await?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn scrape(State(s): State<Scrape>, headers: HeaderMap) -> Response {
    if let Some(token) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !token.authorizes(given) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            )
                .into_response();
        }
    }
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        s.telemetry.render(),
    )
        .into_response()
}
