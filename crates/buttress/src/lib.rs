//! Buttress: the layered defence of a hardened web application, for axum and tower.
//!
//! Each concern is one module with a `Layer` whose defaults are the secure ones; [`Buttress`]
//! stacks them all in the right order from [`Settings`], refusing an unsafe Production start.
//!
//! The request's way through, outermost first:
//!
//! 1. request id (fresh per request; clients cannot choose it) and tracing span
//! 2. [`errors::ErrorPagesLayer`]: every 4xx/5xx rendered safely as HTML or problem+json
//! 3. [`headers::SecureHeadersLayer`]: CSP with a per-request nonce, HSTS on HTTPS, …
//! 4. [`proxy::ProxyLayer`]: [`proxy::ClientIp`] and scheme, trusting only listed proxies
//! 5. panic catcher ([`errors::catch_panic_layer`]): a panic becomes a generic 500
//! 6. [`https::HttpsRedirectLayer`]: plain HTTP redirected to HTTPS
//! 7. [`ratelimit::RateLimitLayer`]: the global limit per client (`200 per day; 50 per hour`)
//! 8. request limits: whole-request timeout (408) and body size (413)
//! 9. [`session::SessionLayer`]: encrypted cookie or server-side store, loaded lazily
//! 10. [`csrf::CsrfLayer`]: Fetch-Metadata/Origin verdict and session-bound token
//! 11. your router, with per-route limits from [`Buttress::rate_limit`]
//!
//! The error pages sit outside the headers so that even a panic's 500 and a proxy layer's 400
//! carry every security header; the proxy sits outside the panic catcher so the error page
//! knows whether the client is on loopback before it shows any debug detail.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::{settings::Settings, Buttress};
//!
//! let settings = Settings::default(); // Development on 127.0.0.1:8000
//! let buttress = Buttress::from_settings(&settings)?;
//! let app: Router = buttress.apply(Router::new().route("/", get(|| async { "hello" })));
//! # Ok::<(), buttress::StartupError>(())
//! ```

#![deny(unreachable_pub, unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod csrf;
pub mod errors;
pub mod headers;
pub mod https;
pub mod proxy;
pub mod ratelimit;
pub mod request_id;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub mod session;
pub mod settings;
pub mod timeout;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use std::sync::Arc;

use check::{Finding, Severity};
use csrf::CsrfLayer;
use headers::{Csp, Hsts, SecureHeadersLayer};
use https::HttpsRedirectLayer;
use proxy::{ProxyConfig, ProxyLayer};
use ratelimit::{RateLimitLayer, RateLimiter, Scope};
use secret::{KeyError, Keyring};
use session::{MemoryStore, SessionLayer, SessionStore};
use settings::{Environment, SessionStoreKind, Settings};

/// Why Buttress refused to start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// Development listens on loopback only.
    #[error("Development refuses to listen on {addr}, which is not a loopback address. Fix: bind to 127.0.0.1 for local work, or set BUTTRESS_ENV=production (or pass --production) to serve others")]
    NotLoopback {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// Production without a usable key.
    #[error("Production needs a strong secret key: {error}. Fix: {}", error.fix())]
    Key {
        /// What is wrong with the key.
        error: KeyError,
    },
    /// Production with error-level checklist findings.
    #[error("Production refuses to start with {} unsafe setting(s):\n{}\nRun `buttress check` for the whole checklist.", findings.len(), findings.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Unsafe {
        /// The error-level findings.
        findings: Vec<Finding>,
    },
    /// A rate-limit setting that cannot be used (settings loading normally catches this first).
    #[error("rate limiting cannot start: {0}. Fix: correct BUTTRESS_RATELIMIT_DEFAULT or BUTTRESS_RATELIMIT_STORAGE")]
    RateLimit(#[from] ratelimit::RateLimitError),
    /// The configured session store cannot be used.
    #[error(
        "the session store cannot be used: {0}. Fix: check BUTTRESS_SESSION_STORE and REDIS_URL"
    )]
    SessionStore(String),
    /// A CSP setting that does not parse (settings loading normally catches this first).
    #[error("BUTTRESS_CSP does not parse: {0}. Fix: correct the policy or unset it")]
    Csp(#[from] headers::csp::CspError),
}

impl StartupError {
    /// The process exit code for this refusal: always 3 ("configuration refused").
    pub fn exit_code(&self) -> u8 {
        3
    }
}

