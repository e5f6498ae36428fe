//! Servers the tests scan, all on free loopback ports: the hardened Buttress stack, a
//! deliberately weak app, and edge cases (redirect chains and loops, a huge body, a slow server).

use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Path, Query, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use buttress::headers::CspNonce;
use buttress::server::{ServeOptions, Server};
use buttress::settings::Settings;
use buttress::Buttress;
use buttress_audit::scan::Options;

pub const STRONG_KEY: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";

/// The app behind the hardened stack. One function, so the reference portal can take its place.
pub fn target_app() -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/healthz", get(|| async { "ok" }))
}

async fn landing(nonce: CspNonce) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hardened</title>\
         <style nonce=\"{nonce}\">body{{font:16px sans-serif}}</style></head><body><h1>Hardened</h1>\
         <a href=\"/healthz\">health</a><script nonce=\"{nonce}\">document.title += '.';</script></body></html>"
    ))
}

/// The Buttress stack over [`target_app`], with development TLS and a redirect listener.
pub struct Hardened {
    pub server: Server,
    /// Its data directory, removed on drop.
    pub dir: tempfile::TempDir,
    pub url: String,
    pub http_port: u16,
}

impl Hardened {
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("dev-tls/cert.pem")
    }

    /// Scan options that trust the development certificate and test the redirect listener.
    pub fn options(&self) -> Options {
        let mut o = Options::new();
        o.ca_cert_pem = Some(std::fs::read(self.cert()).expect("dev cert written"));
        o.http_port = Some(self.http_port);
        o
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-audit-{name}-"))
        .tempdir()
        .expect("temp dir")
}

pub async fn hardened(name: &str) -> Hardened {
    hardened_with(name, target_app()).await
}

/// The Buttress stack (development TLS, redirect listener) over `app`.
pub async fn hardened_with(name: &str, app: Router) -> Hardened {
    let dir = temp_dir(name);
    let settings = Settings::loader()
        .env_vars([
            ("BUTTRESS_BIND", "127.0.0.1:0"),
            ("BUTTRESS_HTTP_BIND", "127.0.0.1:0"),
            ("BUTTRESS_DEV_TLS", "true"),
            (
                "BUTTRESS_DATA_DIR",
                dir.path().to_str().expect("utf-8 path"),
            ),
            ("SECRET_KEY", STRONG_KEY),
        ])
        .load()
        .expect("settings");
    let app = Buttress::from_settings(&settings)
        .expect("stack")
        .apply(app)
        .expect("stack");
    let opts = ServeOptions::from_settings(&settings).expect("serve options");
    let server = Server::bind(app, opts).await.expect("binds");
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let http_port = server.http_addr().expect("redirect listener").port();
    Hardened {
        server,
        dir,
        url,
        http_port,
    }
}

/// Serves `app` on a free loopback port over plain HTTP; returns its base URL.
pub async fn serve(app: Router) -> String {
    serve_on(app, [127, 0, 0, 1].into()).await
}

/// Serves `app` on a free port of `ip` over plain HTTP; returns its base URL.
pub async fn serve_on(app: Router, ip: std::net::IpAddr) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// The port of a base URL from [`serve`].
pub fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// What a [`recorded`] app saw: one line per request, `METHOD path authorization` (`-` when
/// there was no Authorization header).
#[derive(Clone, Default)]
pub struct Seen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Seen {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }

    pub fn push(&self, line: String) {
        self.0.lock().expect("not poisoned").push(line);
    }
}

async fn record(
    axum::extract::State(seen): axum::extract::State<Seen>,
    req: Request,
    next: Next,
) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let line = format!("{} {} {auth}", req.method(), req.uri().path());
    seen.0.lock().expect("not poisoned").push(line);
    next.run(req).await
}

/// `app`, recording every request it answers in `seen`.
pub fn recorded(app: Router, seen: &Seen) -> Router {
    app.layer(middleware::from_fn_with_state(seen.clone(), record))
}

