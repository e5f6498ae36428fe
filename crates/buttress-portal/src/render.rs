//! Server-rendered pages (askama templates in `templates/`, HTML autoescaped).
//!
//! Every page takes a [`PageContext`]: the per-response CSRF token, which every POST form
//! carries as `<input type="hidden" name="csrf_token">`, and the CSP nonce, which the one
//! inline `<script>` (form confirmations) carries. Styles come from [`PORTAL_CSS`], served at
//! [`paths::STYLESHEET`], so the pages need no inline style and no `style-src 'unsafe-inline'`.
//! The donor search is the one GET form and carries no token: searching changes nothing and a
//! token must never travel in a URL (logs, `Referer`).
//!
//! Values from users are escaped by the template engine; the few pieces of HTML built in Rust
//! (error summary and ARIA attributes) escape their text with [`escape_html`]. Phone numbers
//! are never in list view data (search, matches); a request's owner gets the numbers it
//! revealed ([`RequestContact`]), nobody else. Password fields are never refilled.
//!
//! Every function returns the page as a `String`, or [`Error::Internal`] if rendering failed.

use askama::Template;

use crate::db::{from_unix, Page};
use crate::domain::{format_date, BloodGroup, Eligibility, RequestStatus, Urgency};
use crate::donors::{Donor, SearchInput};
use crate::error::{Error, FieldError, Result};
use crate::requests::BloodRequest;
use crate::reveals::{RevealEntry, RevealKind};
use crate::validate::{ProfileInput, RequestInput};

/// The stylesheet, to be served at [`paths::STYLESHEET`] as `text/css`.
pub const PORTAL_CSS: &str = include_str!("../static/portal.css");

/// The URLs the templates link and post to; the HTTP layer must route exactly these.
pub mod paths {
    /// Landing page (GET).
    pub const HOME: &str = "/";
    /// Stylesheet (GET).
    pub const STYLESHEET: &str = "/static/portal.css";
    /// Sign-up form (GET, POST).
    pub const SIGN_UP: &str = "/signup";
    /// Sign-in form (GET, POST).
    pub const LOG_IN: &str = "/login";
    /// Sign out (POST).
    pub const LOG_OUT: &str = "/logout";
    /// Own donor profile (GET, POST).
    pub const PROFILE: &str = "/profile";
    /// Donor search (GET, query `blood_group`, `mode`, `city`, `eligible_only`, `page`).
    pub const DONORS: &str = "/donors";
    /// Open requests (GET, query `page`).
    pub const REQUESTS: &str = "/requests";
    /// New request form (GET, POST).
    pub const NEW_REQUEST: &str = "/requests/new";
    /// One request (GET `/requests/{id}`, query `page`); close it: POST `/requests/{id}/close`.
    pub const REQUEST: &str = "/requests/{id}";
    /// Close a request (POST).
    pub const CLOSE_REQUEST: &str = "/requests/{id}/close";
    /// The account's sessions (GET).
    pub const SESSIONS: &str = "/account/sessions";
    /// Revoke one session (POST).
    pub const REVOKE_SESSION: &str = "/account/sessions/{id}/revoke";
    /// Revoke every session of the account (POST).
    pub const REVOKE_ALL: &str = "/account/sessions/revoke-all";
    /// Change password (GET, POST).
    pub const PASSWORD: &str = "/account/password";
    /// Confirm an address from the mailed link (GET shows the button, POST spends the token).
    pub const VERIFY: &str = "/verify";
    /// Send the verification link again (GET, POST).
    pub const RESEND: &str = "/verify/resend";
    /// Ask for a password-reset link (GET, POST).
    pub const RESET: &str = "/password-reset";
    /// Set a new password from the link (GET shows the form, POST spends the token).
    pub const RESET_CONFIRM: &str = "/password-reset/confirm";
    /// Reveal a matching donor's number (POST, field `donor`).
    pub const REVEAL: &str = "/requests/{id}/reveal";
    /// Relay a message to a matching donor (POST, fields `donor`, `message`).
    pub const RELAY: &str = "/requests/{id}/relay";
    /// Everything held about the account, as JSON, after the password (GET shows the
    /// password form until then; POST checks it).
    pub const EXPORT: &str = "/account/export";
    /// Erase the account (GET form, POST with the password).
    pub const DELETE: &str = "/account/delete";
}

