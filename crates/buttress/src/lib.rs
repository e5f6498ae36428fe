//! Buttress: the layered defence of a hardened web application, for axum and tower.
//!
//! [`Buttress`] reads [`Settings`], refuses an unsafe Production start, and wraps your whole
//! application in one [`Stack`](stack::Stack): a service whose `call` runs every protection in
//! order — request id, proxy resolution, HTTPS redirect, rate limits, body limit and deadline,
//! session, CSRF — then your router, and on the way out the session commit, rate-limit
//! headers, security headers (CSP with a per-request nonce, HSTS on HTTPS), safe error pages
//! and the request id. The order and the reasons for it are in [`stack`]. Each concern is also
//! a module with a `Layer` of its own for an app that wants only that one.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::{settings::Settings, Buttress};
//!
//! let settings = Settings::default(); // Development on 127.0.0.1:8000
//! let app = Buttress::from_settings(&settings)?
//!     .apply(Router::new().route("/", get(|| async { "hello" })))?;
//! # Ok::<(), buttress::StartupError>(())
//! ```
//!
//! Routes go in before [`Buttress::apply`]; the [`Stack`](stack::Stack) it returns takes none,
//! so nothing can be added around the protections by mistake.

#![deny(unreachable_pub, unsafe_code)]
#![warn(missing_docs)]

pub use context::RequestContext;
pub use startup::StartupError;

pub mod check;
mod context;
pub mod csrf;
pub mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
mod host;
pub mod https;
mod plan;
pub mod proxy;
pub mod ratelimit;
pub mod request_id;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub mod session;
pub mod settings;
pub mod stack;
mod startup;
pub mod telemetry;
pub mod timeout;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;

use check::Finding;
use csrf::CsrfLayer;
use headers::SecureHeadersLayer;
use https::HttpsRedirectLayer;
use plan::SharedLimits;
use proxy::ProxyConfig;
use ratelimit::RateLimitLayer;
use secret::Keyring;
use session::{MemoryStore, SessionLayer, SessionStore, SessionStoreKind};
use settings::{Environment, Settings};

/// Every protection, configured from [`Settings`]; [`Buttress::apply`] wraps an application
/// in them.
///
/// ```
/// let b = buttress::Buttress::from_settings(&Default::default())?
///     .limit_route("/login", "5 per minute")?
///     .csrf_exempt("/webhooks/payments");
/// assert_eq!(b.environment(), buttress::settings::Environment::Development);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Buttress {
    settings: Arc<Settings>,
    keyring: Keyring,
    notices: Vec<Finding>,
    proxy: ProxyConfig,
    headers: SecureHeadersLayer,
    https: Option<HttpsRedirectLayer>,
    session_store: Option<Arc<dyn SessionStore>>,
    csrf: CsrfLayer,
    global: Option<RateLimitLayer>,
    shared: SharedLimits,
    route_limits: ratelimit::PathLimitsLayer,
    telemetry: telemetry::Telemetry,
}

impl Buttress {
    /// Validates `settings` and configures every protection.
    ///
    /// Refuses to start in Development on a non-loopback address, and in Production with a
    /// missing or weak key or any error-level [checklist](check) finding. In Development
    /// without a key an ephemeral one is made (and a warning logged). A session store the
    /// settings name is opened here (memory, Redis); an SQL one comes from the application
    /// ([`Buttress::with_session_store`]).
    pub fn from_settings(settings: &Settings) -> Result<Buttress, StartupError> {
        let (keyring, notices) = startup::admit(settings)?;
        // Every Redis key and SQL row of this application carries its id (`BUTTRESS_APP_ID`,
        // else one derived from the key): deployments sharing a store stay apart.
        let app = keyring.app_id(settings.app_id.as_ref());
        let shared = SharedLimits::from_settings(settings, &app)?;
        Ok(Buttress {
            settings: Arc::new(settings.clone()),
            keyring,
            notices,
            proxy: plan::proxy(settings),
            headers: plan::headers(settings),
            https: plan::https(settings),
            session_store: session_store(settings)?,
            csrf: plan::csrf(settings),
            global: shared.global(settings),
            shared,
            route_limits: ratelimit::PathLimitsLayer::new(),
            telemetry: plan::telemetry(settings),
        })
    }

