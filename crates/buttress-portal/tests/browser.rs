//! The portal in a real browser: headless Chromium driven over WebDriver (fantoccini) against
//! the portal served on a free loopback port exactly as `buttress serve` serves it.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test is skipped with a
//! loud message, except under CI (`CI` set), where it fails.
//!
//! What it checks, as a user and as an attacker would meet it:
//! sign up, confirm the address by following the link from the mailed message (the
//! Development outbox), sign in, edit the profile, search (no phone numbers), post a request,
//! reveal a matching donor's number (and see it in that donor's log), revoke a session, and
//! erase the account;
//! a donor named with HTML/script payloads is shown as text and no script runs; the CSP blocks
//! a script injected into the page without the nonce (and runs one with it); a form on another
//! origin that auto-submits a POST gets a 403 and creates no row; the session cookie is not
//! readable from `document.cookie`. A screenshot of the search page is saved to
//! `tests/artifacts/search.png`.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use buttress::server::{ServeOptions, Server};
use buttress::settings::Settings;
use buttress_portal::db::Table;
use buttress_portal::web::{build, BuildOptions};
use buttress_portal::{PasswordParams, Portal};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const KEY: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
const PASSWORD: &str = "correct horse battery staple";
/// A donor name that would run script if it were not escaped.
const XSS_NAME: &str = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Chromium and chromedriver, or `None` after a loud skip message (a panic under CI).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let msg = format!(
                "browser tests need chromium ({}) and chromedriver ({}): apt-get install chromium chromium-driver",
                if c.is_some() { "found" } else { "MISSING" },
                if d.is_some() { "found" } else { "MISSING" },
            );
            assert!(std::env::var_os("CI").is_none(), "CI is set: {msg}");
            eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!("!!! SKIPPED: {msg}");
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-browser-{what}-"))
        .tempdir()
        .expect("temp dir")
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(program: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium.to_str().expect("utf-8"),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

/// The portal served on a free loopback port through the whole stack.
struct Served {
    server: Option<Server>,
    portal: Portal,
    url: String,
    data: PathBuf,
}

async fn serve_portal(data: &Path) -> Served {
    let settings = Settings::loader()
        .env_vars([
            ("SECRET_KEY", KEY),
            ("BUTTRESS_BIND", "127.0.0.1:0"),
            // One browser makes more than the global 50 requests per hour per address.
            ("BUTTRESS_RATELIMIT_DEFAULT", "none"),
            ("BUTTRESS_DATA_DIR", data.to_str().expect("utf-8")),
        ])
        .load()
        .expect("settings");
    let (app, portal) = build(
        &settings,
        BuildOptions {
            password_params: Some(PasswordParams::insecure_fast_for_tests()),
            ..BuildOptions::default()
        },
    )
    .await
    .expect("portal");
    let server = Server::bind(
        app,
        ServeOptions::from_settings(&settings).expect("options"),
    )
    .await
    .expect("bind");
    let url = format!("http://127.0.0.1:{}", server.local_addr().port());
    Served {
        server: Some(server),
        portal,
        url,
        data: data.to_path_buf(),
    }
}

/// A page on another origin (`localhost` on another port: another site than `127.0.0.1`)
/// whose form posts a blood request to the portal as soon as it loads.
async fn serve_attacker(portal_url: &str) -> (String, tokio::task::JoinHandle<()>) {
    let page = format!(
        r#"<!doctype html><html><body><h1>Win a prize</h1>
<form id="f" method="post" action="{portal_url}/requests/new">
<input name="blood_group" value="AB-"><input name="city" value="Nowhere">
<input name="hospital" value="Forged Hospital"><input name="units" value="9">
<input name="urgency" value="critical"><input name="csrf_token" value="guessed">
</form><script>document.getElementById("f").submit();</script></body></html>"#
    );
    let app = axum::Router::new().route("/", get(move || async move { Html(page.clone()) }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind attacker");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://localhost:{port}/"), task)
}

async fn wait_for_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = c.current_url().await.expect("url");
        if url.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "expected {path}, at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the first element matching `css`, waiting up to 15 s for it to appear: after a
/// form posts back to the page it came from, the path alone cannot tell the new page from the
/// old one (the sessions page's revoke did, and the check raced the navigation).
async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script")
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn submit(c: &Client, form_css: &str) {
    c.find(Locator::Css(&format!("{form_css} button[type=submit]")))
        .await
        .unwrap_or_else(|e| panic!("{form_css}: {e}"))
        .click()
        .await
        .expect("submit");
}

/// Signs in from outside the browser (another device), returns its session cookie pair.
async fn second_device(base: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("SecondDevice/1.0")
        .build()
        .expect("client");
    let form = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET /login");
    let cookie = cookie_pair(&form);
    let html = form.text().await.expect("body");
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_owned();
    let body = format!(
        "csrf_token={token}&email=ada%40example.org&password={}",
        PASSWORD.replace(' ', "%20")
    );
    let res = http
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("origin", base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST /login");
    assert_eq!(res.status(), 303);
    cookie_pair(&res)
}

fn cookie_pair(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned()
}

async fn device_signed_in(base: &str, cookie: &str) -> bool {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}/profile"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /profile");
    res.status() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_headless_chromium() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let data_dir = temp_dir("data");
    let profile_dir = temp_dir("profile");
    let (data, profile) = (data_dir.path(), profile_dir.path());
    let mut served = serve_portal(data).await;
    buttress_portal::seed::seed_demo(&served.portal.db, 80)
        .await
        .expect("seed");
    let base = served.url.clone();
    let driver = start_driver(&chromedriver);
    let c = browser(&driver, &chromium, profile).await;

    let result = run(&c, &served, &base).await;
    let _ = c.close().await;
    drop(driver);
    if let Some(server) = served.server.take() {
        server.shutdown().await;
    }
    served.portal.db.close().await;
    result.unwrap_or_else(|e| panic!("{e}"));
}