/// What every page needs from the request.
#[derive(Debug, Clone, Copy)]
pub struct PageContext<'a> {
    /// This response's (masked) CSRF token, put in every POST form.
    pub csrf_token: &'a str,
    /// This response's CSP nonce, put on the inline script.
    pub nonce: &'a str,
    /// Whether the viewer is signed in (shows phone numbers and account links).
    pub signed_in: bool,
    /// The signed-in user's email, shown beside "Sign out".
    pub user_email: Option<&'a str>,
    /// The signed-in user has not confirmed the address yet (a banner says how).
    pub unverified: bool,
    /// A one-time message at the top of the page.
    pub flash: Option<Flash<'a>>,
}

/// A one-time message.
#[derive(Debug, Clone, Copy)]
pub struct Flash<'a> {
    /// Its kind (colour and ARIA role).
    pub kind: FlashKind,
    /// The text (escaped).
    pub message: &'a str,
}

/// The kind of a [`Flash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    /// Neutral information.
    Info,
    /// Something worked.
    Success,
    /// Something failed (announced as an alert).
    Error,
}

impl FlashKind {
    /// CSS class suffix.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FlashKind::Info => "info",
            FlashKind::Success => "success",
            FlashKind::Error => "error",
        }
    }

    /// Whether this is an error.
    #[must_use]
    pub fn is_error(self) -> bool {
        self == FlashKind::Error
    }
}

/// One row of the account's session table (plain data from the session store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// An identifier of the session that is safe to put in a URL (not the session secret).
    pub id: String,
    /// Sign-in time, Unix seconds.
    pub created: i64,
    /// Last request, Unix seconds.
    pub last_seen: i64,
    /// A short description of the client (user agent, address), shown as text.
    pub client: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
#[must_use]
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string component (everything but unreserved characters).
fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form's field errors, as the templates use them.
#[derive(Debug, Clone, Copy)]
struct Errors<'a>(&'a [FieldError]);

impl Errors<'_> {
    /// The message for `field`, if it has one.
    fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// ` aria-invalid="true" aria-errormessage="FIELD-error"` for a field with an error.
    fn aria(&self, field: &str) -> String {
        if self.get(field).is_some() {
            format!(
                " aria-invalid=\"true\" aria-errormessage=\"{}-error\"",
                escape_html(field)
            )
        } else {
            String::new()
        }
    }

    /// An alert listing every error, each linking to its field (escaped here).
    fn summary(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut html = String::from(
            "<div class=\"error-summary\" role=\"alert\"><p>Please fix the following:</p><ul>",
        );
        for e in self.0 {
            html.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>",
                escape_html(e.field),
                escape_html(&e.message)
            ));
        }
        html.push_str("</ul></div>");
        html
    }
}

fn when(secs: i64) -> String {
    let t = from_unix(secs);
    format!(
        "{} {:02}:{:02} UTC",
        format_date(t.date()),
        t.hour(),
        t.minute()
    )
}

/// "Yes", or when the donor can give: the day only for signed-in viewers, since it is the last
/// donation plus a fixed interval and so tells that date too (see [`Donor::view`]).
fn eligibility_text(e: Eligibility, signed_in: bool) -> String {
    match e {
        Eligibility::Eligible => "Yes".into(),
        Eligibility::NotYet { from } if signed_in => format!("From {}", format_date(from)),
        Eligibility::NotYet { .. } => "Not yet".into(),
    }
}

/// A donor as a results row: never the phone, except one its viewer revealed.
#[derive(Debug)]
struct DonorRow {
    id: i64,
    name: String,
    group: BloodGroup,
    city: String,
    eligibility: String,
    relay_only: bool,
    phone: Option<String>,
}