    /// The global rate limit layer (`None` when `ratelimit_default` is `none`).
    ///
    /// ```
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// let global = b.rate_limiter().expect("on by default");
    /// assert_eq!(global.limiter().limits().to_string(), "200 per day; 50 per hour");
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn rate_limiter(&self) -> Option<&RateLimitLayer> {
        self.global.as_ref()
    }

    /// Failure counters for a login form ([`ratelimit::LoginThrottle`]) in the same storage as
    /// the limits (Redis when configured), failing closed.
    ///
    /// ```
    /// let mut settings = buttress::settings::Settings::default();
    /// settings.ratelimit_max_keys = 5_000; // BUTTRESS_RATELIMIT_MAX_KEYS bounds it too
    /// let b = buttress::Buttress::from_settings(&settings)?;
    /// assert_eq!(b.login_throttle().max_keys(), Some(5_000));
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn login_throttle(&self) -> ratelimit::LoginThrottle {
        // Per application, as every limit: deployments sharing a Redis count apart.
        self.shared
            .login_throttle()
            .with_telemetry(self.telemetry.clone())
    }

    /// A per-route limit (e.g. `"5 per minute"`) with the same storage, headers and address
    /// grouping as the global one; it fails closed when a shared store is down. Add it with
    /// `.route_layer(..)` on a route; to limit a login form, prefer [`Buttress::limit_route`],
    /// which also counts the requests that CSRF refuses.
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// let app = b.clone().apply(Router::new().route(
    ///     "/export",
    ///     post(|| async { "hi" }).route_layer(b.rate_limit("5 per minute")?),
    /// ))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rate_limit(&self, limits: &str) -> Result<RateLimitLayer, ratelimit::RateLimitError> {
        self.shared.route(limits)
    }

    /// Limits one exact path (e.g. `"5 per minute"` on `/login`), counted before the session
    /// and CSRF steps, so a request that a later step refuses (a CSRF failure, a validation
    /// error) still counts. This is the way to limit a login form. A path takes one limit
    /// string (a second call for the same path is
    /// [`DuplicatePath`](ratelimit::RateLimitError::DuplicatePath)); `0 per minute` closes
    /// the path (every request refused).
    ///
    /// ```
    /// let b = buttress::Buttress::from_settings(&Default::default())?
    ///     .limit_route("/login", "5 per minute")?;
    /// assert!(b.clone().limit_route("/login", "100 per day").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limit_route(
        mut self,
        path: &str,
        limits: &str,
    ) -> Result<Self, ratelimit::RateLimitError> {
        let layer = self.rate_limit(limits)?;
        self.route_limits = self.route_limits.limit(path, layer)?;
        Ok(self)
    }

    /// The environment the stack was built for.
    pub fn environment(&self) -> Environment {
        self.settings.environment
    }

    /// The keyring (primary + fallback keys) for layers that sign or encrypt.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The checklist findings found at start-up (in Production, none are errors).
    pub fn notices(&self) -> &[Finding] {
        &self.notices
    }

    /// Edits the header policy built from the settings (a CSP source for a CDN, another
    /// `Referrer-Policy`), keeping what the settings asked for.
    ///
    /// ```
    /// use buttress::headers::{Directive, Source};
    /// let b = buttress::Buttress::from_settings(&Default::default())?
    ///     .map_headers(|h| h.map_csp(|csp| csp.directive(Directive::ImgSrc, [Source::SelfOrigin, Source::host("img.example.org").unwrap()])));
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn map_headers(mut self, f: impl FnOnce(SecureHeadersLayer) -> SecureHeadersLayer) -> Self {
        self.headers = f(self.headers);
        self
    }

    /// Replaces the header policy with `headers`. Refused when the settings configure the
    /// policy (`BUTTRESS_CSP`, `BUTTRESS_CSP_REPORT_ONLY`, `BUTTRESS_CSP_REPORT_URI`, the HSTS
    /// settings): their choice would be lost without a word. Use [`Buttress::map_headers`].
    ///
    /// ```
    /// use buttress::{headers::SecureHeadersLayer, settings::Settings, Buttress};
    /// let mine = SecureHeadersLayer::new().csp_report_only(true);
    /// assert!(Buttress::from_settings(&Settings::default())?.with_headers(mine.clone()).is_ok());
    /// let settings = Settings::loader().env_vars([("BUTTRESS_HSTS_PRELOAD", "true")]).load()?;
    /// assert!(Buttress::from_settings(&settings)?.with_headers(mine).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_headers(mut self, headers: SecureHeadersLayer) -> Result<Self, StartupError> {
        if plan::headers_configured(&self.settings) {
            return Err(StartupError::HeadersReplaced);
        }
        self.headers = headers;
        Ok(self)
    }

    /// Counts with `telemetry` instead of what the settings say (a [`Telemetry`](telemetry::Telemetry)
    /// that counts is made when `BUTTRESS_METRICS_BIND` is set); serve its metrics yourself
    /// with [`Telemetry::render`](telemetry::Telemetry::render) on a private listener.
    ///
    /// ```
    /// use buttress::telemetry::Telemetry;
    /// let b = buttress::Buttress::from_settings(&Default::default())?
    ///     .with_telemetry(Telemetry::new());
    /// assert_eq!(b.telemetry().counts(), cfg!(feature = "metrics"));
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn with_telemetry(mut self, telemetry: telemetry::Telemetry) -> Self {
        self.telemetry = telemetry.client_network(self.settings.log_client_network);
        self
    }

    /// The telemetry the stack counts with: hand it to the metrics listener
    /// (`buttress::server::MetricsServer`, features `metrics` and `server`) and to a sign-in form
    /// ([`Telemetry::login_attempt`](telemetry::Telemetry::login_attempt)).
    ///
    /// ```
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// assert!(!b.telemetry().counts()); // BUTTRESS_METRICS_BIND is not set
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.telemetry
    }

    /// Keeps sessions in `store` (SQL, Redis, or your own) instead of what the settings say.
    pub fn with_session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.session_store = Some(store);
        self
    }

    /// Exempts one exact path from CSRF checks (a webhook that authenticates itself).
    pub fn csrf_exempt(mut self, path: impl Into<String>) -> Self {
        self.csrf = self.csrf.exempt(path);
        self
    }

    /// Connects to the rate limits' Redis (when `ratelimit_storage` is one) and loads the
    /// check script, waiting at most 2 s, so that the first requests after a start do not
    /// spend their check's budget (50 ms by default) connecting and meet the failure policy
    /// instead. A Redis that does not answer is logged as a warning, not an error: the
    /// checks retry by themselves. Call it once before serving (`buttress serve` does).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// b.warm_up().await; // memory storage: nothing to do
    /// # Ok::<(), buttress::StartupError>(()) }).unwrap();
    /// ```
    pub async fn warm_up(&self) {
        self.shared.warm_up().await;
    }

    /// The session store in use, if sessions are server-side.
    pub fn session_store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.session_store.as_ref()
    }

    /// The session layer the stack uses (cookie flags, timeouts and store from the settings),
    /// for an app that puts the layers together itself.
    ///
    /// ```
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// assert_eq!(b.session_layer().cookie_name(), "session"); // plain-HTTP loopback development
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn session_layer(&self) -> SessionLayer {
        plan::sessions(&self.settings, &self.keyring, self.session_store.clone())
    }

    /// Wraps the whole application in every protection, as one [`Stack`](stack::Stack) that
    /// takes no more routes: add every route (and route layer) to `router` first. Routing
    /// happens inside the stack, so a 404 or 405 gets the same headers and error page as
    /// anything else.
    ///
    /// Refuses to start when `BUTTRESS_SESSION_STORE` names a server-side store that was not
    /// given ([`Buttress::with_session_store`] for `sql`), instead of falling back to cookies.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// let app = buttress::Buttress::from_settings(&Default::default())?
    ///     .apply(Router::new().route("/", get(|| async { "hello" })))?;
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn apply(self, router: Router) -> Result<stack::Stack, StartupError> {
        if self.settings.session_store != SessionStoreKind::Cookie && self.session_store.is_none() {
            return Err(StartupError::session_store(
                format!("BUTTRESS_SESSION_STORE={} asks for a server-side store and none was given", self.settings.session_store.as_str()),
                "pass the application's store with Buttress::with_session_store (the SQL store comes from your database pool), or set BUTTRESS_SESSION_STORE=cookie, memory or redis",
            ));
        }
        let sessions = self.session_layer();
        let body_limit = self.settings.body_limit;
        // axum's extractors stop at 2 MiB of their own; a larger body limit is raised for them
        // (a smaller one cuts the body off before they get there).
        let router = if body_limit > AXUM_BODY_LIMIT {
            router.layer(DefaultBodyLimit::max(body_limit))
        } else {
            router
        };
        let pipeline = telemetry::Pipeline::new(&self.telemetry, self.route_limits.paths());
        // Every route and the fallback timed by their pattern, when counting.
        #[cfg(feature = "metrics")]
        let router = match pipeline.route_layer() {
            Some(layer) => router.layer(layer),
            None => router,
        };
        // Built once: a `Router` left as it is applies its layers to each route again on every
        // request.
        let router = router.with_state(());
        Ok(stack::Stack::new(
            router,
            stack::Plan {
                proxy: self.proxy,
                https: self.https.map(|h| h.config().clone()),
                global: self.global.map(|l| l.config().clone()),
                routes: self.route_limits,
                body_limit,
                timeout: self.settings.request_timeout,
                session: Some(sessions.config().clone()),
                csrf: self.csrf.config().clone(),
                headers: self.headers.config().clone(),
                debug: self.settings.debug && self.settings.environment == Environment::Development,
                telemetry: pipeline,
            },
        ))
    }
}

