//! The signed-in user's donor profile, and the donor search.

use axum::extract::{Query, RawQuery, State};
use axum::Form;
use buttress::headers::CspNonce;

use super::{
    invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, SignedIn, Viewer,
};
use crate::db::today_utc;
use crate::donors::SearchInput;
use crate::error::Error;
use crate::render::{self, paths, FlashKind};
use crate::validate::ProfileInput;

pub(crate) async fn profile_form(
    State(state): State<AppState>,
    nonce: CspNonce,
    me: SignedIn,
) -> AppResult {
    let saved = state.portal.db.donor(me.user.id, today_utc()).await?;
    let form = saved.as_ref().map_or_else(
        || ProfileInput {
            available: true,
            ..ProfileInput::default()
        },
        render::profile_input,
    );
    let log = state.portal.db.reveals_of_donor(me.user.id).await?;
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    Ok(page(render::profile_with_log(
        &parts.ctx(),
        &form,
        &[],
        saved.as_ref(),
        &log,
    )?))
}

pub(crate) async fn save_profile(
    State(state): State<AppState>,
    nonce: CspNonce,
    me: SignedIn,
    Form(form): Form<ProfileInput>,
) -> AppResult {
    let today = today_utc();
    match form.validate(today) {
        Ok(profile) => {
            state
                .portal
                .db
                .upsert_donor(me.user.id, &profile, today)
                .await?;
            set_flash(&me.session, FlashKind::Success, "Your profile is saved.").await?;
            Ok(see_other(paths::PROFILE))
        }
        Err(Error::Invalid(errors)) => {
            let saved = state.portal.db.donor(me.user.id, today).await?;
            let log = state.portal.db.reveals_of_donor(me.user.id).await?;
            let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
            Ok(invalid_form(render::profile_with_log(
                &parts.ctx(),
                &form,
                &errors,
                saved.as_ref(),
                &log,
            )?))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /donors`: the form alone, or with results once any search field is given.
pub(crate) async fn search(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
    Query(form): Query<SearchInput>,
) -> AppResult {
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), false).await?;
    if raw.as_deref().is_none_or(str::is_empty) {
        return Ok(page(render::search(&parts.ctx(), &form, &[], None)?));
    }
    let result = match form.validate() {
        Ok((search, n)) => state.portal.db.search_donors(&search, n, today_utc()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(results) => Ok(page(render::search(
            &parts.ctx(),
            &form,
            &[],
            Some(&results),
        )?)),
        Err(Error::Invalid(errors)) => Ok(invalid_form(render::search(
            &parts.ctx(),
            &form,
            &errors,
            None,
        )?)),
        Err(e) => Err(e.into()),
    }
}