impl DonorRow {
    fn new(d: &Donor, revealed: &[(i64, String)]) -> Self {
        DonorRow {
            id: d.user_id,
            name: d.display_name.clone(),
            group: d.blood_group,
            city: d.city.clone(),
            eligibility: eligibility_text(d.eligibility, false),
            relay_only: d.relay_only,
            phone: revealed
                .iter()
                .find(|(id, _)| *id == d.user_id)
                .map(|(_, p)| p.clone()),
        }
    }
}

fn donor_page(page: &Page<Donor>, revealed: &[(i64, String)]) -> Page<DonorRow> {
    Page {
        items: page
            .items
            .iter()
            .map(|d| DonorRow::new(d, revealed))
            .collect(),
        page: page.page,
        total_pages: page.total_pages,
        total: page.total,
    }
}

/// A request as the templates show it.
#[derive(Debug)]
struct RequestRow {
    id: i64,
    group: BloodGroup,
    units: u8,
    hospital: String,
    city: String,
    urgency: Urgency,
    status: RequestStatus,
    open: bool,
    created: String,
    closed: Option<String>,
}

impl From<&BloodRequest> for RequestRow {
    fn from(r: &BloodRequest) -> Self {
        RequestRow {
            id: r.id,
            group: r.blood_group,
            units: r.units,
            hospital: r.hospital.clone(),
            city: r.city.clone(),
            urgency: r.urgency,
            status: r.status,
            open: r.status == RequestStatus::Open,
            created: when(r.created_at),
            closed: r.closed_at.map(when),
        }
    }
}

fn render(t: &impl Template) -> Result<String> {
    t.render().map_err(Error::internal)
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing<'a> {
    ctx: PageContext<'a>,
    requests: Vec<&'a BloodRequest>,
}

/// The landing page `/`, with up to five open requests.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn landing(ctx: &PageContext<'_>, open_requests: &Page<BloodRequest>) -> Result<String> {
    render(&Landing {
        ctx: *ctx,
        requests: open_requests.items.iter().take(5).collect(),
    })
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage<'a> {
    ctx: PageContext<'a>,
    email: &'a str,
    errors: Errors<'a>,
}

/// The sign-up form, refilled with `email` (never the password) and showing `errors`.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn sign_up(ctx: &PageContext<'_>, email: &str, errors: &[FieldError]) -> Result<String> {
    render(&SignUpPage {
        ctx: *ctx,
        email,
        errors: Errors(errors),
    })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LogInPage<'a> {
    ctx: PageContext<'a>,
    email: &'a str,
    error: Option<&'a str>,
}

/// The sign-in form, refilled with `email`; `error` is the one generic failure message.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn log_in(ctx: &PageContext<'_>, email: &str, error: Option<&str>) -> Result<String> {
    render(&LogInPage {
        ctx: *ctx,
        email,
        error,
    })
}

/// The message for any failed sign-in: the same for an unknown email and a wrong password.
pub const LOG_IN_FAILED: &str =
    "That email and password do not match an account. Check both and try again.";

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    ctx: PageContext<'a>,
    form: &'a ProfileInput,
    errors: Errors<'a>,
    groups: [BloodGroup; 8],
    eligibility: Option<String>,
    reveals: Vec<RevealRow>,
}

/// One line of the donor's "who contacted you" log, as shown.
#[derive(Debug)]
struct RevealRow {
    when: String,
    who: String,
    request_id: i64,
    request: String,
    what: &'static str,
}

impl ProfilePage<'_> {
    fn selected_group(&self, g: &BloodGroup) -> bool {
        self.form.blood_group.parse::<BloodGroup>().ok() == Some(*g)
    }
}

/// Refills a profile form from a stored profile.
#[must_use]
pub fn profile_input(d: &Donor) -> ProfileInput {
    ProfileInput {
        display_name: d.display_name.clone(),
        blood_group: d.blood_group.to_string(),
        city: d.city.clone(),
        phone: d.phone.clone(),
        last_donation: d.last_donation.map(format_date).unwrap_or_default(),
        available: d.available,
        relay_only: d.relay_only,
    }
}

