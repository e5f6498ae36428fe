//! Sign-up, sign-in and sign-out.
//!
//! * Sign-up answers a new and an already registered address with the same redirect and the
//!   same message ([`SignUpOutcome::MESSAGE`]) and never signs the new account in.
//! * Sign-in gives one message ([`render::LOG_IN_FAILED`]) for every failure and binds the
//!   session to the user with [`Session::set_user`], which rotates the session id and CSRF
//!   secret: the pre-login cookie and tokens stop working.
//! * Sign-out is a POST (CSRF-checked) that deletes the session record and clears the cookie.

use axum::extract::State;
use axum::response::Response;
use axum::Form;
use buttress::headers::CspNonce;
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
    viewer: Viewer,
    Form(input): Form<SignUpInput>,
) -> AppResult {
    match state.portal.accounts.sign_up(&input).await {
        // Both outcomes look the same: same redirect, same message, nobody signed in.
        Ok(SignUpOutcome::Created(_) | SignUpOutcome::AlreadyRegistered) => {
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

pub(crate) async fn log_in(
    State(state): State<AppState>,
    nonce: CspNonce,
    session: Session,
    Form(form): Form<LogInForm>,
) -> AppResult {
    // TODO(issue-4 ratelimit): per-IP "5 per minute" route limit and per-account backoff
    // from `buttress::ratelimit` once it is merged into main.
    match state
        .portal
        .accounts
        .authenticate(&form.email, &form.password)
        .await?
    {
        Some(user) => {
            session.set_user(Some(&user.id.to_string())).await?;
            set_flash(&session, FlashKind::Success, "You are signed in.").await?;
            Ok(see_other(paths::HOME))
        }
        None => failed_log_in(nonce, &session, &form.email).await,
    }
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
