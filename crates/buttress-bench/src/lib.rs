//! Bench servers for `scripts/bench` and `scripts/callgrind`: one small HTML page (about 1 KB)
//! served several ways.
//!
//! ```text
//! buttress-bench bare  --bind 127.0.0.1:0   # plain axum, `axum::serve`
//! buttress-bench bare-headers               # plain axum sending the stack's headers as fixed values
//! buttress-bench stack --bind 127.0.0.1:0   # the same router inside the whole Buttress stack
//! buttress-bench peer  --bind 127.0.0.1:0   # the same router behind axum + tower-http +
//!                                           # tower-sessions + tower_governor (see `peer.rs`)
//! ```
//!
//! For finding where time goes there is a third mode, `layers`, which rebuilds the stack
//! from the public layers in the order `Buttress::apply` uses (as of this crate's writing) and
//! leaves out the ones named:
//!
//! ```text
//! buttress-bench layers --skip session,csrf --server axum --bind 127.0.0.1:0
//! ```
//!
//! Layer names: `request-id`, `trace`, `errors`, `headers`, `proxy`,
//! `panic`, `ratelimit` (the global limit), `timeout`, `body-limit`, `session`, `csrf` (the HTTPS redirect is off in
//! Development). `--server` is `buttress` (`buttress::server::Server`) or `axum` (`axum::serve`),
//! for every mode; the default is `axum` for `bare` and `bare-headers` and `buttress` for the
//! others, so `peer` runs on the same server as `stack` and the two compare their middleware
//! alone. On `axum::serve`, `stack`, `layers` and `peer` are served with each connection's peer
//! address (`into_make_service_with_connect_info::<SocketAddr>()`, as tower_governor's README
//! shows; `Server` always inserts it): the stack answers 500 without one.
//!
//! All modes print the bound address (`http://127.0.0.1:PORT/`) on one line of stdout once they
//! accept connections, and serve until SIGTERM or Ctrl-C.
//!
//! `stack` loads its settings like `buttress serve` does (`BUTTRESS_*`, `SECRET_KEY`), so it
//! is Development on loopback; `--bind` wins over `BUTTRESS_BIND`. When the tree has a global
//! rate limit (`ratelimit_default`) and `BUTTRESS_RATELIMIT_DEFAULT` is unset, it is set to
//! [`BENCH_LIMITS`]: the same shape as the default (a day and an hour window) but high enough
//! never to throttle a benchmark, so the limiter still runs on every request.
//!
//! Exit codes: 0 after a clean shutdown, 1 on a runtime or bind failure, 2 on a bad command
//! line, 3 when the settings are refused.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::body::Body;
use axum::http::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use buttress::server::{shutdown_signal, App, ServeOptions, Server};
use buttress::settings::{Origin, Settings, SettingsError, KEYS};
use buttress::Buttress;

/// How `peer` mode builds its app (given by the `buttress-bench-peer` binary): the router, the
/// body limit and the request timeout in, the router behind the peer stack out.
pub type PeerApp = fn(Router, usize, std::time::Duration) -> Result<Router, String>;

/// The global limit the stack gets for a benchmark (when the tree has one): the default's shape,
/// `200 per day; 50 per hour`, scaled so that no load on one machine reaches it.
pub const BENCH_LIMITS: &str = "1000000000 per day; 500000000 per hour";

/// The page both servers answer `/` with (about 1 KB of HTML).
pub const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blood donor registry</title>
</head>
<body>
<header><nav><a href="/">Home</a> <a href="/donors">Find donors</a> <a href="/requests">Requests</a> <a href="/login">Sign in</a></nav></header>
<main>
<h1>Find a blood donor near you</h1>
<p>Volunteers register their blood group and city so that patients and hospitals can reach
them when blood is needed. Search by blood group and city, or post a request and see which
registered donors can give.</p>
<ul>
<li>Donors choose whether they can be contacted, and may change it at any time.</li>
<li>Phone numbers are shown to signed-in members only.</li>
<li>A donor who gave blood in the last 56 days is listed as not yet eligible.</li>
</ul>
<p><a href="/signup">Register as a donor</a> or <a href="/donors">search the registry</a>.</p>
</main>
<footer><p>A demonstration page for benchmarks. No real donors are listed.</p></footer>
</body>
</html>
"#;

/// The stack's security headers whose values are the same on every response (as of this
/// writing): `bare-headers` sends them as they are, `peer` sets them with tower-http.
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("permissions-policy", "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
];