const WERKZEUG: &str = "<!doctype html><html><head><title>ValueError: invalid literal for int() // Werkzeug Debugger</title></head>\
<body><h1>ValueError</h1><div class=\"traceback\"><h3>Traceback (most recent call last)</h3>\
<pre>File \"/srv/app/views.py\", line 12, in item\n    return ITEMS[int(request.args['id'])]</pre></div>\
<p>The debugger caught an exception in your WSGI application.</p></body></html>";

const RUST_PANIC: &str = "thread 'tokio-runtime-worker' panicked at src/routes.rs:42:9:\n\
called `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n";

/// Every weakness in one app: no security headers, a version banner, an insecure session cookie,
/// a tokenless form that accepts cross-site posts, CORS reflecting any origin with credentials,
/// a Werkzeug debugger on bad input, a Rust panic on 404, a directory listing, no rate limit.
pub fn weak_app() -> Router {
    Router::new()
        .route("/", get(weak_home))
        .route("/comment", post(|| async { "saved" }))
        .route("/item", get(weak_item))
        .route(
            "/static/",
            get(|| async { Html("<html><head><title>Index of /static</title></head><body><h1>Index of /static</h1><a href=\"app.js\">app.js</a></body></html>") }),
        )
        .route("/api/ping", get(|| async { "pong" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, RUST_PANIC) })
        .layer(middleware::from_fn(weak_headers))
}

async fn weak_home() -> impl IntoResponse {
    (
        [("set-cookie", "session=4f9c2a1b7e; Path=/")],
        Html(
            "<html><head><title>Weak</title></head><body><h1>Guestbook</h1>\
             <form method=\"post\" action=\"/comment\"><input name=\"title\"><textarea name=\"body\"></textarea>\
             <button>Send</button></form><a href=\"/item?id=1\">item 1</a></body></html>",
        ),
    )
}

async fn weak_item(Query(q): Query<Vec<(String, String)>>) -> Response {
    let id = q.iter().find(|(k, _)| k == "id").map(|(_, v)| v.as_str());
    match id.map(str::parse::<u32>) {
        Some(Ok(n)) => Html(format!("<p>item {n}</p>")).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Html(WERKZEUG)).into_response(),
    }
}

async fn weak_headers(req: Request, next: Next) -> Response {
    let origin = req.headers().get("origin").cloned();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("server", HeaderValue::from_static("Apache/2.4.1"));
    h.insert("x-powered-by", HeaderValue::from_static("PHP/5.3.3"));
    if let Some(o) = origin {
        h.insert("access-control-allow-origin", o);
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    res
}

/// Redirect chains (`/chain/N` → … → `/chain/0`), a loop (`/loop/a` ⇄ `/loop/b`), a huge body
/// (`/huge`, 16 MiB), a slow page (`/slow`, 10 s) and an off-host redirect (`/away`).
pub fn edge_app() -> Router {
    Router::new()
        .route(
            "/chain/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    Html("<p>end of the chain</p>".to_owned()).into_response()
                } else {
                    Redirect::temporary(&format!("/chain/{}", n - 1)).into_response()
                }
            }),
        )
        .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
        .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
        .route(
            "/huge",
            get(|| async { Html("<p>".to_owned() + &"x".repeat(16 << 20)) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "finally"
            }),
        )
        .route(
            "/away",
            get(|| async { Redirect::temporary("https://elsewhere.invalid/") }),
        )
}

/// A page that answers 429 with `Retry-After: 60` from the 6th request on (`/login`), and one
/// that answers 429 without it (`/bare`).
pub fn limited_app() -> Router {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicU32::new(0));
    let bare = Arc::new(AtomicU32::new(0));
    Router::new()
        .route(
            "/login",
            get(move || {
                let hits = hits.clone();
                async move {
                    if hits.fetch_add(1, Ordering::SeqCst) >= 5 {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", "60")],
                            "slow down",
                        )
                            .into_response()
                    } else {
                        "login".into_response()
                    }
                }
            }),
        )
        .route(
            "/bare",
            get(move || {
                let bare = bare.clone();
                async move {
                    if bare.fetch_add(1, Ordering::SeqCst) >= 2 {
                        StatusCode::TOO_MANY_REQUESTS.into_response()
                    } else {
                        "ok".into_response()
                    }
                }
            }),
        )
        .route("/", get(|| async { Html("<p>home</p>") }))
}
