//! Mailed links: the verification link sign-up sends, sending it again, and password resets.
//!
//! * Every form here answers the same way whatever the address (registered or not, verified
//!   or not) — the same redirect and message — and does its work (a lookup, a token, a mail)
//!   in a spawned task after answering, so neither the page nor its timing tells anything.
//! * Mail to one address is throttled ([`super::MAIL_PER_ADDRESS`]) whatever asks for it, and
//!   the forms have the sign-up route limit per client address: no mail bomb.
//! * A link opens a page with a button that posts the token: a mail scanner that fetches the
//!   link does not spend it. Tokens: [`crate::tokens`].
//! * A reset signs every session of the account out, and counts as a verification.

use axum::extract::{Query, State};
use axum::Form;
use buttress::headers::CspNonce;
use buttress::proxy::RequestOrigin;
use buttress::session::Session;

use super::{invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, Viewer};
use crate::accounts::User;
use crate::error::{Error, FieldError};
use crate::mail::Mail;
use crate::render::{self, paths, FlashKind};
use crate::tokens::Purpose;

/// The answer to "send it again", whatever happened.
pub(crate) const RESEND_SENT: &str =
    "If an account with this address is waiting for confirmation, we sent it a new link.";
/// The answer to a reset request, whatever happened.
pub(crate) const RESET_SENT: &str =
    "If an account uses this address, we sent it a link to choose a new password. It works for one hour.";

/// A form with one `email` field (or a `token` and a new password).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct EmailForm {
    #[serde(default)]
    email: String,
}

/// `?token=` or a posted `token` (and a new password).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

/// The origin links in mail point at: `BUTTRESS_PUBLIC_URL`, else (Development) the
/// request's own origin as resolved through trusted proxies.
pub(crate) fn base_url(state: &AppState, origin: &RequestOrigin) -> String {
    state
        .privacy
        .public_url
        .clone()
        .unwrap_or_else(|| origin.origin())
}

/// What a spawned mail task should send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Follow {
    /// After a sign-up: a link for a new or unverified account; a notice for a verified one.
    SignUp,
    /// "Send it again": a link for an unverified account; nothing otherwise.
    Resend,
    /// A reset link for any account; nothing for an unknown address.
    Reset,
}

/// Sends what `follow` calls for to `email`, after the answer went out (spawned).
pub(crate) fn follow_up(state: &AppState, follow: Follow, email: String, base: String) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = follow_up_now(&state, follow, &email, &base).await {
            tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "a mail follow-up failed");
        }
    });
}

async fn follow_up_now(
    state: &AppState,
    follow: Follow,
    email: &str,
    base: &str,
) -> Result<(), Error> {
    let Some(user) = state.portal.accounts.user_by_email(email).await? else {
        return Ok(());
    };
    let mail = match (follow, user.is_verified()) {
        (Follow::SignUp | Follow::Resend, false) => Some(verify_mail(state, &user, base).await?),
        (Follow::SignUp, true) => Some(Mail::new(
            &user.email,
            "Someone tried to sign up with your address",
            &format!(
                "Someone tried to create an account on the blood donor registry with this address, which already has one.\n\n\
                 If it was you, sign in at {base}{login}, or choose a new password at {base}{reset}.\n\
                 If it was not you, you can ignore this message: nothing changed.\n",
                login = paths::LOG_IN,
                reset = paths::RESET,
            ),
            None,
        )),
        (Follow::Resend, true) => None,
        (Follow::Reset, _) => Some(reset_mail(state, &user, base).await?),
    };
    if let Some(mail) = mail {
        send_throttled(state, &user.email, mail).await?;
    }
    Ok(())
}

/// Sends `mail` unless [`super::MAIL_PER_ADDRESS`] is spent for `to`.
pub(crate) async fn send_throttled(state: &AppState, to: &str, mail: Mail) -> Result<(), Error> {
    let key = state.privacy.keys.address_key(to);
    let (per_hour, per_day) = super::MAIL_PER_ADDRESS;
    if state
        .portal
        .db
        .mail_allowed(&key, per_hour, per_day)
        .await?
    {
        state.privacy.mailer.send(mail);
    } else {
        tracing::info!("mail to an address throttled (too many in the last hour or day)");
    }
    Ok(())
}

async fn verify_mail(state: &AppState, user: &User, base: &str) -> Result<Mail, Error> {
    let token = state
        .privacy
        .keys
        .issue(&state.portal.db, user.id, Purpose::Verify)
        .await?;
    let link = format!("{base}{}?token={token}", paths::VERIFY);
    Ok(Mail::new(
        &user.email,
        "Confirm your address for the blood donor registry",
        &format!(
            "Someone, hopefully you, created an account on the blood donor registry with this address.\n\n\
             Confirm it within 24 hours by opening this link:\n\n{link}\n\n\
             If it was not you, ignore this message: the account is erased if it is not confirmed.\n"
        ),
        Some(&link),
    ))
}

async fn reset_mail(state: &AppState, user: &User, base: &str) -> Result<Mail, Error> {
    let token = state
        .privacy
        .keys
        .issue(&state.portal.db, user.id, Purpose::Reset)
        .await?;
    let link = format!("{base}{}?token={token}", paths::RESET_CONFIRM);
    Ok(Mail::new(
        &user.email,
        "Choose a new password for the blood donor registry",
        &format!(
            "Someone asked to reset the password of your account on the blood donor registry.\n\n\
             To choose a new password, open this link within one hour:\n\n{link}\n\n\
             Doing so signs your account out everywhere. If you did not ask, ignore this message: nothing changes.\n"
        ),
        Some(&link),
    ))
}