/// The headers `stack` adds to the page besides [`SECURITY_HEADERS`] (as of this writing), with
/// sample values, for `bare-headers`: the rate-limit headers, the CSP with a nonce, the request id.
const STACK_SAMPLE_HEADERS: [(&str, &str); 4] = [
    ("ratelimit-policy", "\"1\";q=1000000000;w=86400, \"2\";q=500000000;w=3600"),
    ("ratelimit", "\"2\";r=499999999;t=1"),
    ("content-security-policy", "default-src 'none'; script-src 'self' 'nonce-VPdnCQ2ZTKoWdlZ9efE3cA'; style-src 'self' 'nonce-VPdnCQ2ZTKoWdlZ9efE3cA'; img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    ("x-request-id", "1108641a-eb74-4094-9614-f3faf10f0d03"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    BareHeaders,
    Stack,
    Layers,
    Peer,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ServerKind {
    Axum,
    Buttress,
}

struct Args {
    mode: Mode,
    bind: SocketAddr,
    server: ServerKind,
    skip: Vec<String>,
}

/// The layers of `layers` mode, innermost first (the order `Buttress::apply` adds them).
const LAYERS: &[&str] = &[
    "csrf",
    "session",
    "body-limit",
    "timeout",
    "ratelimit",
    "panic",
    "proxy",
    "headers",
    "errors",
    "trace",
    "request-id",
];

fn router() -> Router {
    Router::new().route("/", get(|| async { Html(PAGE) }))
}

/// The page with the stack's 11 headers as static values (in the order the stack sends them):
/// no layer, only the bytes.
fn router_with_static_headers() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            static BUILT: std::sync::OnceLock<Vec<(HeaderName, HeaderValue)>> =
                std::sync::OnceLock::new();
            let built = BUILT.get_or_init(|| {
                STACK_SAMPLE_HEADERS[..2]
                    .iter()
                    .chain(&SECURITY_HEADERS)
                    .chain(&STACK_SAMPLE_HEADERS[2..])
                    .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
                    .collect()
            });
            let mut res = Html(PAGE).into_response();
            let headers = res.headers_mut();
            headers.reserve(built.len());
            for (name, value) in built {
                headers.insert(name.clone(), value.clone());
            }
            res
        }),
    )
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: buttress-bench (bare|bare-headers|stack|peer|layers) [--bind ADDR] [--server axum|buttress] [--skip LAYER,...]\n\
         (default ADDR 127.0.0.1:0; server: axum for bare, buttress otherwise; layers: {})",
        LAYERS.join(",")
    );
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next()?.as_str() {
        "bare" => Mode::Bare,
        "bare-headers" => Mode::BareHeaders,
        "stack" => Mode::Stack,
        "layers" => Mode::Layers,
        "peer" => Mode::Peer,
        _ => return None,
    };
    let mut out = Args {
        mode,
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        server: if matches!(mode, Mode::Bare | Mode::BareHeaders) {
            ServerKind::Axum
        } else {
            ServerKind::Buttress
        },
        skip: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => out.bind = args.next()?.parse().ok()?,
            "--server" => {
                out.server = match args.next()?.as_str() {
                    "axum" => ServerKind::Axum,
                    "buttress" => ServerKind::Buttress,
                    _ => return None,
                }
            }
            "--skip" if mode == Mode::Layers => {
                for name in args.next()?.split(',').filter(|n| !n.is_empty()) {
                    if !LAYERS.contains(&name) {
                        return None;
                    }
                    out.skip.push(name.to_owned());
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The stack rebuilt from the public layers, leaving out those in `skip`.
fn layered(router: Router, stack: &Buttress, settings: &Settings, skip: &[String]) -> Router {
    use axum::extract::DefaultBodyLimit;
    use buttress::csrf::CsrfLayer;
    use buttress::errors::{catch_panic_layer, ErrorPagesLayer};
    use buttress::headers::{Csp, Hsts, SecureHeadersLayer};
    use buttress::proxy::{ProxyConfig, ProxyLayer};
    use buttress::request_id::RequestIdLayer;
    use buttress::timeout::RequestTimeoutLayer;
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::trace::TraceLayer;

    let on = |name: &str| !skip.iter().any(|s| s == name);
    let mut r = router;
    if on("csrf") {
        r = r.layer(CsrfLayer::new());
    }
    if on("session") {
        r = r.layer(stack.session_layer());
    }
    if on("body-limit") {
        r = r
            .layer(DefaultBodyLimit::max(settings.body_limit))
            .layer(RequestBodyLimitLayer::new(settings.body_limit));
    }
    if on("timeout") {
        r = r.layer(RequestTimeoutLayer::new(settings.request_timeout));
    }
    if on("ratelimit") {
        if let Some(limit) = stack.rate_limiter() {
            r = r.layer(limit.clone());
        }
    }
    if on("panic") {
        r = r.layer(catch_panic_layer());
    }
    if on("proxy") {
        r = r.layer(ProxyLayer::new(ProxyConfig::default()));
    }
    if on("headers") {
        r = r.layer(
            SecureHeadersLayer::new()
                .csp(Csp::strict())
                .hsts(Some(Hsts::default())),
        );
    }
    if on("errors") {
        r = r.layer(ErrorPagesLayer::new(settings.debug));
    }
    if on("trace") {
        r = r.layer(TraceLayer::new_for_http());
    }
    if on("request-id") {
        r = r.layer(RequestIdLayer);
    }
    r
}

/// Settings from the environment with `bind`, plus [`BENCH_LIMITS`] when the tree knows a global
/// rate limit and the environment sets none.
fn load_settings(bind: SocketAddr) -> Result<Settings, SettingsError> {
    let mut loader = Settings::loader()
        .process_env()
        .set("bind", &bind.to_string(), Origin::Env);
    let has_global_limit = KEYS.iter().any(|k| k.key == "ratelimit_default");
    let unset = std::env::var_os("BUTTRESS_RATELIMIT_DEFAULT").is_none_or(|v| v.is_empty());
    if has_global_limit && unset {
        loader = loader.set("ratelimit_default", BENCH_LIMITS, Origin::Env);
    }
    loader.load()
}

fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "http://{addr}/");
    let _ = out.flush();
}

/// Serves `app` on `kind`; `connect_info` has `axum::serve` insert each connection's peer
/// address (`ConnectInfo<SocketAddr>`, which `buttress::server::Server` always inserts). A
/// `Router` is given built (`with_state`), as `axum::serve` does.
async fn serve<S: App>(
    app: S,
    settings: &Settings,
    kind: ServerKind,
    connect_info: bool,
) -> ExitCode {
    match kind {
        ServerKind::Axum => {
            let listener = match tokio::net::TcpListener::bind(settings.bind).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("buttress-bench: cannot bind {}: {e}", settings.bind);
                    return ExitCode::FAILURE;
                }
            };
            match listener.local_addr() {
                Ok(addr) => announce(addr),
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let served = if connect_info {
                let app = axum::ServiceExt::<Request<Body>>::into_make_service_with_connect_info::<
                    SocketAddr,
                >(app);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            } else {
                let app = axum::ServiceExt::<Request<Body>>::into_make_service(app);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            };
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ServerKind::Buttress => {
            let opts = match ServeOptions::from_settings(settings) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    return ExitCode::from(3);
                }
            };
            let server = match Server::bind(app, opts).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    return ExitCode::FAILURE;
                }
            };
            announce(server.local_addr());
            shutdown_signal().await;
            server.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

