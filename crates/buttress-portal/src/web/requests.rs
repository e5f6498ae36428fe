//! Blood requests: the open list, one request with its matching eligible donors, the form,
//! and closing (owner only).

use axum::extract::{Path, Query, State};
use axum::Form;
use buttress::headers::CspNonce;

use super::{
    invalid_form, page, see_other, set_flash, AppResult, AppState, PageParts, PageQuery, SignedIn,
    Viewer,
};
use crate::db::{today_utc, Page};
use crate::domain::RequestStatus;
use crate::error::Error;
use crate::render::{self, FlashKind};
use crate::validate::RequestInput;

/// A request id from the path: anything but a positive integer is a 404.
pub(crate) fn request_id(raw: &str) -> Result<i64, Error> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(Error::NotFound)
}

/// The detail page's path for request `id`.
pub(crate) fn request_path(id: i64) -> String {
    format!("/requests/{id}")
}

pub(crate) async fn list(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    Query(q): Query<PageQuery>,
) -> AppResult {
    let open = state.portal.db.open_requests(q.number()).await?;
    let mine = match &viewer.user {
        Some(u) => state.portal.db.requests_of(u.id, 1).await?.items,
        None => Vec::new(),
    };
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), false).await?;
    Ok(page(render::requests(&parts.ctx(), &open, &mine)?))
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    nonce: CspNonce,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<PageQuery>,
) -> AppResult {
    let request = state.portal.db.request(request_id(&raw)?).await?;
    let matches = if request.status == RequestStatus::Open {
        state
            .portal
            .db
            .matching_donors(&request, q.number(), today_utc())
            .await?
    } else {
        Page {
            items: Vec::new(),
            page: 1,
            total_pages: 1,
            total: 0,
        }
    };
    let owner = viewer
        .user
        .as_ref()
        .filter(|u| request.is_owned_by(u.id) && u.is_verified());
    let revealed = match owner {
        Some(u) => state.portal.db.revealed_for(request.id, u.id).await?,
        None => Vec::new(),
    };
    // The owner's page has forms (reveal, relay): it needs the token.
    let parts = PageParts::new(
        nonce,
        &viewer.session,
        viewer.user.as_ref(),
        owner.is_some(),
    )
    .await?;
    let contact = render::RequestContact {
        quota: state.privacy.reveal_quota,
        revealed: &revealed,
    };
    Ok(page(render::request_detail_with(
        &parts.ctx(),
        &request,
        &matches,
        owner.map(|u| u.id),
        contact,
    )?))
}

pub(crate) async fn new_form(nonce: CspNonce, me: SignedIn) -> AppResult {
    if !me.user.is_verified() {
        return Err(super::AppError::Unverified);
    }
    let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
    let form = RequestInput {
        units: "1".into(),
        urgency: "normal".into(),
        ..RequestInput::default()
    };
    Ok(page(render::request_form(&parts.ctx(), &form, &[])?))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    nonce: CspNonce,
    me: SignedIn,
    Form(form): Form<RequestInput>,
) -> AppResult {
    if !me.user.is_verified() {
        return Err(super::AppError::Unverified);
    }
    match form.validate() {
        Ok(new) => {
            let created = state
                .portal
                .db
                .create_request_capped(me.user.id, &new, state.privacy.open_request_cap)
                .await?;
            set_flash(
                &me.session,
                FlashKind::Success,
                "Your request is posted. Matching donors are listed below.",
            )
            .await?;
            Ok(see_other(&request_path(created.id)))
        }
        Err(Error::Invalid(errors)) => {
            let parts = PageParts::new(nonce, &me.session, Some(&me.user), true).await?;
            Ok(invalid_form(render::request_form(
                &parts.ctx(),
                &form,
                &errors,
            )?))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn close(
    State(state): State<AppState>,
    me: SignedIn,
    Path(raw): Path<String>,
) -> AppResult {
    let id = request_id(&raw)?;
    state.portal.db.close_request(id, me.user.id).await?;
    set_flash(&me.session, FlashKind::Success, "The request is closed.").await?;
    Ok(see_other(&request_path(id)))
}