/// All the layers, configured from [`Settings`], in the order described in the
/// [crate docs](crate).
#[derive(Debug, Clone)]
#[must_use]
pub struct Buttress {
    environment: Environment,
    keyring: Keyring,
    notices: Vec<Finding>,
    proxy: ProxyConfig,
    headers: SecureHeadersLayer,
    https: Option<HttpsRedirectLayer>,
    debug: bool,
    body_limit: usize,
    request_timeout: Duration,
    settings: Arc<Settings>,
    session_store: Option<Arc<dyn SessionStore>>,
    csrf: CsrfLayer,
    ratelimit: Option<RateLimitLayer>,
    ratelimit_base: RouteLimits,
    route_limits: ratelimit::PathLimitsLayer,
}

/// What per-route limits share with the global one: storage, headers, grouping, cap.
#[derive(Debug, Clone)]
struct RouteLimits {
    #[cfg(feature = "redis")]
    redis: Option<ratelimit::RedisStore>,
    /// `BUTTRESS_INSTANCES`: the memory fallback's share ([`RateLimiter::with_instances`]).
    instances: u32,
    headers: ratelimit::HeaderStyle,
    grouping: ratelimit::IpGrouping,
    max_keys: usize,
}

impl RouteLimits {
    fn from_settings(settings: &Settings) -> Result<RouteLimits, ratelimit::RateLimitError> {
        let storage = settings.ratelimit_storage.trim();
        let is_redis = storage.starts_with("redis://") || storage.starts_with("rediss://");
        #[cfg(not(feature = "redis"))]
        if is_redis {
            return Err(ratelimit::RateLimitError::RedisDisabled);
        }
        Ok(RouteLimits {
            #[cfg(feature = "redis")]
            redis: is_redis
                .then(|| ratelimit::RedisStore::open(storage))
                .transpose()?
                .map(|store| store.with_budget(settings.ratelimit_redis_budget)),
            instances: settings.instances,
            headers: settings.ratelimit_headers,
            grouping: ratelimit::IpGrouping::new(32, settings.ratelimit_ipv6_prefix),
            max_keys: settings.ratelimit_max_keys,
        })
    }

    fn limiter(&self, limits: ratelimit::Limits) -> RateLimiter {
        let limiter = RateLimiter::new(limits)
            .with_memory(ratelimit::MemoryStore::new(self.max_keys))
            .with_instances(self.instances);
        #[cfg(feature = "redis")]
        let limiter = match &self.redis {
            Some(store) => limiter.with_redis(store.clone()),
            None => limiter,
        };
        limiter
    }

    fn layer(&self, limiter: RateLimiter) -> RateLimitLayer {
        RateLimitLayer::new(limiter)
            .headers(self.headers)
            .ip_grouping(self.grouping)
    }
}

