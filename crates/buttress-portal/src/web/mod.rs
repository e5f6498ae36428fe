//! The portal's HTTP layer: routes, the current-user extractor, errors, and [`build`], which
//! opens the database and wraps the routes in the whole Buttress stack (what `buttress serve`
//! runs).
//!
//! | area | module | routes |
//! | --- | --- | --- |
//! | sign-up, sign-in, sign-out | `auth` | `/signup`, `/login`, `/logout` |
//! | donor profile and search | `donors` | `/profile`, `/donors` |
//! | blood requests | `requests` | `/requests`, `/requests/new`, `/requests/{id}`, `/requests/{id}/close` |
//! | sessions and password | `account` | `/account/sessions`, `/account/sessions/{id}/revoke`, `/account/sessions/revoke-all`, `/account/password` |
//! | mailed links | `links` | `/verify`, `/verify/resend`, `/password-reset`, `/password-reset/confirm` |
//! | contact data | `contact` | `/requests/{id}/reveal`, `/requests/{id}/relay`, `POST /api/requests/{id}/reveal` |
//! | the donor's own data | `data` | `/account/export`, `/account/delete` |
//! | JSON API | `api` | `GET /api/donors`, `POST /api/requests` |
//! | plumbing | here, `health` | `/`, `/healthz`, `/readyz`, `/static/portal.css`, `/csp-report` |
//!
//! Handlers reach the layers through extractors only: [`Session`], [`CsrfToken`],
//! [`CspNonce`] and [`Viewer`] (the signed-in user, if any). Every error a handler returns is
//! an [`AppError`], answered as a [`Problem`] (HTML or problem+json by `Accept`) without
//! internals; a form with validation errors is re-rendered with 422 and [`KeepBody`].
//!
//! [`build`] adds the portal's limits: [`LOGIN_LIMIT`] on `/login`, [`SIGN_UP_LIMIT`] on
//! `/signup`, `/verify/resend` and `/password-reset`, [`READY_LIMIT`] on `/readyz` per client
//! address, and a [`LoginThrottle`] counting failed sign-ins per account.

mod account;
mod api;
mod auth;
mod contact;
mod data;
mod donors;
mod health;
mod links;
mod requests;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use buttress::csrf::CsrfToken;
use buttress::errors::{KeepBody, Problem};
use buttress::headers::{CspNonce, CspReports};
use buttress::ratelimit::LoginThrottle;
use buttress::session::SessionStoreKind;
use buttress::session::{Session, SessionError, SessionStore};
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress::Buttress;

use crate::accounts::{PasswordParams, User};
use crate::error::Error;
use crate::render::{self, paths, Flash, FlashKind, PageContext};
use crate::sessions::DbSessions;
use crate::Portal;

/// The path of the CSP violation report endpoint (exempt from CSRF: browsers post reports
/// without a token).
pub const CSP_REPORT_PATH: &str = "/csp-report";

/// The session key of the one-time message shown on the next page.
const FLASH_KEY: &str = "flash";

/// Requests to `/login` (form and submissions together) per client address: the article's
/// figure. Counted outside the CSRF check, so refused posts count too.
pub const LOGIN_LIMIT: &str = "5 per minute";

/// Requests to `/signup` per client address (bounds probing for registered addresses); the
/// same limit, counted apart, on `/verify/resend` and `/password-reset`.
pub const SIGN_UP_LIMIT: &str = "10 per minute; 60 per hour";

/// Requests to `/readyz` per client address (its answer is cached for a second anyway).
pub const READY_LIMIT: &str = "120 per minute";

/// Mail to one address at most, per hour and per day, whatever asks for it (sign-up,
/// resend, reset, relayed messages): no mail bomb through the registry.
pub const MAIL_PER_ADDRESS: (u32, u32) = (3, 10);