/// The donor profile form: `form` as submitted (or from [`profile_input`]), `errors`, and the
/// saved profile's eligibility line when there is one.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn profile(
    ctx: &PageContext<'_>,
    form: &ProfileInput,
    errors: &[FieldError],
    saved: Option<&Donor>,
) -> Result<String> {
    profile_with_log(ctx, form, errors, saved, &[])
}

/// [`profile`] with the donor's reveal log: who saw the number or sent a message, when, and
/// for which request.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn profile_with_log(
    ctx: &PageContext<'_>,
    form: &ProfileInput,
    errors: &[FieldError],
    saved: Option<&Donor>,
    log: &[RevealEntry],
) -> Result<String> {
    render(&ProfilePage {
        ctx: *ctx,
        reveals: log
            .iter()
            .map(|e| RevealRow {
                when: when(e.at),
                who: e.who.clone(),
                request_id: e.request_id,
                request: e.request.clone(),
                what: match e.kind {
                    RevealKind::Phone => "saw your number",
                    RevealKind::Relay => "sent you a message through the registry",
                },
            })
            .collect(),
        form,
        errors: Errors(errors),
        groups: BloodGroup::ALL,
        eligibility: saved.map(|d| match d.eligibility {
            Eligibility::Eligible => "You can give blood now.".to_string(),
            Eligibility::NotYet { from } => {
                format!("You can give blood again from {}.", format_date(from))
            }
        }),
    })
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage<'a> {
    ctx: PageContext<'a>,
    form: &'a SearchInput,
    errors: Errors<'a>,
    groups: [BloodGroup; 8],
    results: Option<Page<DonorRow>>,
}

impl SearchPage<'_> {
    fn selected_group(&self, g: &BloodGroup) -> bool {
        self.form.blood_group.parse::<BloodGroup>().ok() == Some(*g)
    }

    fn compatible(&self) -> bool {
        self.form.mode.trim() == "compatible"
    }

    fn eligible_only(&self) -> bool {
        self.form
            .eligible_only
            .as_deref()
            .is_some_and(|v| matches!(v.trim(), "on" | "true" | "1" | "yes"))
    }

    /// The search URL for page `n`, if that page exists.
    fn page_href(&self, n: u32) -> Option<String> {
        let total = self.results.as_ref().map_or(1, |p| p.total_pages);
        if n < 1 || n > total {
            return None;
        }
        let mut q = format!(
            "{}?blood_group={}&mode={}&city={}",
            paths::DONORS,
            encode_component(self.form.blood_group.trim()),
            encode_component(if self.compatible() {
                "compatible"
            } else {
                "exact"
            }),
            encode_component(self.form.city.trim()),
        );
        if self.eligible_only() {
            q.push_str("&eligible_only=on");
        }
        q.push_str(&format!("&page={n}"));
        Some(q)
    }
}

/// The donor search: the form as submitted, its errors, and a page of results once searched.
/// Never a phone number.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn search(
    ctx: &PageContext<'_>,
    form: &SearchInput,
    errors: &[FieldError],
    results: Option<&Page<Donor>>,
) -> Result<String> {
    render(&SearchPage {
        ctx: *ctx,
        form,
        errors: Errors(errors),
        groups: BloodGroup::ALL,
        results: results.map(|p| donor_page(p, &[])),
    })
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage<'a> {
    ctx: PageContext<'a>,
    open: Page<RequestRow>,
    mine: Vec<RequestRow>,
}

/// The open requests, and the viewer's own (open and closed) when signed in.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn requests(
    ctx: &PageContext<'_>,
    open: &Page<BloodRequest>,
    mine: &[BloodRequest],
) -> Result<String> {
    render(&RequestsPage {
        ctx: *ctx,
        open: Page {
            items: open.items.iter().map(RequestRow::from).collect(),
            page: open.page,
            total_pages: open.total_pages,
            total: open.total,
        },
        mine: mine.iter().map(RequestRow::from).collect(),
    })
}

