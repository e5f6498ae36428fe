//! The donor's own data: download it, or erase the account.
//!
//! * `GET /account/export` answers the JSON document ([`crate::erasure`], plus the account's
//!   sessions) only within [`REAUTH_FOR`] of the password being typed again on
//!   `POST /account/export`, once; otherwise it shows that password form. A stolen session
//!   alone cannot take the data away.
//! * `POST /account/delete` needs the password (and the CSRF token, as every POST): the
//!   account and everything naming it go in one transaction, every session is signed out,
//!   and this one ends.
//!
//! Both password checks go through the sign-in throttle, counted before the check.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Form;
use buttress::headers::CspNonce;
use buttress::proxy::ClientIp;
use buttress::ratelimit::LoginVerdict;
use serde_json::json;

use super::auth::{throttle_unavailable, too_many, wait_message};
use super::{invalid_form, page, see_other, AppResult, AppState, PageParts, SignedIn};
use crate::db::{now_unix, today_utc};
use crate::error::FieldError;
use crate::render::{self, paths};

/// How long a re-entered password opens the export.
pub(crate) const REAUTH_FOR: Duration = Duration::from_secs(300);

/// The session key holding when the password was last typed again.
const REAUTH_KEY: &str = "reauth_at";

/// The password form.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    password: String,
}

const EXPORT_INTRO: &str =
    "Type your password again to download everything the registry holds about you, as JSON.";
const DELETE_INTRO: &str = "This erases your account, your donor profile, your requests, the record of who saw your number and every session. It cannot be undone.";

fn export_page(parts: &PageParts, errors: &[FieldError]) -> crate::error::Result<String> {
    render::confirm_password(
        &parts.ctx(),
        "Download my data",
        EXPORT_INTRO,
        (paths::EXPORT, "Download"),
        false,
        errors,
    )
}

fn delete_page(parts: &PageParts, errors: &[FieldError]) -> crate::error::Result<String> {
    render::confirm_password(
        &parts.ctx(),
        "Delete my account",
        DELETE_INTRO,
        (paths::DELETE, "Delete my account"),
        true,
        errors,
    )
}

pub(crate) async fn export(
    State(state): State<AppState>,
    nonce: CspNonce,
    me: SignedIn,
) -> AppResult {
    let at: Option<i64> = me.session.get(REAUTH_KEY).await?;
    let window = i64::try_from(REAUTH_FOR.as_secs()).unwrap_or(300);
    let fresh = at.is_some_and(|at| now_unix() - at < window && at <= now_unix());
    if !fresh {
        let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
        return Ok(page(export_page(&parts, &[])?));
    }
    me.session.remove(REAUTH_KEY).await?;
    let mut doc = state
        .portal
        .db
        .export_account(me.user.id, today_utc())
        .await?;
    let sessions: Vec<_> = me
        .session
        .list_user_sessions()
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "signed_in_at": s.created,
                "last_seen": s.last_seen,
                "client": s.client,
                "this_session": s.current,
            })
        })
        .collect();
    doc["sessions"] = json!(sessions);
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"my-blood-donor-registry-data.json\"",
        )],
        axum::Json(doc),
    )
        .into_response())
}

/// Checks the password through the sign-in throttle: `Ok(Ok(()))` when right, `Ok(Err(page))`
/// with the answer to give otherwise.
async fn password_ok(
    state: &AppState,
    me: &SignedIn,
    ip: std::net::IpAddr,
    password: &str,
    form_page: impl Fn(&PageParts, &[FieldError]) -> crate::error::Result<String>,
    nonce: CspNonce,
) -> AppResult<Result<(), axum::response::Response>> {
    let throttle = &state.login_throttle;
    let attempt = match throttle.check(&me.user.email, ip).await {
        Ok(LoginVerdict::Allowed(attempt)) => attempt,
        Ok(LoginVerdict::Wait { retry_after }) => {
            let (secs, message) = wait_message("Too many wrong passwords.", retry_after);
            let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
            let errors = [FieldError::new("password", message)];
            return Ok(Err(too_many(secs, form_page(&parts, &errors)?)));
        }
        Err(_) => return Ok(Err(throttle_unavailable())),
    };
    if state
        .portal
        .accounts
        .check_password(me.user.id, password)
        .await?
    {
        let _ = throttle.succeeded(attempt).await;
        return Ok(Ok(()));
    }
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    let errors = [FieldError::new("password", "That password is not right.")];
    Ok(Err(invalid_form(form_page(&parts, &errors)?)))
}

pub(crate) async fn reauth(
    State(state): State<AppState>,
    nonce: CspNonce,
    ClientIp(ip): ClientIp,
    me: SignedIn,
    Form(form): Form<PasswordForm>,
) -> AppResult {
    if let Err(answer) = password_ok(&state, &me, ip, &form.password, export_page, nonce).await? {
        return Ok(answer);
    }
    me.session.insert(REAUTH_KEY, now_unix()).await?;
    Ok(see_other(paths::EXPORT))
}

pub(crate) async fn delete_form(nonce: CspNonce, me: SignedIn) -> AppResult {
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    Ok(page(delete_page(&parts, &[])?))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    nonce: CspNonce,
    ClientIp(ip): ClientIp,
    me: SignedIn,
    Form(form): Form<PasswordForm>,
) -> AppResult {
    if let Err(answer) = password_ok(&state, &me, ip, &form.password, delete_page, nonce).await? {
        return Ok(answer);
    }
    state
        .portal
        .db
        .erase_account(me.user.id, &state.privacy.session_apps_in_db)
        .await?;
    // Then through the session layer: the account's credentials epoch is bumped (every session
    // of it, on every instance, is anonymous at its next request), sessions kept elsewhere
    // (memory, Redis) are deleted, and this one ends. The account is gone either way (a session
    // left behind finds no user), so a store that fails here does not undo the answer.
    if let Err(e) = me
        .session
        .sign_out_everywhere(&me.user.id.to_string())
        .await
    {
        tracing::warn!(error = %e, "an erased account's sessions could not all be signed out");
    }
    me.session.flush().await?;
    let parts = PageParts::new(nonce, &me.session, None, false).await?;
    Ok(page(render::message(
        &parts.ctx(),
        "Your account is deleted",
        "Everything the registry held about you is erased. Thank you for having been a donor.",
        Some((paths::HOME, "Back to the registry")),
    )?))
}
