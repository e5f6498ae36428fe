//! Sign-up, sign-in and sign-out.
//!
//! * Sign-up answers a new and an already registered address with the same redirect and the
//!   same message ([`SignUpOutcome::MESSAGE`]) and never signs the new account in; the
//!   verification link (or, for an address that has an account, a notice) is mailed after the
//!   answer ([`super::links`]).
//! * Sign-in gives one message ([`render::LOG_IN_FAILED`]) for every failure and binds the
//!   session to the user with [`Session::set_user_checked`], which rotates the session id and
//!   CSRF secret: the pre-login cookie and tokens stop working. The account's credentials
//!   epoch is read ([`Session::credentials_epoch`]) after the address is looked up and
//!   *before* the password is checked ([`Accounts::begin_sign_in`], then
//!   [`Accounts::finish_sign_in`]), so a sign-in that verified the old password while the
//!   password was changed, reset or "signed out everywhere" is anonymous from its first
//!   request, on every instance. The order stays: login throttle, lookup, epoch, password.
//!
//! [`Accounts::begin_sign_in`]: crate::accounts::Accounts::begin_sign_in
//! [`Accounts::finish_sign_in`]: crate::accounts::Accounts::finish_sign_in
//! * Sign-out is a POST (CSRF-checked) that deletes the session record and clears the cookie.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use buttress::errors::{KeepBody, Problem};
use buttress::headers::CspNonce;
use buttress::proxy::ClientIp;
use buttress::ratelimit::LoginVerdict;
use buttress::session::Session;

use super::{invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, Viewer};
use crate::accounts::SignUpOutcome;
use crate::error::Error;
use crate::render::{self, paths, FlashKind};
use crate::validate::SignUpInput;

/// The sign-in form's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LogInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn sign_up_form(nonce: CspNonce, viewer: Viewer) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    Ok(page(render::sign_up(&parts.ctx(), "", &[])?))
}

pub(crate) async fn sign_up(
    State(state): State<AppState>,
    nonce: CspNonce,
    origin: buttress::proxy::RequestOrigin,
    viewer: Viewer,
    Form(input): Form<SignUpInput>,
) -> AppResult {
    match state.portal.accounts.sign_up(&input).await {
        // Both outcomes look the same: same redirect, same message, nobody signed in; the
        // mail (a link, or "you already have an account") goes out after the answer.
        Ok(SignUpOutcome::Created(_) | SignUpOutcome::AlreadyRegistered) => {
            super::links::follow_up(
                &state,
                super::links::Follow::SignUp,
                input.email.clone(),
                super::links::base_url(&state, &origin),
            );
            set_flash(&viewer.session, FlashKind::Success, SignUpOutcome::MESSAGE).await?;
            Ok(see_other(paths::LOG_IN))
        }
        Err(Error::Invalid(errors)) => {
            let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
            Ok(invalid_form(render::sign_up(
                &parts.ctx(),
                &input.email,
                &errors,
            )?))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn log_in_form(nonce: CspNonce, viewer: Viewer) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    Ok(page(render::log_in(&parts.ctx(), "", None)?))
}

/// Sign-in. Besides the per-address route limit ([`super::LOGIN_LIMIT`]), failures are counted
/// per account (known or not: the same for both) with capped backoff: past the allowance the
/// form answers 429 with `Retry-After` before any password is checked. Each attempt is counted
/// before its password is checked and given back when it succeeds, so parallel guesses cannot
/// slip past the count.
pub(crate) async fn log_in(
    State(state): State<AppState>,
    nonce: CspNonce,
    ClientIp(ip): ClientIp,
    session: Session,
    Form(form): Form<LogInForm>,
) -> AppResult {
    let throttle = &state.login_throttle;
    let account = form.email.trim().to_lowercase();
    let attempt = match throttle.check(&account, ip).await {
        Ok(LoginVerdict::Allowed(attempt)) => attempt,
        Ok(LoginVerdict::Wait { retry_after }) => {
            let (secs, message) = wait_message("Too many failed sign-ins.", retry_after);
            let parts = PageParts::new(nonce, &session, None, true).await?;
            let html = render::log_in(&parts.ctx(), &form.email, Some(&message))?;
            return Ok(too_many(secs, html));
        }
        Err(_) => return Ok(throttle_unavailable()),
    };
    let accounts = &state.portal.accounts;
    let sign_in = accounts.begin_sign_in(&form.email, &form.password).await?;
    // The account's credentials epoch, read before its password is checked: a password change
    // or "sign out everywhere" that runs while this sign-in checks the old password makes it
    // newer, and the session below is then signed out at once. An unknown address reads the
    // epoch of an id no account has, so both paths make the same reads.
    let subject = sign_in
        .account()
        .map_or_else(|| NO_ACCOUNT.to_owned(), |id| id.to_string());
    let epoch = session.credentials_epoch(&subject).await?;
    match accounts.finish_sign_in(sign_in).await? {
        Some(user) => {
            if throttle.succeeded(attempt).await.is_err() {
                return Ok(throttle_unavailable());
            }
            session
                .set_user_checked(&user.id.to_string(), epoch)
                .await?;
            set_flash(&session, FlashKind::Success, "You are signed in.").await?;
            Ok(see_other(paths::HOME))
        }
        // The throttle counted this attempt as a failure in `check` already: drop it.
        None => failed_log_in(nonce, &session, &form.email).await,
    }
}

/// The user id whose credentials epoch a sign-in with an unknown address reads (account ids
/// start at 1).
const NO_ACCOUNT: &str = "0";

/// Whole seconds to wait (at least 1) and the sentence that says so after `what`.
pub(super) fn wait_message(what: &str, retry_after: Duration) -> (u64, String) {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let secs = secs.max(1);
    let plural = if secs == 1 { "" } else { "s" };
    (
        secs,
        format!("{what} Wait {secs} second{plural} and try again."),
    )
}

/// A throttled form page: 429 with `Retry-After`, the page as rendered.
pub(super) fn too_many(secs: u64, html: String) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        KeepBody,
        Html(html),
    )
        .into_response()
}

/// The login throttle's store is down: it fails closed.
pub(super) fn throttle_unavailable() -> Response {
    let mut res = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_kind("rate-limit-unavailable")
        .with_detail("Signing in is briefly unavailable. Please try again in a moment.")
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    res
}

/// The sign-in form again with the one generic message.
async fn failed_log_in(nonce: CspNonce, session: &Session, email: &str) -> AppResult<Response> {
    let parts = PageParts::new(nonce, session, None, true).await?;
    Ok(invalid_form(render::log_in(
        &parts.ctx(),
        email,
        Some(render::LOG_IN_FAILED),
    )?))
}

pub(crate) async fn log_out(session: Session) -> AppResult {
    session.flush().await?;
    Ok(see_other(paths::HOME))
}
