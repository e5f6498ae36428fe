//! The JSON API beside the pages.
//!
//! * `GET /api/donors?blood_group=&mode=&city=&eligible_only=&page=` — the donor search as
//!   JSON: `{"items": [DonorView…], "page", "total_pages", "total"}`: name, group, city and
//!   whether each can give now; never a phone number or a date.
//! * `POST /api/requests/{id}/reveal` with `{"donor": ID}` — `{"phone": …}` for the verified
//!   owner of the open request and a matching donor, within the daily quota (429 `quota`
//!   past it); 404 otherwise.
//! * `POST /api/requests` — a JSON object with `blood_group`, `city`, `hospital`, `units`
//!   (number or string) and `urgency`; needs a signed-in session, same-origin `Origin` and the
//!   CSRF token in `X-CSRF-Token`. 201 with the request and `Location`; 422 problem+json with
//!   `errors: [{field, message}…]` listing every field; 400 for a body that is not a JSON
//!   object; 401 when not signed in; 403 `unverified` before the address is confirmed; 429
//!   `quota` at the open-request cap.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Json};
use buttress::errors::Problem;
use bytes::Bytes;
use serde_json::{json, Value};

use super::requests::request_path;
use super::{AppResult, AppState, Viewer};
use crate::db::today_utc;
use crate::donors::SearchInput;
use crate::requests::BloodRequest;
use crate::validate::RequestInput;

pub(crate) async fn donors(
    State(state): State<AppState>,
    Query(form): Query<SearchInput>,
) -> AppResult {
    let (search, page) = form.validate()?;
    let found = state
        .portal
        .db
        .search_donors(&search, page, today_utc())
        .await?;
    let items: Vec<_> = found.items.iter().map(crate::donors::Donor::view).collect();
    Ok(Json(json!({
        "items": items,
        "page": found.page,
        "total_pages": found.total_pages,
        "total": found.total,
    }))
    .into_response())
}

/// A request as the API shows it (blood group, urgency and status as their display text).
fn request_json(r: &BloodRequest) -> Value {
    json!({
        "id": r.id,
        "blood_group": r.blood_group.as_str(),
        "city": r.city,
        "hospital": r.hospital,
        "units": r.units,
        "urgency": r.urgency.as_str(),
        "status": r.status.as_str(),
        "created_at": r.created_at,
        "closed_at": r.closed_at,
    })
}

/// A JSON member as form text: strings as they are, numbers written out, anything else
/// (absent, null, objects) empty so that validation names the field.
fn text(doc: &Value, key: &str) -> String {
    match doc.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub(crate) async fn create_request(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> AppResult {
    let user = viewer.require()?;
    if !user.is_verified() {
        return Err(super::AppError::Unverified);
    }
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(doc @ Value::Object(_)) => doc,
        _ => {
            return Ok(Problem::new(StatusCode::BAD_REQUEST)
                .with_kind("bad-json")
                .with_detail("Send a JSON object.")
                .into_response())
        }
    };
    let input = RequestInput {
        blood_group: text(&doc, "blood_group"),
        city: text(&doc, "city"),
        hospital: text(&doc, "hospital"),
        units: text(&doc, "units"),
        urgency: text(&doc, "urgency"),
    };
    let new = input.validate()?;
    let created = state
        .portal
        .db
        .create_request_capped(user.id, &new, state.privacy.open_request_cap)
        .await?;
    let location = request_path(created.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(request_json(&created)),
    )
        .into_response())
}
