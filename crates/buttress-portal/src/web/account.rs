//! The account: where the user is signed in (revoke one session, or all), and the password.
//!
//! The current password asked for by the password change is a password guess like a sign-in,
//! so it goes through the same [`LoginThrottle`](buttress::ratelimit::LoginThrottle), counted
//! before it is checked: a stolen session cannot guess it (and take the account over) faster
//! than a sign-in form could.

use axum::extract::{Path, State};
use axum::Form;
use buttress::headers::CspNonce;
use buttress::proxy::ClientIp;
use buttress::ratelimit::LoginVerdict;
use buttress::session::StoreKey;

use super::auth::{throttle_unavailable, too_many, wait_message};
use super::{invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, SignedIn};
use crate::error::Error;
use crate::error::FieldError;
use crate::render::{self, paths, FlashKind, SessionRow};
use crate::validate::ChangePasswordInput;

pub(crate) async fn sessions(nonce: CspNonce, me: SignedIn) -> AppResult {
    let rows: Vec<SessionRow> = me
        .session
        .list_user_sessions()
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.handle.0,
            created: s.created,
            last_seen: s.last_seen,
            client: s.client,
            current: s.current,
        })
        .collect();
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    Ok(page(render::sessions(&parts.ctx(), &rows)?))
}

/// Revokes one of the user's sessions by its handle (the store key, never the session id).
/// Someone else's handle, or a malformed one, is a 404.
pub(crate) async fn revoke(me: SignedIn, Path(raw): Path<String>) -> AppResult {
    let handle = StoreKey::parse(&raw).ok_or(Error::NotFound)?;
    let current = me
        .session
        .list_user_sessions()
        .await?
        .iter()
        .any(|s| s.handle == handle && s.current);
    if !me.session.revoke(&handle).await? {
        return Err(Error::NotFound.into());
    }
    if current {
        // This device signed out: the session is gone.
        return Ok(see_other(paths::HOME));
    }
    set_flash(
        &me.session,
        FlashKind::Success,
        "That session is signed out.",
    )
    .await?;
    Ok(see_other(paths::SESSIONS))
}

/// "Sign out everywhere": every other session, then this one.
pub(crate) async fn revoke_all(me: SignedIn) -> AppResult {
    me.session.revoke_others().await?;
    me.session.flush().await?;
    Ok(see_other(paths::HOME))
}

pub(crate) async fn password_form(nonce: CspNonce, me: SignedIn) -> AppResult {
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    Ok(page(render::change_password(
        &parts.ctx(),
        &me.user.email,
        &[],
    )?))
}

/// Changes the password, then signs out every other session and gives this one a new id.
/// The current password is throttled as a sign-in is (see the module docs): past the
/// allowance the form answers 429 with `Retry-After` before any password is checked.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    nonce: CspNonce,
    ClientIp(ip): ClientIp,
    me: SignedIn,
    Form(form): Form<ChangePasswordInput>,
) -> AppResult {
    let throttle = &state.login_throttle;
    let attempt = match throttle.check(&me.user.email, ip).await {
        Ok(LoginVerdict::Allowed(attempt)) => attempt,
        Ok(LoginVerdict::Wait { retry_after }) => {
            let (secs, message) = wait_message("Too many wrong passwords.", retry_after);
            let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
            let errors = [FieldError::new("current_password", message)];
            let html = render::change_password(&parts.ctx(), &me.user.email, &errors)?;
            return Ok(too_many(secs, html));
        }
        Err(_) => return Ok(throttle_unavailable()),
    };
    match state
        .portal
        .accounts
        .change_password(me.user.id, &form)
        .await
    {
        Ok(()) => {
            // The right current password: the attempt is given back (best effort: the password
            // is changed already).
            let _ = throttle.succeeded(attempt).await;
            let others = me.session.revoke_others().await?;
            me.session.cycle_id().await?;
            let message = match others {
                0 => "Your password is changed.".to_owned(),
                1 => "Your password is changed. Your other session was signed out.".to_owned(),
                n => format!("Your password is changed. Your {n} other sessions were signed out."),
            };
            set_flash(&me.session, FlashKind::Success, &message).await?;
            Ok(see_other(paths::SESSIONS))
        }
        Err(Error::Invalid(errors)) => {
            // Only a wrong current password counts; a new password that breaks the policy
            // gives the attempt back.
            if !errors.iter().any(|e| e.field == "current_password") {
                let _ = throttle.succeeded(attempt).await;
            }
            let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
            Ok(invalid_form(render::change_password(
                &parts.ctx(),
                &me.user.email,
                &errors,
            )?))
        }
        Err(e) => Err(e.into()),
    }
}