/// The newest link to `to` under `base` + `path` in the Development outbox of `data`,
/// waiting for the mail (it is sent after the answer).
async fn mailed_link(data: &Path, to: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = buttress_testkit::mail::read_dir(&data.join("outbox"))
            .into_iter()
            .filter(|m| m.to.contains(to))
            .flat_map(|m| m.links(prefix))
            .last();
        if let Some(link) = found {
            return link;
        }
        assert!(Instant::now() < deadline, "no mail to {to} with {prefix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(c: &Client, served: &Served, base: &str) -> Result<(), String> {
    // Sign up: the same message whatever happened, and not signed in.
    c.goto(&format!("{base}/signup"))
        .await
        .map_err(|e| e.to_string())?;
    assert!(text_of(c, "#consent-title").await.contains("What we keep"));
    fill(c, "#email", "ada@example.org").await;
    fill(c, "#password", PASSWORD).await;
    submit(c, "form[action='/signup']").await;
    wait_for_path(c, "/login").await;
    assert!(text_of(c, ".flash")
        .await
        .contains("If this email address was not registered yet"));

    // Verify by link: the mailed message's link, then its button.
    let link = mailed_link(&served.data, "ada@example.org", &format!("{base}/verify?")).await;
    c.goto(&link).await.map_err(|e| e.to_string())?;
    submit(c, "form[action='/verify']").await;
    wait_for_path(c, "/login").await;
    assert!(text_of(c, ".flash")
        .await
        .contains("Your address is confirmed"));

    // Sign in; the session cookie is HttpOnly: scripts cannot read it.
    fill(c, "#email", "ada@example.org").await;
    fill(c, "#password", PASSWORD).await;
    submit(c, "form[action='/login']").await;
    wait_for_path(c, "/").await;
    assert!(text_of(c, ".flash").await.contains("You are signed in."));
    let cookies = js(c, "return document.cookie;").await;
    assert!(
        !cookies.as_str().unwrap_or("").contains("session"),
        "document.cookie = {cookies}"
    );
    let jar = c.get_all_cookies().await.map_err(|e| e.to_string())?;
    let session = jar
        .iter()
        .find(|k| k.name() == "session")
        .expect("session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");

    // Profile with a hostile name.
    c.goto(&format!("{base}/profile"))
        .await
        .map_err(|e| e.to_string())?;
    fill(c, "#display_name", XSS_NAME).await;
    c.find(Locator::Css("#blood_group"))
        .await
        .map_err(|e| e.to_string())?
        .select_by_value("O-")
        .await
        .map_err(|e| e.to_string())?;
    fill(c, "#city", "London").await;
    fill(c, "#phone", "+44 7700 900777").await;
    submit(c, "form[action='/profile']").await;
    wait_for_path(c, "/profile").await;
    assert!(text_of(c, ".flash")
        .await
        .contains("Your profile is saved."));

    // Search through the form: the payload is text, no script ran.
    c.goto(&format!("{base}/donors"))
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("#blood_group"))
        .await
        .map_err(|e| e.to_string())?
        .select_by_value("O-")
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("#mode"))
        .await
        .map_err(|e| e.to_string())?
        .select_by_value("exact")
        .await
        .map_err(|e| e.to_string())?;
    fill(c, "#city", "london").await;
    submit(c, "form[action='/donors']").await;
    wait_for_path(c, "/donors").await;
    // The form page is `/donors` too: wait for the results, not the path (the list was read
    // from the form page once, before the results page replaced it, and came out empty).
    text_of(c, "td[data-label=Name]").await;
    let names: Vec<String> = {
        let mut v = Vec::new();
        for e in c
            .find_all(Locator::Css("td[data-label=Name]"))
            .await
            .map_err(|e| e.to_string())?
        {
            v.push(e.text().await.map_err(|e| e.to_string())?);
        }
        v
    };
    assert!(
        names.iter().any(|n| n == XSS_NAME),
        "shown as text: {names:?}"
    );
    assert_eq!(js(c, "return typeof window.__xss;").await, "undefined");
    assert_eq!(
        js(c, "return document.querySelectorAll('img').length;").await,
        0
    );
    let scripts = js(
        c,
        "return Array.from(document.querySelectorAll('script')).map(s => [s.nonce.length > 0, s.textContent.includes('__xss')]);",
    )
    .await;
    assert_eq!(
        scripts,
        json!([[true, false]]),
        "one script, ours, with the nonce"
    );
    assert!(
        !text_of(c, "table.results").await.contains("+447700900"),
        "no phone numbers in the search, signed in or not"
    );

    // The CSP: a script injected without the nonce is blocked; with the nonce it runs.
    let blocked = js(
        c,
        "window.__csp_violations = 0;
         document.addEventListener('securitypolicyviolation', () => window.__csp_violations++);
         const s = document.createElement('script');
         s.textContent = 'window.__injected = 1';
         document.body.appendChild(s);
         return typeof window.__injected;",
    )
    .await;
    assert_eq!(
        blocked, "undefined",
        "inline script without the nonce blocked"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        js(c, "return window.__csp_violations;")
            .await
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    let allowed = js(
        c,
        "const s = document.createElement('script');
         s.nonce = document.querySelector('script[nonce]').nonce;
         s.textContent = 'window.__nonced = 1';
         document.body.appendChild(s);
         return typeof window.__nonced;",
    )
    .await;
    assert_eq!(allowed, "number", "the nonce is what makes the difference");

    // A screenshot of the search page (demo donors, signed in).
    c.goto(&format!(
        "{base}/donors?blood_group=AB%2B&mode=compatible&city=Manchester"
    ))
    .await
    .map_err(|e| e.to_string())?;
    let png = c.screenshot().await.map_err(|e| e.to_string())?;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    std::fs::write(artifacts.join("search.png"), &png).map_err(|e| e.to_string())?;
    assert!(png.starts_with(b"\x89PNG"));

    // Post a request; matching donors are listed.
    c.goto(&format!("{base}/requests/new"))
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("#blood_group"))
        .await
        .map_err(|e| e.to_string())?
        .select_by_value("AB+")
        .await
        .map_err(|e| e.to_string())?;
    fill(c, "#hospital", "Royal London Hospital").await;
    fill(c, "#city", "London").await;
    fill(c, "#units", "2").await;
    submit(c, "form[action='/requests/new']").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !c
        .current_url()
        .await
        .map_err(|e| e.to_string())?
        .path()
        .starts_with("/requests/")
        || c.current_url().await.map_err(|e| e.to_string())?.path() == "/requests/new"
    {
        assert!(Instant::now() < deadline, "no redirect to the request");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text_of(c, ".flash")
        .await
        .contains("Your request is posted."));
    assert!(text_of(c, "#matches-title")
        .await
        .contains("Eligible donors who can give"));

    // Reveal one matching donor's number: shown on the request, logged for the donor.
    assert!(!c
        .source()
        .await
        .map_err(|e| e.to_string())?
        .contains("tel:+447700900"));
    let request_url = c.current_url().await.map_err(|e| e.to_string())?;
    c.find(Locator::Css("form.reveal button[type=submit]"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    assert!(text_of(c, ".flash")
        .await
        .contains("The number is shown below"));
    let phone = text_of(c, "a.phone").await;
    assert!(phone.starts_with("+447700900"), "{phone}");
    let log = served.portal.db.pool().clone();
    let donor_id: i64 = sqlx::Row::get(
        &sqlx::query("SELECT donor_id FROM reveals")
            .fetch_one(&log)
            .await
            .map_err(|e| e.to_string())?,
        0,
    );
    let entries = served
        .portal
        .db
        .reveals_of_donor(donor_id)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].who, "ada@example.org");
    let _ = request_url;
    assert_eq!(
        served
            .portal
            .db
            .count_rows(Table::BloodRequests)
            .await
            .map_err(|e| e.to_string())?,
        1
    );

    // A cross-site form that auto-submits: 403, and no row.
    let (evil, evil_task) = serve_attacker(base).await;
    c.goto(&evil).await.map_err(|e| e.to_string())?;
    wait_for_path(c, "/requests/new").await;
    let page = c.source().await.map_err(|e| e.to_string())?;
    assert!(page.contains("403"), "refused: {page}");
    assert!(
        page.contains("cross-site") || page.contains("another site"),
        "{page}"
    );
    evil_task.abort();
    assert_eq!(
        served
            .portal
            .db
            .count_rows(Table::BloodRequests)
            .await
            .map_err(|e| e.to_string())?,
        1,
        "the forged request was not created"
    );

    // Sessions: another device signs in; revoke it from the account page.
    let other = second_device(base).await;
    assert!(device_signed_in(base, &other).await);
    c.goto(&format!("{base}/account/sessions"))
        .await
        .map_err(|e| e.to_string())?;
    let table = text_of(c, "table.results").await;
    assert!(
        table.contains("SecondDevice/1.0") && table.contains("this device"),
        "{table}"
    );
    c.find(Locator::Css("tr:not(.current) button[type=submit]"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    wait_for_path(c, "/account/sessions").await;
    assert!(text_of(c, ".flash")
        .await
        .contains("That session is signed out."));
    assert!(!text_of(c, "table.results").await.contains("SecondDevice"));
    assert!(
        !device_signed_in(base, &other).await,
        "the other device is signed out"
    );

    // Erase the account (the sign-out button is covered by the in-process flows: one more
    // sign-in here would pass the 5-per-minute limit on /login): the password again, then
    // the confirmation dialog.
    c.goto(&format!("{base}/account/delete"))
        .await
        .map_err(|e| e.to_string())?;
    fill(c, "#password", PASSWORD).await;
    submit(c, "form[action='/account/delete']").await;
    c.accept_alert().await.map_err(|e| e.to_string())?;
    assert!(text_of(c, "h1").await.contains("Your account is deleted"));
    assert!(
        c.find(Locator::Css("a[href='/login']")).await.is_ok(),
        "signed out"
    );
    for table in [Table::Users, Table::Donors, Table::BloodRequests] {
        let left = served
            .portal
            .db
            .count_rows(table)
            .await
            .map_err(|e| e.to_string())?;
        let want = if table == Table::BloodRequests { 0 } else { 80 };
        assert_eq!(left, want, "{table:?}");
    }
    let gone = served
        .portal
        .accounts
        .authenticate("ada@example.org", PASSWORD)
        .await
        .map_err(|e| e.to_string())?;
    assert!(gone.is_none(), "the account cannot sign in");
    c.goto(&format!("{base}/profile"))
        .await
        .map_err(|e| e.to_string())?;
    wait_for_path(c, "/login").await;
    Ok(())
}