#[derive(Template)]
#[template(path = "request_detail.html")]
struct RequestDetailPage<'a> {
    ctx: PageContext<'a>,
    r: RequestRow,
    owner: bool,
    compatible: String,
    matches: Page<DonorRow>,
    quota: u32,
}

/// What the owner of a request may do with its matching donors: the daily quota (shown), and
/// the numbers already revealed for this request (donor id, phone).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContact<'a> {
    /// Reveals per day for this account.
    pub quota: u32,
    /// (donor id, phone) revealed for this request.
    pub revealed: &'a [(i64, String)],
}

/// One request with its matching eligible donors; the close button shows only when
/// `viewer_id` is the owner and the request is open.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn request_detail(
    ctx: &PageContext<'_>,
    request: &BloodRequest,
    matches: &Page<Donor>,
    viewer_id: Option<i64>,
) -> Result<String> {
    request_detail_with(ctx, request, matches, viewer_id, RequestContact::default())
}

/// [`request_detail`], with the owner's contact controls: a "Show number" button per donor
/// (or a message form for donors reached through the registry only) and the numbers
/// `contact` says were revealed. Only the owner ever gets those.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn request_detail_with(
    ctx: &PageContext<'_>,
    request: &BloodRequest,
    matches: &Page<Donor>,
    viewer_id: Option<i64>,
    contact: RequestContact<'_>,
) -> Result<String> {
    let owner = viewer_id.is_some_and(|v| request.is_owned_by(v));
    let revealed = if owner { contact.revealed } else { &[] };
    render(&RequestDetailPage {
        ctx: *ctx,
        quota: contact.quota,
        r: RequestRow::from(request),
        owner,
        compatible: request
            .blood_group
            .compatible_donors()
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        matches: donor_page(matches, revealed),
    })
}

#[derive(Template)]
#[template(path = "request_form.html")]
struct RequestFormPage<'a> {
    ctx: PageContext<'a>,
    form: &'a RequestInput,
    errors: Errors<'a>,
    groups: [BloodGroup; 8],
    urgencies: [Urgency; 3],
}

impl RequestFormPage<'_> {
    fn selected_group(&self, g: &BloodGroup) -> bool {
        self.form.blood_group.parse::<BloodGroup>().ok() == Some(*g)
    }

    fn selected_urgency(&self, u: &Urgency) -> bool {
        Urgency::parse(&self.form.urgency).unwrap_or(Urgency::Normal) == *u
    }
}

/// The new-request form, refilled with `form` and showing `errors`.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn request_form(
    ctx: &PageContext<'_>,
    form: &RequestInput,
    errors: &[FieldError],
) -> Result<String> {
    render(&RequestFormPage {
        ctx: *ctx,
        form,
        errors: Errors(errors),
        groups: BloodGroup::ALL,
        urgencies: Urgency::ALL,
    })
}

/// A session row as shown.
#[derive(Debug)]
struct SessionView {
    id: String,
    created: String,
    last_seen: String,
    client: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage<'a> {
    ctx: PageContext<'a>,
    rows: Vec<SessionView>,
}

