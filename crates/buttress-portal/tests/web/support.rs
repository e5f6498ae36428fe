//! The portal built by `web::build` (the whole Buttress stack) and an in-process "browser":
//! a cookie jar, the CSRF token scraped from the last page, `Origin` on every POST, and a
//! `ConnectInfo` peer address as the server would set it.

pub use buttress_testkit::form::{encode, form_body};
pub use buttress_testkit::mail::Message;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress_portal::db::Table;
use buttress_portal::web::{build, BuildOptions};
use buttress_portal::{PasswordParams, Portal};

pub const STRONG_KEY: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
pub const PASSWORD: &str = "correct horse battery staple";
pub const HOST: &str = "localhost";
pub const ORIGIN: &str = "http://localhost";

/// A built portal over a fresh database in its own data directory.
pub struct TestApp {
    pub router: Stack,
    pub portal: Portal,
    /// Its data directory, removed when the last instance on it is dropped.
    dir: Arc<tempfile::TempDir>,
}

pub fn fresh_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-portal-{what}-"))
        .tempdir()
        .expect("temp dir")
}

/// Development settings (plain HTTP on loopback, as `buttress serve` on a fresh clone) with a
/// fixed key, the data directory `dir` and, if given, a PostgreSQL URL.
pub fn settings(
    dir: &std::path::Path,
    database_url: Option<&str>,
    extra: &[(&str, &str)],
) -> Settings {
    let dir = dir.to_str().expect("utf-8").to_owned();
    let mut vars: Vec<(String, String)> = vec![
        ("SECRET_KEY".into(), STRONG_KEY.into()),
        ("BUTTRESS_DATA_DIR".into(), dir),
        // The global per-address limit (200 per day; 50 per hour) is the library's and tested
        // there; the portal's own limits on /login and /signup stay on.
        ("BUTTRESS_RATELIMIT_DEFAULT".into(), "none".into()),
    ];
    if let Some(url) = database_url {
        vars.push(("DATABASE_URL".into(), url.into()));
    }
    for (k, v) in extra {
        vars.push(((*k).into(), (*v).into()));
    }
    Settings::loader().env_vars(vars).load().expect("settings")
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        TestApp::open(None).await
    }

    pub async fn open(database_url: Option<&str>) -> TestApp {
        TestApp::open_with(database_url, &[]).await
    }

    /// With extra settings (e.g. Redis for sessions and limits).
    pub async fn open_with(database_url: Option<&str>, extra: &[(&str, &str)]) -> TestApp {
        TestApp::open_in(
            Arc::new(fresh_dir("web")),
            database_url,
            extra,
            BuildOptions::default(),
        )
        .await
    }

    /// In data directory `dir` (a second instance on the same SQLite file: the same `dir`),
    /// with `options` (fast password hashing unless they say otherwise).
    pub async fn open_in(
        dir: Arc<tempfile::TempDir>,
        database_url: Option<&str>,
        extra: &[(&str, &str)],
        options: BuildOptions,
    ) -> TestApp {
        let settings = settings(dir.path(), database_url, extra);
        let options = BuildOptions {
            password_params: Some(
                options
                    .password_params
                    .unwrap_or_else(PasswordParams::insecure_fast_for_tests),
            ),
            ..options
        };
        let (router, portal) = build(&settings, options).await.expect("portal builds");
        TestApp {
            router,
            portal,
            dir,
        }
    }

    /// A new browser on its own loopback address (so per-address limits see one client each).
    pub fn agent(&self) -> Agent {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let peer = format!("127.1.{}.{}:40000", (n / 250) % 250, n % 250 + 1);
        let mut agent = Agent::new(self.router.clone(), &peer, "TestBrowser/1.0");
        agent.outbox = Some(self.dir.path().join("outbox"));
        agent
    }

    /// The messages the Development outbox holds.
    pub fn outbox(&self) -> Vec<Message> {
        buttress_testkit::mail::read_dir(&self.dir.path().join("outbox"))
    }

    pub async fn count(&self, table: Table) -> u64 {
        self.portal.db.count_rows(table).await.expect("count")
    }
}

pub use buttress_testkit::reply::Reply;

/// One browser: its cookie jar (the session cookie), the last page's CSRF token, its address.
#[derive(Clone)]
pub struct Agent {
    router: Stack,
    pub cookie: Option<String>,
    pub token: Option<String>,
    pub peer: SocketAddr,
    pub user_agent: String,
    /// The Development outbox this agent reads its mail from.
    pub outbox: Option<PathBuf>,
}

impl Agent {
    pub fn new(router: Stack, peer: &str, user_agent: &str) -> Agent {
        Agent {
            router,
            cookie: None,
            token: None,
            peer: peer.parse().expect("peer"),
            user_agent: user_agent.into(),
            outbox: None,
        }
    }