async fn run(args: Args, peer: Option<PeerApp>) -> ExitCode {
    let settings = match load_settings(args.bind) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("buttress-bench: {e}");
            return ExitCode::from(3);
        }
    };
    let kind = args.server;
    // The stack and the peer need each connection's peer address (the stack refuses a request
    // without one with a 500; tower_governor keys on it); bare axum does not ask for it.
    // Routers are built once (`with_state`), as `axum::serve` does: `Server::bind` clones and
    // calls what it is given, and an unbuilt router applies every `Router::layer` to its
    // handler again on each request (callgrind, per request: stack 37.8k -> 37.1k, peer
    // 41.6k -> 38.0k), so every mode on either server measures its middleware.
    match args.mode {
        Mode::Bare => serve(router().with_state(()), &settings, kind, false).await,
        Mode::BareHeaders => {
            serve(
                router_with_static_headers().with_state(()),
                &settings,
                kind,
                false,
            )
            .await
        }
        Mode::Peer => {
            let Some(peer) = peer else {
                eprintln!("buttress-bench: `peer` is served by its own binary, buttress-bench-peer (built apart, so that its crates' features do not change the stack's build)");
                return ExitCode::from(2);
            };
            match peer(router(), settings.body_limit, settings.request_timeout) {
                Ok(app) => serve(app.with_state(()), &settings, kind, true).await,
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    ExitCode::from(3)
                }
            }
        }
        Mode::Stack | Mode::Layers => {
            let stack = match Buttress::from_settings(&settings) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("buttress-bench: {e}");
                    return ExitCode::from(e.exit_code());
                }
            };
            if args.mode == Mode::Stack {
                match stack.apply(router()) {
                    Ok(app) => serve(app, &settings, kind, true).await,
                    Err(e) => {
                        eprintln!("buttress-bench: {e}");
                        ExitCode::from(e.exit_code())
                    }
                }
            } else {
                let app = layered(router(), &stack, &settings, &args.skip);
                serve(app.with_state(()), &settings, kind, true).await
            }
        }
    }
}

/// The command line of both bench binaries: `buttress-bench` serves every mode but `peer`,
/// `buttress-bench-peer` gives `peer` its app.
pub fn main_with(peer: Option<PeerApp>) -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("buttress-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, peer))
}
