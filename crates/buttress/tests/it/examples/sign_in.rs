//! `examples/sign_in.rs`: a browser signs in with the form's token; a request without the token
//! or from another site is refused; failures and requests to `/login` are limited; the inline
//! script and style carry the response's CSP nonce.

use buttress_testkit::form::{form_body, scrape_token, update_cookie};

use super::{client, reply, serve};
use crate::support::{assert_secure_headers, settings, Reply, STRONG_KEY};

#[path = "../../../examples/sign_in.rs"]
#[allow(dead_code)] // `main`: reads the environment, serves, waits for Ctrl-C.
mod example;

/// Development over plain HTTP on loopback: the cookie has no `__Host-` prefix.
const COOKIE: &str = "session";

/// The example, served; and a browser's state on it.
struct Browser {
    server: buttress::server::Server,
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    async fn open() -> Browser {
        let s = settings(&[("BUTTRESS_BIND", "127.0.0.1:0"), ("SECRET_KEY", STRONG_KEY)]);
        let server = serve(example::app(&s).expect("starts"), &s).await;
        let base = format!("http://{}", server.local_addr());
        Browser {
            server,
            base,
            http: client(),
            cookie: None,
        }
    }

    fn keep(&mut self, r: &Reply) {
        let sets = r.headers.get_all("set-cookie").iter();
        update_cookie(
            &mut self.cookie,
            COOKIE,
            sets.filter_map(|v| v.to_str().ok()),
        );
    }

    async fn get(&mut self, path: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("{COOKIE}={c}"));
        }
        let r = reply(req.send().await.expect("GET")).await;
        self.keep(&r);
        r
    }

    /// A form POST as a browser sends it from the site's own page (with its `Origin`, unless
    /// `extra` names another).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)], extra: &[(&str, &str)]) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(fields));
        if !extra.iter().any(|(k, _)| *k == "origin") {
            req = req.header("origin", &self.base);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("{COOKIE}={c}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let r = reply(req.send().await.expect("POST")).await;
        self.keep(&r);
        r
    }

    /// The login form's CSRF token (and the session cookie that it is bound to).
    async fn login_token(&mut self) -> String {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        scrape_token(&form.body).expect("the form carries a csrf_token")
    }

    async fn sign_in(&mut self, password: &str, token: &str) -> Reply {
        let fields = [
            ("user", example::DEMO_USER),
            ("password", password),
            ("csrf_token", token),
        ];
        self.post("/login", &fields, &[]).await
    }
}

#[tokio::test]
async fn sign_in_with_the_token_works_rotates_the_session_and_signs_out() {
    let mut b = Browser::open().await;
    let token = b.login_token().await;
    let anonymous = b.cookie.clone().expect("the form started a session");

    let signed_in = b.sign_in(example::DEMO_PASSWORD, &token).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.header("location"), Some("/"));
    assert_ne!(
        b.cookie.as_deref(),
        Some(anonymous.as_str()),
        "sign-in gives a new session cookie (fixation)"
    );
    let home = b.get("/").await;
    assert!(
        home.body.contains("Signed in as <b>demo</b>"),
        "{}",
        home.body
    );

    let token = scrape_token(&home.body).expect("the sign-out form's token");
    let out = b.post("/logout", &[("csrf_token", &token)], &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(b.cookie, None, "sign-out clears the cookie");
    assert!(b.get("/").await.body.contains("Not signed in"));
    b.server.shutdown().await;
}

#[tokio::test]
async fn sign_in_without_the_token_or_from_another_site_is_refused() {
    let mut b = Browser::open().await;
    let token = b.login_token().await;
    let fields = [("user", "demo"), ("password", example::DEMO_PASSWORD)];

    let no_token = b.post("/login", &fields, &[]).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert_secure_headers(&no_token, "sign-in without a token");

    let mut forged = fields.to_vec();
    forged.push(("csrf_token", "forged-token"));
    assert_eq!(b.post("/login", &forged, &[]).await.status, 403);

    let mut good = fields.to_vec();
    good.push(("csrf_token", &token));
    let cross_site = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let attack = b.post("/login", &good, &cross_site).await;
    assert_eq!(attack.status, 403, "{}", attack.body);

    assert!(
        b.get("/").await.body.contains("Not signed in"),
        "no refused attempt signed anyone in"
    );
    b.server.shutdown().await;
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_with_backoff() {
    let mut b = Browser::open().await;
    let token = b.login_token().await;
    for i in 0..5 {
        let wrong = b.sign_in("not the password", &token).await;
        assert_eq!(wrong.status, 401, "failure {i}: {}", wrong.body);
        assert!(wrong.body.contains("Wrong user name or password."));
    }
    // The sixth attempt waits, even with the right password: the password is not checked.
    let waits = b.sign_in(example::DEMO_PASSWORD, &token).await;
    assert_eq!(waits.status, 429, "{}", waits.body);
    assert!(
        waits.body.contains("Too many failed sign-ins"),
        "{}",
        waits.body
    );
    let secs: u64 = waits
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=180).contains(&secs), "{secs}");
    assert!(b.get("/").await.body.contains("Not signed in"));
    b.server.shutdown().await;
}

#[tokio::test]
async fn the_login_route_is_limited_per_address() {
    let mut b = Browser::open().await;
    for i in 0..10 {
        assert_eq!(b.get("/login").await.status, 200, "request {i}");
    }
    let refused = b.get("/login").await;
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    let policy = refused
        .header("ratelimit-policy")
        .expect("RateLimit-Policy");
    assert!(policy.contains("q=10;w=60"), "{policy}");
    assert_secure_headers(&refused, "route limit 429");
    // Only the limited route: the home page is still served.
    assert_eq!(b.get("/").await.status, 200);
    b.server.shutdown().await;
}

#[tokio::test]
async fn inline_script_and_style_carry_the_csp_nonce() {
    let mut b = Browser::open().await;
    let form = b.get("/login").await;
    let csp = form.header("content-security-policy").expect("CSP");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in script-src");
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        form.body.contains(&format!("<script nonce=\"{nonce}\">")),
        "{}",
        form.body
    );
    assert!(form.body.contains(&format!("<style nonce=\"{nonce}\">")));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let again = b.get("/login").await;
    assert!(
        !again.body.contains(nonce),
        "a fresh nonce for every response"
    );
    b.server.shutdown().await;
}