    /// Sends `req` with the cookie and peer; keeps the new cookie and token.
    pub async fn send(&mut self, req: Request<Body>) -> Reply {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let headers = req.headers_mut();
        headers.insert("host", HOST.parse().expect("host"));
        headers.insert("user-agent", self.user_agent.parse().expect("ua"));
        if let Some(c) = &self.cookie {
            headers.insert("cookie", format!("session={c}").parse().expect("cookie"));
        }
        let reply = buttress_testkit::reply::oneshot(self.router.clone(), req).await;
        buttress_testkit::form::remember(
            &mut self.cookie,
            &mut self.token,
            "session",
            reply
                .headers
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().expect("ascii")),
            &reply.body,
        );
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut b = Request::get(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    /// A same-origin form POST carrying the last page's token, as a browser submits a form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let token = self.token.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &form_body(&all), &[("origin", ORIGIN)])
            .await
    }

    /// A form POST with exactly this body and these headers.
    pub async fn post_raw(&mut self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut b = Request::post(path);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_owned())).expect("request"))
            .await
    }

    /// A JSON POST to the API with the token in `X-CSRF-Token`.
    pub async fn post_json(&mut self, path: &str, doc: &serde_json::Value) -> Reply {
        let mut b = Request::post(path)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("origin", ORIGIN);
        if let Some(token) = &self.token {
            b = b.header("x-csrf-token", token);
        }
        let req = b.body(Body::from(doc.to_string())).expect("request");
        self.send(req).await
    }

    pub async fn sign_up(&mut self, email: &str, password: &str) -> Reply {
        self.get("/signup").await.assert_status(200);
        self.post("/signup", &[("email", email), ("password", password)])
            .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        self.get("/login").await.assert_status(200);
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }

    /// Signs up, confirms the address from the mailed link, and signs in; panics unless all
    /// of it works.
    pub async fn account(&mut self, email: &str) {
        self.unverified_account(email).await;
        self.verify_from_mail(email).await;
    }

    /// Signs up and in without confirming the address.
    pub async fn unverified_account(&mut self, email: &str) {
        self.sign_up(email, PASSWORD)
            .await
            .assert_redirect("/login");
        self.sign_in(email, PASSWORD).await.assert_redirect("/");
        self.get("/").await.assert_status(200);
    }

    /// The newest link to `to` starting with `http://localhost{path}?`, waiting up to 10 s for
    /// the mail (it is sent after the answer).
    pub async fn mailed_link(&self, to: &str, path: &str) -> String {
        let dir = self.outbox.clone().expect("an agent of a TestApp");
        wait_for_link(|| buttress_testkit::mail::read_dir(&dir), to, path).await
    }

    /// Follows the verification link mailed to `email`: the page, then its button.
    pub async fn verify_from_mail(&mut self, email: &str) {
        let link = self.mailed_link(email, "/verify").await;
        self.follow_link(&link).await.assert_status(200);
        let token = link.split("token=").nth(1).expect("token").to_owned();
        let r = self.post("/verify", &[("token", &token)]).await;
        assert_eq!(r.status.as_u16(), 303, "{}", r.body);
    }

    /// GETs a mailed link's path and query.
    pub async fn follow_link(&mut self, link: &str) -> Reply {
        let path = link
            .strip_prefix("http://localhost")
            .expect("a link to the portal");
        self.get(path).await
    }

    /// Whether this agent is signed in (the profile page answers instead of redirecting).
    pub async fn signed_in(&mut self) -> bool {
        let r = self.get("/profile").await;
        match r.status.as_u16() {
            200 => true,
            303 => false,
            s => panic!("/profile answered {s}: {}", r.body),
        }
    }

    /// Saves a donor profile; panics unless it is accepted.
    pub async fn profile(&mut self, name: &str, group: &str, city: &str) {
        self.get("/profile").await.assert_status(200);
        self.post(
            "/profile",
            &[
                ("display_name", name),
                ("blood_group", group),
                ("city", city),
                ("phone", "+44 7700 900123"),
                ("last_donation", ""),
                ("available", "on"),
            ],
        )
        .await
        .assert_redirect("/profile");
    }

    /// Posts a request through the form; returns its id.
    pub async fn request(&mut self, group: &str, city: &str, hospital: &str) -> i64 {
        self.get("/requests/new").await.assert_status(200);
        let r = self
            .post(
                "/requests/new",
                &[
                    ("blood_group", group),
                    ("city", city),
                    ("hospital", hospital),
                    ("units", "2"),
                    ("urgency", "urgent"),
                ],
            )
            .await;
        assert_eq!(r.status.as_u16(), 303, "{}", r.body);
        r.location()
            .strip_prefix("/requests/")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("location {}", r.location()))
    }
}

/// Counts of the three tables.
pub async fn rows(app: &TestApp) -> [u64; 3] {
    [
        app.count(Table::Users).await,
        app.count(Table::Donors).await,
        app.count(Table::BloodRequests).await,
    ]
}

/// The newest link to `to` starting with `http://localhost{path}?` among `messages()`, waiting
/// up to 10 s.
pub async fn wait_for_link(messages: impl Fn() -> Vec<Message>, to: &str, path: &str) -> String {
    let prefix = format!("http://localhost{path}?");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = messages()
            .into_iter()
            .filter(|m| m.to.contains(to))
            .flat_map(|m| m.links(&prefix))
            .last();
        if let Some(link) = found {
            return link;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to {to} with a {prefix} link: {:?}",
            messages()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
