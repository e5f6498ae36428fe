//! Contact data for a reason: revealing a matching donor's number, or relaying a message.
//!
//! Only a verified account that owns the open request may act, only on a donor who matches it
//! ([`crate::reveals::donor_matches`]); anything else is a 404 (an unverified owner gets a
//! 403 saying to confirm the address). Each reveal or relay is logged for the donor and
//! counted against the daily quota ([`crate::reveals`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::Form;
use buttress::proxy::RequestOrigin;
use serde_json::json;

use super::requests::{request_id, request_path};
use super::{see_other, set_flash, AppError, AppResult, AppState, SignedIn, Viewer};
use crate::accounts::User;
use crate::db::today_utc;
use crate::donors::Donor;
use crate::error::Error;
use crate::mail::Mail;
use crate::render::FlashKind;
use crate::requests::BloodRequest;
use crate::reveals::{donor_matches, RevealKind};

/// The longest relayed message, in characters.
pub(crate) const MESSAGE_MAX_CHARS: usize = 1000;

/// `donor` (and `message` for a relay).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ContactForm {
    #[serde(default)]
    donor: String,
    #[serde(default)]
    message: String,
}

/// The request and the donor, if `user` may contact that donor for it.
async fn allowed(
    state: &AppState,
    user: &User,
    raw_request: &str,
    raw_donor: &str,
) -> Result<(BloodRequest, Donor), AppError> {
    let id = request_id(raw_request)?;
    let donor_id = raw_donor
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|d| *d > 0)
        .ok_or(Error::NotFound)?;
    let (request, donor) = state
        .portal
        .db
        .request_and_donor(id, donor_id, today_utc())
        .await?;
    if !request.is_owned_by(user.id) {
        return Err(Error::NotFound.into());
    }
    if !user.is_verified() {
        return Err(AppError::Unverified);
    }
    match donor {
        Some(donor) if donor_matches(&request, &donor) => Ok((request, donor)),
        _ => Err(Error::NotFound.into()),
    }
}

/// Reveals the number of a donor who did not ask for the registry only.
async fn reveal_number(
    state: &AppState,
    user: &User,
    raw_request: &str,
    raw_donor: &str,
) -> Result<(BloodRequest, String), AppError> {
    let (request, donor) = allowed(state, user, raw_request, raw_donor).await?;
    if donor.relay_only {
        return Err(Error::NotFound.into());
    }
    state
        .portal
        .db
        .record_reveal(
            &request,
            user.id,
            &donor,
            RevealKind::Phone,
            state.privacy.reveal_quota,
        )
        .await?;
    Ok((request, donor.phone))
}

/// `POST /requests/{id}/reveal` (form): back to the request, the number now shown there.
pub(crate) async fn reveal(
    State(state): State<AppState>,
    me: SignedIn,
    Path(raw): Path<String>,
    Form(form): Form<ContactForm>,
) -> AppResult {
    let (request, _) = reveal_number(&state, &me.user, &raw, &form.donor).await?;
    set_flash(
        &me.session,
        FlashKind::Success,
        "The number is shown below. The donor can see that you revealed it.",
    )
    .await?;
    Ok(see_other(&format!(
        "{}#donor-{}",
        request_path(request.id),
        form.donor.trim()
    )))
}

/// `POST /api/requests/{id}/reveal` with `{"donor": ID}`: `{"phone": …}`.
pub(crate) async fn reveal_json(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Json(doc): Json<serde_json::Value>,
) -> AppResult {
    let user = viewer.require()?;
    let donor = match doc.get("donor") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (_, phone) = reveal_number(&state, user, &raw, &donor).await?;
    Ok((StatusCode::OK, Json(json!({ "phone": phone }))).into_response())
}

/// `POST /requests/{id}/relay`: mails the donor the message and the requester's address.
pub(crate) async fn relay(
    State(state): State<AppState>,
    origin: RequestOrigin,
    me: SignedIn,
    Path(raw): Path<String>,
    Form(form): Form<ContactForm>,
) -> AppResult {
    let (request, donor) = allowed(&state, &me.user, &raw, &form.donor).await?;
    let message = form.message.trim();
    let bad = message.is_empty()
        || message.chars().count() > MESSAGE_MAX_CHARS
        || message
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t');
    if bad {
        return Err(Error::invalid(
            "message",
            "Write a message of 1 to 1,000 characters, without control characters.",
        )
        .into());
    }
    let written = state
        .portal
        .db
        .record_reveal(
            &request,
            me.user.id,
            &donor,
            RevealKind::Relay,
            state.privacy.reveal_quota,
        )
        .await?;
    if written {
        let donor_email = state
            .portal
            .accounts
            .user(donor.user_id)
            .await?
            .ok_or(Error::NotFound)?
            .email;
        let base = super::links::base_url(&state, &origin);
        let body = format!(
            "Someone who needs blood ({group} in {city}, at {hospital}) asks you to get in touch. \
             The registry did not share your phone number or your address.\n\n\
             Their message:\n\n{message}\n\n\
             To answer, write to {from}. Every such message is listed on your profile: {base}/profile\n",
            group = request.blood_group,
            city = request.city,
            hospital = request.hospital,
            from = me.user.email,
        );
        super::links::send_throttled(
            &state,
            &donor_email,
            Mail::new(&donor_email, "A request for blood donors", &body, None),
        )
        .await?;
    }
    set_flash(
        &me.session,
        FlashKind::Success,
        if written {
            "Your message is on its way. The donor answers you by mail if they can."
        } else {
            "You already sent this donor a message for this request."
        },
    )
    .await?;
    Ok(see_other(&request_path(request.id)))
}