/// What the privacy features need: mail, token keys, quotas, and where sessions live (an
/// erasure deletes the account's session rows in its transaction; signing an account out
/// everywhere after a reset or an erasure goes through the session layer,
/// [`Session::sign_out_everywhere`]). Cheap to clone.
#[derive(Clone)]
pub struct Privacy {
    /// Where mail goes (SMTP, or the Development outbox).
    pub mailer: crate::mail::Mailer,
    /// The keys of mailed links and address keys.
    pub keys: crate::tokens::TokenKeys,
    /// `BUTTRESS_PUBLIC_URL`: the origin links in mail use; `None` uses the request's.
    pub public_url: Option<String>,
    /// `BUTTRESS_REVEAL_QUOTA`.
    pub reveal_quota: u32,
    /// `BUTTRESS_OPEN_REQUEST_CAP`.
    pub open_request_cap: u32,
    /// The session store (the readiness check loads from it).
    pub sessions: Option<Arc<dyn SessionStore>>,
    /// When sessions live in the portal's database: the application ids their rows carry (the
    /// keyring's, the primary key's first), whose rows of an account an erasure deletes in its
    /// transaction. Empty when sessions live elsewhere.
    pub session_apps_in_db: Vec<buttress::secret::AppId>,
    ready: Arc<health::Readiness>,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy")
            .field("mailer", &self.mailer)
            .field("public_url", &self.public_url)
            .field("reveal_quota", &self.reveal_quota)
            .field("open_request_cap", &self.open_request_cap)
            .field("sessions", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

impl Privacy {
    /// Privacy settings from `settings`, mail through `mailer`, keys from `keyring`.
    #[must_use]
    pub fn new(
        settings: &Settings,
        mailer: crate::mail::Mailer,
        keyring: &buttress::secret::Keyring,
    ) -> Self {
        Privacy {
            mailer,
            keys: crate::tokens::TokenKeys::new(keyring),
            public_url: settings.public_url.clone(),
            reveal_quota: settings.reveal_quota,
            open_request_cap: settings.open_request_cap,
            sessions: None,
            session_apps_in_db: Vec::new(),
            ready: Arc::default(),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database and accounts.
    pub portal: Portal,
    /// Failed sign-ins per account and address, with capped backoff
    /// ([`LoginThrottle`]: in memory, or on Redis from [`Buttress::login_throttle`]).
    pub login_throttle: LoginThrottle,
    /// Mail, tokens, quotas.
    pub privacy: Privacy,
    /// The CSP report endpoint (counted with the stack's telemetry by [`build`]).
    pub csp_reports: CspReports,
}

impl AppState {
    /// State over `portal` and `privacy`, with an in-memory login throttle.
    #[must_use]
    pub fn new(portal: Portal, privacy: Privacy) -> Self {
        AppState {
            portal,
            login_throttle: LoginThrottle::new(),
            privacy,
            csp_reports: CspReports::default(),
        }
    }

    /// Counts CSP reports with `telemetry` (e.g. [`Buttress::telemetry`]).
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: buttress::telemetry::Telemetry) -> Self {
        self.csp_reports = CspReports::new(telemetry);
        self
    }

    /// Uses `throttle` for failed sign-ins (e.g. [`Buttress::login_throttle`], in the
    /// configured rate-limit storage).
    #[must_use]
    pub fn with_login_throttle(mut self, throttle: LoginThrottle) -> Self {
        self.login_throttle = throttle;
        self
    }
}

/// The portal's routes (exactly [`render::paths`] plus the API, health check, stylesheet and
/// CSP report endpoint), without the Buttress layers: wrap them with [`Buttress::apply`], or
/// use [`build`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(paths::HOME, get(landing))
        .route(paths::STYLESHEET, get(stylesheet))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(CSP_REPORT_PATH, state.csp_reports.clone().route())
        .route(paths::SIGN_UP, get(auth::sign_up_form).post(auth::sign_up))
        .route(paths::LOG_IN, get(auth::log_in_form).post(auth::log_in))
        .route(paths::LOG_OUT, post(auth::log_out))
        .route(
            paths::PROFILE,
            get(donors::profile_form).post(donors::save_profile),
        )
        .route(paths::DONORS, get(donors::search))
        .route(paths::REQUESTS, get(requests::list))
        .route(
            paths::NEW_REQUEST,
            get(requests::new_form).post(requests::create),
        )
        .route(paths::REQUEST, get(requests::detail))
        .route(paths::CLOSE_REQUEST, post(requests::close))
        .route(paths::SESSIONS, get(account::sessions))
        .route(paths::REVOKE_SESSION, post(account::revoke))
        .route(paths::REVOKE_ALL, post(account::revoke_all))
        .route(
            paths::PASSWORD,
            get(account::password_form).post(account::change_password),
        )
        .route(paths::VERIFY, get(links::verify_page).post(links::verify))
        .route(paths::RESEND, get(links::resend_form).post(links::resend))
        .route(
            paths::RESET,
            get(links::reset_request_form).post(links::reset_request),
        )
        .route(
            paths::RESET_CONFIRM,
            get(links::reset_form).post(links::reset),
        )
        .route(paths::REVEAL, post(contact::reveal))
        .route(paths::RELAY, post(contact::relay))
        .route(paths::EXPORT, get(data::export).post(data::reauth))
        .route(paths::DELETE, get(data::delete_form).post(data::delete))
        .route("/api/donors", get(api::donors))
        .route("/api/requests", post(api::create_request))
        .route("/api/requests/{id}/reveal", post(contact::reveal_json))
        .fallback(not_found)
        .with_state(state)
}

/// Options of [`build`] beyond the settings.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// argon2id costs (default: OWASP's; tests lower them).
    pub password_params: Option<PasswordParams>,
    /// A session store to use instead of the one the settings choose.
    pub session_store: Option<Arc<dyn SessionStore>>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("password_params", &self.password_params)
            .field("session_store", &self.session_store.is_some())
            .finish()
    }
}