/// The store `BUTTRESS_SESSION_STORE` names, opened: memory, Redis (`REDIS_URL`); none for
/// cookies, and none yet for SQL (the application gives its pool's).
fn session_store(settings: &Settings) -> Result<Option<Arc<dyn SessionStore>>, StartupError> {
    Ok(match settings.session_store {
        SessionStoreKind::Memory => Some(Arc::new(MemoryStore::default())),
        #[cfg(feature = "redis")]
        SessionStoreKind::Redis => {
            let Some(url) = &settings.redis_url else {
                return Err(StartupError::session_store(
                    "the Redis session store needs a Redis server",
                    "set REDIS_URL=redis://host:6379",
                ));
            };
            let store = session::redis::RedisSessionStore::open(url.expose())
                .map_err(|e| StartupError::session_store(e.0, "check REDIS_URL"))?;
            Some(Arc::new(store))
        }
        #[cfg(not(feature = "redis"))]
        SessionStoreKind::Redis => {
            return Err(StartupError::session_store(
                "this build has no Redis support",
                "build with the cargo feature `redis`, or choose another BUTTRESS_SESSION_STORE",
            ))
        }
        SessionStoreKind::Cookie | SessionStoreKind::Sql => None,
    })
}

/// The body limit axum's extractors apply when none is set (`axum::extract::DefaultBodyLimit`).
const AXUM_BODY_LIMIT: usize = 2 * 1024 * 1024;
