//! The account: where the user is signed in (revoke one session, or all), and the password.

use axum::extract::{Path, State};
use axum::Form;
use buttress::headers::CspNonce;
use buttress::session::StoreKey;

use super::{invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, SignedIn};
use crate::error::Error;
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
pub(crate) async fn change_password(
    State(state): State<AppState>,
    nonce: CspNonce,
    me: SignedIn,
    Form(form): Form<ChangePasswordInput>,
) -> AppResult {
    match state
        .portal
        .accounts
        .change_password(me.user.id, &form)
        .await
    {
        Ok(()) => {
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