/// Why [`build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The settings were refused (exit code 3).
    #[error(transparent)]
    Startup(#[from] buttress::StartupError),
    /// The database could not be opened or migrated.
    #[error("the portal's database could not be opened: {0}")]
    Database(#[from] Error),
    /// The session table could not be created.
    #[error("the session table could not be created: {0}")]
    Sessions(#[from] buttress::session::StoreError),
    /// A route limit did not build.
    #[error("a rate limit of the portal did not build: {0}")]
    RateLimit(#[from] buttress::ratelimit::RateLimitError),
    /// The mail settings were refused.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// A portal deploy check failed in Production (see [`crate::check`]).
    #[error("the portal refuses to start in Production: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unsafe(Vec<buttress::check::Finding>),
}

impl BuildError {
    /// The process exit code: 3 for refused settings (as the library's), 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Startup(e) => e.exit_code(),
            BuildError::Mail(_) | BuildError::Unsafe(_) => 3,
            _ => 1,
        }
    }
}

/// Opens the database (PostgreSQL when `DATABASE_URL` is a `postgres://` URL, else SQLite in
/// `data_dir`), runs the migrations, puts sessions in the same database and wraps
/// [`router`] in the whole Buttress stack, with [`LOGIN_LIMIT`] on `/login`, [`SIGN_UP_LIMIT`]
/// on `/signup` and the login throttle in the configured rate-limit storage.
///
/// Sessions are server-side whatever `BUTTRESS_SESSION_STORE` says, because the account page
/// lists and revokes them: `cookie` (the default) and `sql` both mean the SQL store on the
/// portal's pool, `memory` keeps them in this process, and `redis` in Redis at `REDIS_URL`
/// (the store the stack makes). [`BuildOptions::session_store`] overrides all of these. In the
/// portal's database the session layer binds the store to its application id and keeps the
/// sign-outs (credentials epochs) there too ([`DbSessions`]), so a sign-out on one instance
/// holds on every instance sharing the database.
///
/// # Errors
/// [`BuildError`]: refused settings, an unreachable database, a failed migration.
pub async fn build(
    settings: &Settings,
    options: BuildOptions,
) -> Result<(Stack, Portal), BuildError> {
    let stack = Buttress::from_settings(settings)?;
    let unsafe_findings: Vec<_> = crate::check::run(settings)
        .into_iter()
        .filter(|f| f.severity == buttress::check::Severity::Error)
        .collect();
    if settings.environment == buttress::settings::Environment::Production
        && !unsafe_findings.is_empty()
    {
        return Err(BuildError::Unsafe(unsafe_findings));
    }
    let mailer = match &settings.smtp_url {
        Some(url) => crate::mail::Mailer::smtp(url, &settings.mail_from)?,
        None => crate::mail::Mailer::outbox(&settings.data_dir, &settings.mail_from),
    };
    stack.warm_up().await;
    let portal = Portal::open(
        settings.database_url.as_ref().map(|u| u.expose()),
        &settings.data_dir,
        options.password_params.unwrap_or_default(),
    )
    .await?;
    let configured = stack.session_store().cloned();
    let mut sessions_in_db = false;
    // The application ids the session layer binds the store to (one per key of the keyring).
    let apps = stack.keyring().app_ids(settings.app_id.as_ref());
    let store: Arc<dyn SessionStore> = match (options.session_store, configured) {
        (Some(store), _) => store,
        // `memory` and `redis` (REDIS_URL): the store the stack made from the settings.
        (None, Some(store)) => store,
        // `cookie` (the default) and `sql`: the portal's database.
        (None, None) => {
            if settings.session_store == SessionStoreKind::Cookie {
                tracing::info!(
                    "the portal keeps sessions in its database (encrypted cookies cannot be revoked); BUTTRESS_SESSION_STORE=redis keeps them in Redis"
                );
            }
            let sql = DbSessions::new(portal.db.clone());
            sql.migrate().await?;
            sessions_in_db = true;
            Arc::new(sql)
        }
    };
    let mut privacy = Privacy::new(settings, mailer, stack.keyring());
    privacy.sessions = Some(store.clone());
    if sessions_in_db {
        privacy.session_apps_in_db = apps;
    }
    spawn_sweeper(portal.clone(), settings.unverified_retention);
    let state = AppState::new(portal.clone(), privacy)
        .with_login_throttle(stack.login_throttle())
        .with_telemetry(stack.telemetry().clone());
    let app = stack
        .with_session_store(store)
        .csrf_exempt(CSP_REPORT_PATH)
        .limit_route(paths::LOG_IN, LOGIN_LIMIT)?
        .limit_route(paths::SIGN_UP, SIGN_UP_LIMIT)?
        .limit_route(paths::RESEND, SIGN_UP_LIMIT)?
        .limit_route(paths::RESET, SIGN_UP_LIMIT)?
        .limit_route("/readyz", READY_LIMIT)?
        .apply(router(state))?;
    Ok((app, portal))
}

/// How often unverified accounts past their retention, spent tokens and old mail-throttle rows
/// are swept.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Sweeps now and every [`SWEEP_EVERY`] (a failure is logged and tried again next time).
fn spawn_sweeper(portal: Portal, retention: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match portal.accounts.purge_unverified(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("erased {n} account(s) never verified"),
                Err(e) => tracing::warn!(error = %e, "sweeping unverified accounts failed"),
            }
            if let Err(e) = portal.db.sweep_tokens().await {
                tracing::warn!(error = %e, "sweeping spent tokens failed");
            }
        }
    });
}