pub(crate) async fn verify_page(
    nonce: CspNonce,
    viewer: Viewer,
    Query(q): Query<TokenForm>,
) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    Ok(page(render::verify(&parts.ctx(), q.token.trim())?))
}

pub(crate) async fn verify(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    Form(form): Form<TokenForm>,
) -> AppResult {
    let db = &state.portal.db;
    match state
        .privacy
        .keys
        .consume(db, &form.token, Purpose::Verify)
        .await?
    {
        Some(user_id) => {
            state.portal.accounts.mark_verified(user_id).await?;
            let signed_in_here = viewer.user.as_ref().is_some_and(|u| u.id == user_id);
            set_flash(
                &viewer.session,
                FlashKind::Success,
                "Your address is confirmed. Thank you.",
            )
            .await?;
            Ok(see_other(if signed_in_here {
                paths::HOME
            } else {
                paths::LOG_IN
            }))
        }
        None => link_failed(nonce, &viewer, paths::RESEND, "Send a new link").await,
    }
}

/// 422: the link is expired, used or not one of ours.
async fn link_failed(nonce: CspNonce, viewer: &Viewer, again: &str, label: &str) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), false).await?;
    Ok(invalid_form(render::message(
        &parts.ctx(),
        "This link does not work",
        "The link has expired, was already used, or was replaced by a newer one.",
        Some((again, label)),
    )?))
}

pub(crate) async fn resend_form(nonce: CspNonce, viewer: Viewer) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    let email = viewer.user.as_ref().map_or("", |u| u.email.as_str());
    Ok(page(render::email_form(
        &parts.ctx(),
        "Confirm your address",
        "We send a new confirmation link to the address, if an account there is waiting for one.",
        paths::RESEND,
        "Send the link",
        email,
    )?))
}

pub(crate) async fn resend(
    State(state): State<AppState>,
    origin: RequestOrigin,
    session: Session,
    Form(form): Form<EmailForm>,
) -> AppResult {
    follow_up(
        &state,
        Follow::Resend,
        form.email,
        base_url(&state, &origin),
    );
    set_flash(&session, FlashKind::Success, RESEND_SENT).await?;
    Ok(see_other(paths::LOG_IN))
}

pub(crate) async fn reset_request_form(nonce: CspNonce, viewer: Viewer) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    Ok(page(render::email_form(
        &parts.ctx(),
        "Forgot your password?",
        "We send a link to choose a new password to the address, if an account uses it.",
        paths::RESET,
        "Send the link",
        "",
    )?))
}

pub(crate) async fn reset_request(
    State(state): State<AppState>,
    origin: RequestOrigin,
    session: Session,
    Form(form): Form<EmailForm>,
) -> AppResult {
    follow_up(&state, Follow::Reset, form.email, base_url(&state, &origin));
    set_flash(&session, FlashKind::Success, RESET_SENT).await?;
    Ok(see_other(paths::LOG_IN))
}

pub(crate) async fn reset_form(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    Query(q): Query<TokenForm>,
) -> AppResult {
    let db = &state.portal.db;
    if state
        .privacy
        .keys
        .check(db, &q.token, Purpose::Reset)
        .await?
        .is_none()
    {
        return link_failed(nonce, &viewer, paths::RESET, "Ask for a new link").await;
    }
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
    Ok(page(render::reset_form(&parts.ctx(), q.token.trim(), &[])?))
}

pub(crate) async fn reset(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    Form(form): Form<TokenForm>,
) -> AppResult {
    let db = &state.portal.db;
    let keys = &state.privacy.keys;
    let Some(user_id) = keys.check(db, &form.token, Purpose::Reset).await? else {
        return link_failed(nonce, &viewer, paths::RESET, "Ask for a new link").await;
    };
    // The policy first, so that a refused password does not spend the link.
    let Some(user) = state.portal.accounts.user(user_id).await? else {
        return link_failed(nonce, &viewer, paths::RESET, "Ask for a new link").await;
    };
    if let Some(problem) = crate::validate::password_problem(&form.new_password, &user.email) {
        let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), true).await?;
        let errors = [FieldError::new("new_password", problem)];
        return Ok(invalid_form(render::reset_form(
            &parts.ctx(),
            form.token.trim(),
            &errors,
        )?));
    }
    if keys.consume(db, &form.token, Purpose::Reset).await? != Some(user_id) {
        return link_failed(nonce, &viewer, paths::RESET, "Ask for a new link").await;
    }
    state
        .portal
        .accounts
        .reset_password(user_id, &form.new_password)
        .await?;
    // Every session of the account ends, on every instance, including a sign-in with the old
    // password still in flight: its credentials epoch is bumped (the library's sign-out
    // everywhere, after the new hash is stored).
    viewer
        .session
        .sign_out_everywhere(&user_id.to_string())
        .await?;
    if viewer.user.is_some() {
        viewer.session.flush().await?;
        return Ok(see_other(paths::LOG_IN));
    }
    set_flash(
        &viewer.session,
        FlashKind::Success,
        "Your password is changed and every session of the account is signed out. Sign in with the new password.",
    )
    .await?;
    Ok(see_other(paths::LOG_IN))
}