impl Buttress {
    /// Validates `settings` and configures every layer.
    ///
    /// Refuses to start in Development on a non-loopback address, and in Production with a
    /// missing or weak key or any error-level [checklist](check) finding. In Development
    /// without a key an ephemeral one is made (and a warning logged).
    pub fn from_settings(settings: &Settings) -> Result<Buttress, StartupError> {
        let findings = check::run(settings);
        let prod = settings.environment == Environment::Production;
        if !prod && !settings.bind.ip().is_loopback() {
            return Err(StartupError::NotLoopback {
                addr: settings.bind,
            });
        }
        if !prod {
            if let Some(addr) = settings.http_bind.filter(|a| !a.ip().is_loopback()) {
                return Err(StartupError::NotLoopback { addr });
            }
        }
        let keyring = match (&settings.secret_key, prod) {
            (Some(key), true) => {
                key.check_strength()
                    .map_err(|error| StartupError::Key { error })?;
                Keyring::new(key.clone(), settings.secret_key_fallbacks.clone())
            }
            (None, true) => {
                return Err(StartupError::Key {
                    error: KeyError::Missing,
                })
            }
            (Some(key), false) => {
                if let Err(e) = key.check_strength() {
                    tracing::warn!("the secret key is weak ({e}); Production would refuse it");
                }
                Keyring::new(key.clone(), settings.secret_key_fallbacks.clone())
            }
            (None, false) => {
                tracing::warn!("no SECRET_KEY set: using an ephemeral key for this run only; sessions and signed values will not survive a restart (run `buttress keygen`)");
                Keyring::ephemeral()
            }
        };
        if prod {
            let errors: Vec<Finding> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .cloned()
                .collect();
            if !errors.is_empty() {
                return Err(StartupError::Unsafe { findings: errors });
            }
        }

        let csp = match &settings.csp {
            Some(text) => Csp::parse(text)?.upgrade_insecure_requests_on_https(true),
            None => Csp::strict(),
        };
        let csp = match &settings.csp_report_uri {
            Some(uri) => csp.report_uri(uri),
            None => csp,
        };
        let hsts = (!settings.hsts_max_age.is_zero()).then_some(Hsts {
            max_age: settings.hsts_max_age.as_secs(),
            include_subdomains: settings.hsts_include_subdomains,
            preload: settings.hsts_preload,
        });
        let headers = SecureHeadersLayer::new()
            .csp(csp)
            .csp_report_only(settings.csp_report_only)
            .hsts(hsts);
        let https = settings.https_redirect.then(|| {
            let mut layer =
                HttpsRedirectLayer::new().exempt_paths(settings.https_exempt_paths.iter().cloned());
            if let Some(host) = &settings.canonical_host {
                layer = layer.canonical_host(host.clone());
            }
            if let Some(p) = settings.https_port {
                layer = layer.port(p);
            }
            layer
        });
        let proxy = ProxyConfig::default()
            .trust_all(settings.trusted_proxies.iter().copied())
            .header(settings.proxy_header)
            .allowed_hosts(settings.allowed_hosts.iter().cloned());

        let mut csrf = CsrfLayer::new().allow_same_site(settings.csrf_allow_same_site);
        for origin in &settings.csrf_trusted_origins {
            csrf = csrf.trust_origin(origin.clone());
        }
        if let Some(uri) = settings.csrf_report_path() {
            csrf = csrf.exempt(uri);
        }
        let session_store: Option<Arc<dyn SessionStore>> = match settings.session_store {
            SessionStoreKind::Memory => Some(Arc::new(MemoryStore::default())),
            #[cfg(feature = "redis")]
            SessionStoreKind::Redis => match settings.redis_url.as_deref() {
                Some(url) => Some(Arc::new(
                    session::redis::RedisSessionStore::open(url)
                        .map_err(|e| StartupError::SessionStore(e.0))?,
                )),
                None => {
                    return Err(StartupError::SessionStore(
                        "the Redis session store needs REDIS_URL".into(),
                    ))
                }
            },
            #[cfg(not(feature = "redis"))]
            SessionStoreKind::Redis => {
                return Err(StartupError::SessionStore(
                    "this build has no Redis support (cargo feature `redis`)".into(),
                ))
            }
            // Cookie sessions need no store; SQL sessions come from the application's pool
            // (`with_session_store`), as the portal does.
            SessionStoreKind::Cookie | SessionStoreKind::Sql => None,
        };
        let ratelimit_base = RouteLimits::from_settings(settings)?;
        let ratelimit = settings.ratelimit_default.clone().map(|limits| {
            let limiter = ratelimit_base
                .limiter(limits)
                .with_name("global")
                .with_on_store_error(settings.ratelimit_on_store_error);
            // Health checks come from the load balancer's address, often: never count them.
            ratelimit_base
                .layer(limiter)
                .scope(Scope::App)
                .exempt_paths(settings.https_exempt_paths.iter().cloned())
        });

        Ok(Buttress {
            settings: Arc::new(settings.clone()),
            session_store,
            csrf,
            environment: settings.environment,
            keyring,
            notices: findings,
            proxy,
            headers,
            https,
            debug: settings.debug && !prod,
            body_limit: settings.body_limit,
            request_timeout: settings.request_timeout,
            ratelimit,
            ratelimit_base,
            route_limits: ratelimit::PathLimitsLayer::new(),
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
        self.ratelimit.as_ref()
    }

    /// Failure counters for a login form ([`ratelimit::LoginThrottle`]) in the same storage as
    /// the limits (Redis when configured), failing closed.
    ///
    /// ```
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// let throttle = b.login_throttle();
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn login_throttle(&self) -> ratelimit::LoginThrottle {
        let throttle =
            ratelimit::LoginThrottle::new().with_ip_grouping(self.ratelimit_base.grouping);
        #[cfg(feature = "redis")]
        let throttle = match &self.ratelimit_base.redis {
            Some(store) => throttle.with_redis(store.clone()),
            None => throttle,
        };
        throttle
    }

    /// A per-route limit (e.g. `"5 per minute"` on login) with the same storage, headers and
    /// address grouping as the global one; it fails closed when a shared store is down. Add it
    /// with `.route_layer(..)` on the route.
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// let b = buttress::Buttress::from_settings(&Default::default())?;
    /// let app: Router = b.clone().apply(Router::new().route(
    ///     "/login",
    ///     post(|| async { "hi" }).route_layer(b.rate_limit("5 per minute")?),
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rate_limit(&self, limits: &str) -> Result<RateLimitLayer, ratelimit::RateLimitError> {
        let limiter = self
            .ratelimit_base
            .limiter(limits.parse()?)
            .with_name("route")
            .with_on_store_error(ratelimit::OnStoreError::FailClosed);
        Ok(self.ratelimit_base.layer(limiter))
    }

    /// Limits one exact path (e.g. `"5 per minute"` on `/login`), counted **outside** the
    /// session and CSRF layers, so a request that a later layer refuses (a CSRF failure, a
    /// validation error) still counts. This is the way to limit a login form; a
    /// [`Buttress::rate_limit`] route layer sits inside the CSRF check and does not see the
    /// requests it refuses (the global limit still does). All route limits share one
    /// [`PathLimitsLayer`](ratelimit::PathLimitsLayer); a path takes one limit string (a
    /// second call for the same path is [`DuplicatePath`](ratelimit::RateLimitError::DuplicatePath)).
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
        self.environment
    }

    /// The keyring (primary + fallback keys) for layers that sign or encrypt.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The checklist findings found at start-up (in Production, none are errors).
    pub fn notices(&self) -> &[Finding] {
        &self.notices
    }

    /// Replaces the secure headers layer (e.g. to add a CSP source for a CDN).
    pub fn with_headers(mut self, headers: SecureHeadersLayer) -> Self {
        self.headers = headers;
        self
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
        #[cfg(feature = "redis")]
        if let Some(store) = &self.ratelimit_base.redis {
            match store.warm_up(Duration::from_secs(2)).await {
                Ok(()) => tracing::debug!("rate limits: connected to Redis"),
                // Not a passing outage: every check will fail until Redis is upgraded.
                Err(e @ ratelimit::RateLimitError::RedisTooOld { .. }) => tracing::error!("{e}"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    /// The session store in use, if sessions are server-side.
    pub fn session_store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.session_store.as_ref()
    }

    /// Wraps `router` in every layer. Add your routes (and route layers) first.
    pub fn apply(self, router: Router) -> Router {
        if self.settings.session_store != SessionStoreKind::Cookie && self.session_store.is_none() {
            tracing::error!("BUTTRESS_SESSION_STORE asks for a server-side store that was not provided (Buttress::with_session_store); falling back to encrypted cookies");
        }
        let sessions =
            SessionLayer::from_settings(&self.settings, &self.keyring, self.session_store.clone());
        // Each `Router::layer` call boxes the routes again, and axum clones every box level on
        // every request; two `ServiceBuilder` stacks keep that to two levels (plus one for
        // all route limits) instead of fifteen.
        let inner = tower::ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(self.body_limit))
            .layer(tower_http::map_request_body::MapRequestBodyLayer::new(
                axum::body::Body::new,
            ))
            .layer(timeout::RequestTimeoutLayer::new(self.request_timeout))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(sessions)
            .layer(self.csrf);
        let mut router = router.layer(inner);
        if !self.route_limits.is_empty() {
            router = router.layer(self.route_limits);
        }
        let outer = tower::ServiceBuilder::new()
            // A fresh id per request (a client's own is dropped), on the response too.
            .layer(request_id::RequestIdLayer)
            .layer(TraceLayer::new_for_http())
            .layer(errors::ErrorPagesLayer::new(self.debug))
            .layer(self.headers)
            .layer(ProxyLayer::new(self.proxy))
            .layer(errors::catch_panic_layer())
            .layer(tower::util::option_layer(self.https))
            .layer(tower::util::option_layer(self.ratelimit));
        router.layer(outer)
    }
}