/// An error from a handler, answered without internals.
#[derive(Debug)]
pub enum AppError {
    /// A portal error (its status code from [`Error::status_code`]).
    Portal(Error),
    /// A session error (the store is down: 503).
    Session(SessionError),
    /// Not signed in (for the JSON API: 401).
    Unauthenticated,
    /// Signed in, but the address is not confirmed yet (403).
    Unverified,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Portal(e)
    }
}

impl From<SessionError> for AppError {
    fn from(e: SessionError) -> Self {
        AppError::Session(e)
    }
}

/// The 422 problem listing each field, as the JSON API answers validation errors.
pub(crate) fn validation_problem(errors: &[crate::error::FieldError]) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .with_kind("validation")
        .with_detail("Some fields need attention.")
        .with_member(
            "errors",
            serde_json::to_value(errors).unwrap_or(serde_json::Value::Null),
        )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Session(e) => e.into_response(),
            AppError::Unverified => Problem::new(StatusCode::FORBIDDEN)
                .with_kind("unverified")
                .with_detail("Confirm your address first: open the link we mailed you, or ask for a new one at /verify/resend.")
                .into_response(),
            AppError::Unauthenticated => Problem::new(StatusCode::UNAUTHORIZED)
                .with_kind("sign-in-required")
                .with_detail("Sign in first.")
                .into_response(),
            AppError::Portal(e) => match &e {
                Error::Invalid(fields) => validation_problem(fields).into_response(),
                Error::NotFound => Problem::new(StatusCode::NOT_FOUND)
                    .with_kind("not-found")
                    .with_detail("There is nothing at this address.")
                    .into_response(),
                Error::Forbidden => Problem::new(StatusCode::FORBIDDEN)
                    .with_kind("forbidden")
                    .with_detail("Only the owner can do this.")
                    .into_response(),
                Error::Limit(message) => Problem::new(StatusCode::TOO_MANY_REQUESTS)
                    .with_kind("quota")
                    .with_detail(*message)
                    .into_response(),
                Error::Conflict => Problem::new(StatusCode::CONFLICT)
                    .with_kind("conflict")
                    .with_detail("This changed in the meantime. Reload the page and try again.")
                    .into_response(),
                Error::Unavailable(_) => {
                    tracing::error!(error = ?e, "database unavailable");
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                        .with_kind("database-unavailable")
                        .with_detail(
                            "The registry cannot reach its database right now. Try again in a minute.",
                        )
                        .into_response()
                }
                _ => {
                    tracing::error!(error = ?e, "internal error");
                    Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
                }
            },
        }
    }
}

/// The handlers' result type.
pub(crate) type AppResult<T = Response> = Result<T, AppError>;

/// The viewer: the request's session and the signed-in user, if any.
///
/// A session bound to a user id that no longer exists counts as signed out.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session.
    pub session: Session,
    /// The signed-in user.
    pub user: Option<User>,
}

