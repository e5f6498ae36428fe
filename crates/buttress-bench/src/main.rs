//! Bench servers for `scripts/bench`: one small HTML page (about 1 KB) served two ways.
//!
//! ```text
//! buttress-bench bare  --bind 127.0.0.1:0   # plain axum, `axum::serve`
//! buttress-bench stack --bind 127.0.0.1:0   # the same router inside the whole Buttress stack
//! ```
//!
//! Both print the bound address (`http://127.0.0.1:PORT/`) on one line of stdout once they
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

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use buttress::server::{shutdown_signal, ServeOptions, Server};
use buttress::settings::{Origin, Settings, SettingsError, KEYS};
use buttress::Buttress;

/// The global limit the stack gets for a benchmark (when the tree has one): the default's shape,
/// `200 per day; 50 per hour`, scaled so that no load on one machine reaches it.
pub const BENCH_LIMITS: &str = "1000000000 per day; 500000000 per hour";

/// The page both servers answer `/` with (about 1 KB of HTML).
const PAGE: &str = r#"<!doctype html>
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

enum Mode {
    Bare,
    Stack,
}

fn router() -> Router {
    Router::new().route("/", get(|| async { Html(PAGE) }))
}

fn usage() -> ExitCode {
    eprintln!("usage: buttress-bench (bare|stack) [--bind ADDR]   (default ADDR: 127.0.0.1:0)");
    ExitCode::from(2)
}

fn parse_args() -> Option<(Mode, SocketAddr)> {
    let mut args = std::env::args().skip(1);
    let mode = match args.next()?.as_str() {
        "bare" => Mode::Bare,
        "stack" => Mode::Stack,
        _ => return None,
    };
    let mut bind = SocketAddr::from(([127, 0, 0, 1], 0));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next()?.parse().ok()?,
            other => bind = other.strip_prefix("--bind=")?.parse().ok()?,
        }
    }
    Some((mode, bind))
}

/// Settings from the environment with `bind`, plus [`BENCH_LIMITS`] when the tree knows a global
/// rate limit and the environment sets none.
fn load_settings(bind: SocketAddr) -> Result<Settings, SettingsError> {
    let mut loader = Settings::loader()
        .process_env()
        .set("bind", &bind.to_string(), Origin::Env);
    let has_global_limit = KEYS.iter().any(|(key, _, _)| *key == "ratelimit_default");
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

async fn serve_bare(bind: SocketAddr) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("buttress-bench: cannot bind {bind}: {e}");
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
    match axum::serve(listener, router())
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buttress-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_stack(bind: SocketAddr) -> ExitCode {
    let settings = match load_settings(bind) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("buttress-bench: {e}");
            return ExitCode::from(3);
        }
    };
    let stack = match Buttress::from_settings(&settings) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("buttress-bench: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let opts = match ServeOptions::from_settings(&settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("buttress-bench: {e}");
            return ExitCode::from(3);
        }
    };
    let server = match Server::bind(stack.apply(router()), opts).await {
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

fn main() -> ExitCode {
    let Some((mode, bind)) = parse_args() else {
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
    runtime.block_on(async move {
        match mode {
            Mode::Bare => serve_bare(bind).await,
            Mode::Stack => serve_stack(bind).await,
        }
    })
}