/// The account page: the user's sessions, each with a revoke button, and "sign out
/// everywhere".
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn sessions(ctx: &PageContext<'_>, rows: &[SessionRow]) -> Result<String> {
    render(&SessionsPage {
        ctx: *ctx,
        rows: rows
            .iter()
            .map(|r| SessionView {
                id: encode_component(&r.id),
                created: when(r.created),
                last_seen: when(r.last_seen),
                client: r.client.clone(),
                current: r.current,
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    ctx: PageContext<'a>,
    email: &'a str,
    errors: Errors<'a>,
}

/// The change-password form (`email` is given to password managers; never refilled).
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn change_password(
    ctx: &PageContext<'_>,
    email: &str,
    errors: &[FieldError],
) -> Result<String> {
    render(&PasswordPage {
        ctx: *ctx,
        email,
        errors: Errors(errors),
    })
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: PageContext<'a>,
    title: &'a str,
    message: &'a str,
    request_id: Option<&'a str>,
}

/// An error page for `status` with a generic title and message a person can act on, and the
/// request id to quote when reporting it.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn error_page(ctx: &PageContext<'_>, status: u16, request_id: Option<&str>) -> Result<String> {
    let (title, message) = match status {
        400 => (
            "Bad request",
            "The request could not be read. Go back and try again.",
        ),
        403 => (
            "Not allowed",
            "You cannot do this. If you were signed out, sign in and try again.",
        ),
        404 => ("Not found", "There is nothing at this address."),
        409 => (
            "Conflict",
            "This changed in the meantime. Reload the page and try again.",
        ),
        422 => (
            "Check your input",
            "Some fields need attention. Go back and correct them.",
        ),
        429 => ("Too many attempts", "Wait a little, then try again."),
        503 => (
            "Temporarily unavailable",
            "The registry cannot reach its database right now. Try again in a minute.",
        ),
        _ => (
            "Something went wrong",
            "An unexpected error happened on our side. Try again later.",
        ),
    };
    render(&ErrorPage {
        ctx: *ctx,
        title,
        message,
        request_id,
    })
}

/// The error page for a portal [`Error`], with its status code.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn error_for(
    ctx: &PageContext<'_>,
    error: &Error,
    request_id: Option<&str>,
) -> Result<(u16, String)> {
    let status = error.status_code();
    Ok((status, error_page(ctx, status, request_id)?))
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    ctx: PageContext<'a>,
    title: &'a str,
    message: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// A page with a title, one message and an optional link (`href`, label).
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn message(
    ctx: &PageContext<'_>,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Result<String> {
    render(&MessagePage {
        ctx: *ctx,
        title,
        message,
        link,
    })
}

#[derive(Template)]
#[template(path = "email_form.html")]
struct EmailFormPage<'a> {
    ctx: PageContext<'a>,
    title: &'a str,
    intro: &'a str,
    action: &'a str,
    button: &'a str,
    email: &'a str,
}

/// A form asking for an email address, posting to `action` (password reset, resend).
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn email_form(
    ctx: &PageContext<'_>,
    title: &str,
    intro: &str,
    action: &str,
    button: &str,
    email: &str,
) -> Result<String> {
    render(&EmailFormPage {
        ctx: *ctx,
        title,
        intro,
        action,
        button,
        email,
    })
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    ctx: PageContext<'a>,
    token: &'a str,
}

/// The page a verification link opens: one button that posts the token (so that a mail
/// scanner fetching the link does not spend it).
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn verify(ctx: &PageContext<'_>, token: &str) -> Result<String> {
    render(&VerifyPage { ctx: *ctx, token })
}

#[derive(Template)]
#[template(path = "reset_form.html")]
struct ResetFormPage<'a> {
    ctx: PageContext<'a>,
    token: &'a str,
    errors: Errors<'a>,
}

/// The new-password form a reset link opens.
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn reset_form(ctx: &PageContext<'_>, token: &str, errors: &[FieldError]) -> Result<String> {
    render(&ResetFormPage {
        ctx: *ctx,
        token,
        errors: Errors(errors),
    })
}

#[derive(Template)]
#[template(path = "confirm_password.html")]
struct ConfirmPasswordPage<'a> {
    ctx: PageContext<'a>,
    title: &'a str,
    intro: &'a str,
    action: &'a str,
    button: &'a str,
    danger: bool,
    errors: Errors<'a>,
}

/// A form asking for the password again before a sensitive action: `danger` for erasure
/// (a red button and a confirmation dialog).
///
/// # Errors
/// [`Error::Internal`] if rendering fails.
pub fn confirm_password(
    ctx: &PageContext<'_>,
    title: &str,
    intro: &str,
    (action, button): (&str, &str),
    danger: bool,
    errors: &[FieldError],
) -> Result<String> {
    render(&ConfirmPasswordPage {
        ctx: *ctx,
        title,
        intro,
        action,
        button,
        danger,
        errors: Errors(errors),
    })
}