impl Viewer {
    /// The signed-in user, or [`AppError::Unauthenticated`].
    pub(crate) fn require(&self) -> AppResult<&User> {
        self.user.as_ref().ok_or(AppError::Unauthenticated)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let id = session.user().await?.and_then(|u| u.parse::<i64>().ok());
        let user = match id {
            Some(id) => state.portal.accounts.user(id).await?,
            None => None,
        };
        Ok(Viewer { session, user })
    }
}

/// A signed-in viewer; anyone else is sent to the sign-in page (303).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// The user.
    pub user: User,
}

/// The rejection of [`SignedIn`]: a redirect to the sign-in page, or an [`AppError`].
#[derive(Debug)]
pub enum SignInRejection {
    /// Not signed in.
    Redirect,
    /// The session or database failed.
    Error(AppError),
}

impl IntoResponse for SignInRejection {
    fn into_response(self) -> Response {
        match self {
            SignInRejection::Redirect => Redirect::to(paths::LOG_IN).into_response(),
            SignInRejection::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = SignInRejection;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state)
            .await
            .map_err(SignInRejection::Error)?;
        match viewer.user {
            Some(user) => Ok(SignedIn {
                session: viewer.session,
                user,
            }),
            None => Err(SignInRejection::Redirect),
        }
    }
}

/// What a page needs besides its data: nonce, viewer, CSRF token, one-time message.
pub(crate) struct PageParts {
    nonce: CspNonce,
    signed_in: bool,
    unverified: bool,
    email: Option<String>,
    token: String,
    flash: Option<(String, String)>,
}

impl PageParts {
    /// Gathers the parts. A CSRF token (and so a session) is made only when the page has a
    /// POST form: for a signed-in viewer (the sign-out button) or when `form` says so.
    /// Anonymous visitors to pages without forms create no session.
    pub(crate) async fn new(
        nonce: CspNonce,
        session: &Session,
        user: Option<&User>,
        form: bool,
    ) -> AppResult<PageParts> {
        let token = if form || user.is_some() {
            CsrfToken::for_session(session).await?.masked()
        } else {
            String::new()
        };
        let flash = take_flash(session).await?;
        Ok(PageParts {
            nonce,
            signed_in: user.is_some(),
            unverified: user.is_some_and(|u| !u.is_verified()),
            email: user.map(|u| u.email.clone()),
            token,
            flash,
        })
    }

    /// The template context.
    pub(crate) fn ctx(&self) -> PageContext<'_> {
        PageContext {
            csrf_token: &self.token,
            nonce: self.nonce.as_str(),
            signed_in: self.signed_in,
            unverified: self.unverified,
            user_email: self.email.as_deref(),
            flash: self.flash.as_ref().map(|(kind, message)| Flash {
                kind: match kind.as_str() {
                    "success" => FlashKind::Success,
                    "error" => FlashKind::Error,
                    _ => FlashKind::Info,
                },
                message,
            }),
        }
    }
}

/// Leaves a one-time message for the next page.
pub(crate) async fn set_flash(session: &Session, kind: FlashKind, message: &str) -> AppResult<()> {
    session
        .insert(FLASH_KEY, (kind.as_str(), message))
        .await
        .map_err(AppError::from)
}

async fn take_flash(session: &Session) -> AppResult<Option<(String, String)>> {
    let flash: Option<(String, String)> = session.get(FLASH_KEY).await?;
    if flash.is_some() {
        session.remove(FLASH_KEY).await?;
    }
    Ok(flash)
}

/// A page: 200 HTML.
pub(crate) fn page(html: String) -> Response {
    Html(html).into_response()
}

/// A form re-rendered with its validation errors: 422, body kept by the error pages layer.
pub(crate) fn invalid_form(html: String) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, KeepBody, Html(html)).into_response()
}

/// Post/Redirect/Get: 303 to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Parses a page number from a query (`1` when absent or malformed).
pub(crate) fn page_number(raw: Option<&str>) -> u32 {
    raw.and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// `?page=N` query.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

impl PageQuery {
    pub(crate) fn number(&self) -> u32 {
        page_number(self.page.as_deref())
    }
}

async fn landing(State(state): State<AppState>, nonce: CspNonce, viewer: Viewer) -> AppResult {
    let open = state.portal.db.open_requests(1).await?;
    let parts = PageParts::new(nonce, &viewer.session, viewer.user.as_ref(), false).await?;
    Ok(page(render::landing(&parts.ctx(), &open)?))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        render::PORTAL_CSS,
    )
        .into_response()
}

async fn not_found() -> AppError {
    AppError::Portal(Error::NotFound)
}
