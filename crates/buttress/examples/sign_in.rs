//! Run with `cargo run -p buttress --example sign_in`, then open <http://127.0.0.1:8000/> and
//! sign in as `demo` with the password `correct horse battery staple`.
//!
//! A sign-in form on the layers:
//!
//! - a session ([`Session`]) whose id and CSRF token are rotated on sign-in (`set_user`), and
//!   ended on sign-out (`flush`);
//! - the CSRF token ([`CsrfToken`]) in a hidden field of each form: a POST without it, or from
//!   another site, is refused with 403 before any handler runs;
//! - `/login` limited to 10 requests a minute per address ([`Buttress::limit_route`]), counted
//!   before the CSRF check, so refused requests count too;
//! - failed sign-ins counted per account and address with capped backoff
//!   ([`Buttress::login_throttle`]): after 5 failures, 429 with `Retry-After`;
//! - an inline `<style>` and `<script>` that the CSP allows through the response's nonce
//!   ([`CspNonce`]); an injected script without it does not run.
//!
//! **A demo, not an account system.** There is one hard-coded user, and the password is
//! compared as a SHA-256 digest in constant time. A real application keeps an argon2id hash per
//! user and answers an unknown account exactly as a wrong password, in the same time (the
//! reference portal, `crates/buttress-portal`, does both).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use buttress::csrf::CsrfToken;
use buttress::errors::{KeepBody, Problem};
use buttress::headers::CspNonce;
use buttress::proxy::ClientIp;
use buttress::ratelimit::{LoginThrottle, LoginVerdict};
use buttress::server::{shutdown_signal, ServeOptions, Server};
use buttress::session::{Session, SessionError};
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress::{Buttress, StartupError};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The demo's one account.
pub const DEMO_USER: &str = "demo";
/// Its password. A demo: a real application never keeps a password, only an argon2id hash.
pub const DEMO_PASSWORD: &str = "correct horse battery staple";
/// Requests to `/login` (form and sign-ins) per address and minute.
pub const LOGIN_ROUTE_LIMIT: &str = "10 per minute";

/// The sign-in app inside every protection.
pub fn app(settings: &Settings) -> Result<Stack, StartupError> {
    let buttress = Buttress::from_settings(settings)?.limit_route("/login", LOGIN_ROUTE_LIMIT)?;
    let routes = Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(log_in))
        .route("/logout", post(log_out))
        .with_state(buttress.login_throttle());
    buttress.apply(routes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env(None)?;
    let server = Server::bind(app(&settings)?, ServeOptions::from_settings(&settings)?).await?;
    eprintln!("listening on http://{}/", server.local_addr());
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

/// What the sign-in form posts (its `csrf_token` field is read by the CSRF step).
#[derive(Deserialize)]
struct LogIn {
    user: String,
    password: String,
}

async fn home(nonce: CspNonce, session: Session) -> Result<Html<String>, SessionError> {
    let body = match session.user().await? {
        Some(user) => {
            let token = CsrfToken::for_session(&session).await?;
            format!(
                r#"<p>Signed in as <b>{}</b>.</p>
<form method="post" action="/logout">
<input type="hidden" name="csrf_token" value="{}">
<button>Sign out</button>
</form>"#,
                escape(&user),
                token.masked()
            )
        }
        None => r#"<p>Not signed in. <a href="/login">Sign in</a></p>"#.to_owned(),
    };
    Ok(page(&nonce, &body))
}

async fn login_form(nonce: CspNonce, token: CsrfToken) -> Html<String> {
    form_page(&nonce, &token, None)
}

async fn log_in(
    State(throttle): State<LoginThrottle>,
    ClientIp(ip): ClientIp,
    nonce: CspNonce,
    session: Session,
    Form(form): Form<LogIn>,
) -> Result<Response, SessionError> {
    // Counted as a failure before the password is checked; given back below on success.
    let attempt = match throttle.check(&form.user, ip).await {
        Ok(LoginVerdict::Allowed(attempt)) => attempt,
        Ok(LoginVerdict::Wait { retry_after }) => return Ok(too_many(retry_after)),
        Err(_) => return Ok(unavailable()), // the counters' store is down: fail closed
    };
    if !is_demo_user(&form.user, &form.password) {
        let token = CsrfToken::for_session(&session).await?;
        let form = form_page(&nonce, &token, Some("Wrong user name or password."));
        return Ok((StatusCode::UNAUTHORIZED, KeepBody, form).into_response());
    }
    if throttle.succeeded(attempt).await.is_err() {
        return Ok(unavailable());
    }
    session.set_user(Some(DEMO_USER)).await?; // a new session id and CSRF token
    Ok(Redirect::to("/").into_response())
}

async fn log_out(session: Session) -> Result<Redirect, SessionError> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

/// Both fields compared as digests in constant time, and both always compared.
fn is_demo_user(user: &str, password: &str) -> bool {
    let same = |a: &str, b: &str| Sha256::digest(a).ct_eq(&Sha256::digest(b));
    (same(user, DEMO_USER) & same(password, DEMO_PASSWORD)).into()
}

fn too_many(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .with_kind("too-many-sign-ins")
        .with_detail(format!(
            "Too many failed sign-ins. Wait {secs} s and try again."
        ));
    ([(header::RETRY_AFTER, secs.to_string())], problem).into_response()
}

fn unavailable() -> Response {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_detail("Signing in is briefly unavailable. Please try again in a moment.")
        .into_response()
}

fn form_page(nonce: &CspNonce, token: &CsrfToken, error: Option<&str>) -> Html<String> {
    let error = error.map_or(String::new(), |e| format!(r#"<p class="error">{e}</p>"#));
    let body = format!(
        r#"<h1>Sign in</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{token}">
<label>User <input id="user" name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button>Sign in</button>
</form>
<script nonce="{nonce}">document.getElementById("user").focus();</script>"#,
        token = token.masked()
    );
    page(nonce, &body)
}

fn page(nonce: &CspNonce, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in demo</title>
<style nonce="{nonce}">body {{ font: 16px/1.5 sans-serif; max-width: 30rem; margin: 3rem auto }} .error {{ color: #b00 }} label {{ display: block }}</style>
</head><body>
{body}
</body></html>"#
    ))
}

/// HTML-escapes text for an element's content or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
