//! Run with `cargo run -p buttress --example behind_proxy`, with the settings of a deployment
//! behind a TLS-terminating proxy (nginx, a load balancer) in the environment:
//!
//! ```sh
//! export BUTTRESS_ENV=production SECRET_KEY=$(cargo run -q -p buttress-cli -- keygen)
//! export BUTTRESS_BEHIND_PROXY=true BUTTRESS_TRUSTED_PROXIES=10.0.0.0/8   # the proxies' addresses
//! export BUTTRESS_ALLOWED_HOSTS=donors.example.org BUTTRESS_CANONICAL_HOST=donors.example.org
//! export BUTTRESS_BIND=10.0.0.5:8000
//! cargo run -p buttress --example behind_proxy
//! ```
//!
//! Production refuses to start without a strong key, a trusted proxy or HTTPS; `buttress check`
//! lists what is missing. What each setting does here:
//!
//! - Only a peer inside `BUTTRESS_TRUSTED_PROXIES` is believed about the client. From it, the
//!   client is the rightmost address in `X-Forwarded-For` that is not itself a trusted proxy
//!   (what the client wrote to the left of it is ignored), the scheme is `X-Forwarded-Proto`,
//!   and the host is `X-Forwarded-Host` (when the proxy sends one) or `Host`. From any other
//!   peer these headers are ignored: the peer is the client and the connection's scheme counts.
//! - `BUTTRESS_ALLOWED_HOSTS`: a request for any other host is refused with 400, so a forged
//!   `Host` can neither poison links nor choose where the HTTPS redirect goes.
//! - `BUTTRESS_CANONICAL_HOST`: plain HTTP is redirected to `https://` on this host (301 for
//!   GET and HEAD, 308 otherwise); `/healthz` stays answerable over plain HTTP for health checks.
//!   HSTS is sent on HTTPS responses only.
//!
//! # What the proxy must send
//!
//! - connect from an address in `BUTTRESS_TRUSTED_PROXIES`;
//! - `X-Forwarded-For` with the client's address appended (nginx: `$proxy_add_x_forwarded_for`);
//! - `X-Forwarded-Proto: https` for requests that came over TLS (`http` otherwise);
//! - the public host name in `Host` (nginx: `proxy_set_header Host $host`), or in
//!   `X-Forwarded-Host`;
//! - or, instead of the `X-Forwarded-*` family, RFC 7239 `Forwarded` with `for=`, `proto=` and
//!   `host=`, with `BUTTRESS_PROXY_HEADER=forwarded`. Buttress reads one family only: the other
//!   is a client's and is ignored.
//!
//! ```nginx
//! location / {
//!     proxy_pass http://10.0.0.5:8000;
//!     proxy_set_header Host $host;
//!     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//!     proxy_set_header X-Forwarded-Proto $scheme;
//! }
//! ```

use axum::{routing::get, Router};
use buttress::proxy::{ClientIp, RequestOrigin};
use buttress::server::{shutdown_signal, ServeOptions, Server};
use buttress::settings::{Environment, Settings};
use buttress::stack::Stack;
use buttress::{Buttress, StartupError};

/// The app inside every protection: a page that says who asked, as the proxy step resolved it.
pub fn app(settings: &Settings) -> Result<Stack, StartupError> {
    let routes = Router::new()
        .route("/", get(whoami))
        .route("/healthz", get(|| async { "ok" }));
    Buttress::from_settings(settings)?.apply(routes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env(None)?;
    if settings.environment != Environment::Production || !settings.behind_proxy {
        return Err("this example runs in Production behind a proxy: set BUTTRESS_ENV=production, BUTTRESS_BEHIND_PROXY=true and the other variables at the top of examples/behind_proxy.rs".into());
    }
    let server = Server::bind(app(&settings)?, ServeOptions::from_settings(&settings)?).await?;
    eprintln!("listening on {} for the proxy", server.local_addr());
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn whoami(ClientIp(client): ClientIp, origin: RequestOrigin) -> String {
    format!("client {client} on {}\n", origin.origin())
}
