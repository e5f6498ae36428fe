//! Settings -> plan: each concern configured from [`Settings`], in one place. The concerns
//! know nothing of the settings (which name their types), so no import goes both ways.

use std::sync::Arc;

use crate::csrf::CsrfLayer;
use crate::headers::{Csp, Hsts, SecureHeadersLayer};
use crate::https::HttpsRedirectLayer;
use crate::proxy::ProxyConfig;
#[cfg(feature = "redis")]
use crate::ratelimit::RateLimitStorage;
use crate::ratelimit::{
    IpGrouping, LoginThrottle, MemoryStore, OnStoreError, RateLimitError, RateLimitLayer,
    RateLimiter, Scope,
};
use crate::secret::Keyring;
use crate::session::{SessionLayer, SessionStore};
use crate::settings::Settings;

/// The secure headers the settings ask for: the CSP (`BUTTRESS_CSP` or the strict default,
/// with its report URI), report-only, HSTS.
pub(crate) fn headers(settings: &Settings) -> SecureHeadersLayer {
    let csp = match &settings.csp {
        Some(csp) => csp.clone().upgrade_insecure_requests_on_https(true),
        None => Csp::strict(),
    };
    // Both ways of reporting: `report-uri` (every browser) and the Reporting API's
    // `report-to` group, which `Reporting-Endpoints` points at the same path.
    let (csp, endpoints) = match &settings.csp_report_uri {
        Some(uri) => (
            csp.report_uri(uri).directive(
                crate::headers::Directive::ReportTo,
                [crate::headers::Source::Token(REPORT_GROUP.to_owned())],
            ),
            http::HeaderValue::from_str(&format!("{REPORT_GROUP}=\"{uri}\"")).ok(),
        ),
        None => (csp, None),
    };
    let hsts = (!settings.hsts_max_age.is_zero()).then_some(Hsts {
        max_age: settings.hsts_max_age.as_secs(),
        include_subdomains: settings.hsts_include_subdomains,
        preload: settings.hsts_preload,
    });
    let layer = SecureHeadersLayer::new()
        .csp(csp)
        .csp_report_only(settings.csp_report_only)
        .hsts(hsts);
    match endpoints {
        Some(v) => layer.header(http::HeaderName::from_static("reporting-endpoints"), v),
        None => layer,
    }
}

/// The Reporting API group CSP reports go to (`report-to csp-endpoint`).
const REPORT_GROUP: &str = "csp-endpoint";

/// Whether the settings change the header policy from its default (so that replacing it
/// would throw their choice away).
pub(crate) fn headers_configured(settings: &Settings) -> bool {
    let d = Settings::default();
    settings.csp.is_some()
        || settings.csp_report_only
        || settings.csp_report_uri.is_some()
        || settings.hsts_max_age != d.hsts_max_age
        || settings.hsts_include_subdomains != d.hsts_include_subdomains
        || settings.hsts_preload != d.hsts_preload
}

/// The telemetry: counting when the metrics listener is asked for (`metrics_bind`), events
/// naming the client's network with `log_client_network`.
pub(crate) fn telemetry(settings: &Settings) -> crate::telemetry::Telemetry {
    let telemetry = match settings.metrics_bind {
        Some(_) => crate::telemetry::Telemetry::new(),
        None => crate::telemetry::Telemetry::off(),
    };
    telemetry.client_network(settings.log_client_network)
}

/// The HTTPS redirect, when the settings turn it on.
pub(crate) fn https(settings: &Settings) -> Option<HttpsRedirectLayer> {
    settings.https_redirect.then(|| {
        let mut layer =
            HttpsRedirectLayer::new().exempt_paths(settings.https_exempt_paths.iter().cloned());
        if let Some(host) = &settings.canonical_host {
            layer = layer.canonical_host(host.clone());
        }
        if let Some(p) = settings.https_port {
            layer = layer.port(p);
        }
        layer
    })
}

/// The trusted proxies, their header family and the allowed hosts.
pub(crate) fn proxy(settings: &Settings) -> ProxyConfig {
    ProxyConfig::default()
        .trust_all(settings.trusted_proxies.iter().copied())
        .header(settings.proxy_header)
        .allowed_hosts(settings.allowed_hosts.iter().cloned())
}

/// The CSRF check: trusted origins, same-site, the CSP report path exempt (browsers send
/// reports without tokens).
pub(crate) fn csrf(settings: &Settings) -> CsrfLayer {
    let mut csrf = CsrfLayer::new().allow_same_site(settings.csrf_allow_same_site);
    for origin in &settings.csrf_trusted_origins {
        csrf = csrf.trust_origin(origin.clone());
    }
    match settings.csrf_report_path() {
        Some(path) => csrf.exempt(path),
        None => csrf,
    }
}

/// Sessions as the settings say: cookie flags, timeouts, the `__Host-` prefix (dropped only in
/// Development over plain HTTP on loopback), `BUTTRESS_APP_ID` and
/// `BUTTRESS_SESSION_MAX_PER_USER`; `store` chooses store mode. In cookie mode with `REDIS_URL`
/// set (and the `redis` feature), sign-outs are kept in Redis so that every instance sees them.
pub(crate) fn sessions(
    settings: &Settings,
    keyring: &Keyring,
    store: Option<Arc<dyn SessionStore>>,
) -> SessionLayer {
    let cookie_mode = store.is_none();
    let layer = match store {
        Some(s) => SessionLayer::store(keyring, s),
        None => SessionLayer::cookie(keyring),
    };
    let plain_dev = settings.plain_http_loopback_dev();
    let mut layer = layer
        .secure(!plain_dev && settings.cookie_secure)
        .http_only(settings.cookie_http_only)
        .same_site(settings.cookie_same_site)
        .idle_timeout(settings.session_idle_timeout)
        .absolute_timeout(settings.session_absolute_timeout)
        .max_sessions_per_user(settings.session_max_per_user)
        .keyed(keyring);
    if let Some(app) = &settings.app_id {
        layer = layer.app_id(app.clone());
    }
    #[cfg(feature = "redis")]
    if let (true, Some(url)) = (cookie_mode, &settings.redis_url) {
        match crate::session::redis::RedisSignOuts::open(url.expose()) {
            Ok(outs) => layer = layer.sign_outs(Arc::new(outs)),
            Err(e) => tracing::error!(error = %e, "sign-outs stay in memory"),
        }
    }
    #[cfg(not(feature = "redis"))]
    let _ = cookie_mode;
    layer
}

/// What the global limit, the route limits and the login throttle of one application share.
#[derive(Debug, Clone)]
pub(crate) struct SharedLimits {
    #[cfg(feature = "redis")]
    redis: Option<crate::ratelimit::RedisStore>,
    /// `BUTTRESS_INSTANCES`: the memory fallback's share ([`RateLimiter::with_instances`]).
    instances: u32,
    headers: crate::ratelimit::HeaderStyle,
    grouping: IpGrouping,
    max_keys: usize,
}

impl SharedLimits {
    /// Every Redis key is bound to `app`: deployments sharing a Redis count apart.
    pub(crate) fn from_settings(
        settings: &Settings,
        app: &crate::secret::AppId,
    ) -> Result<SharedLimits, RateLimitError> {
        #[cfg(not(feature = "redis"))]
        if settings.ratelimit_storage.is_shared() {
            return Err(RateLimitError::RedisDisabled);
        }
        #[cfg(not(feature = "redis"))]
        let _ = app;
        Ok(SharedLimits {
            #[cfg(feature = "redis")]
            redis: match &settings.ratelimit_storage {
                RateLimitStorage::Redis(url) => Some(
                    crate::ratelimit::RedisStore::open(url.expose())?
                        .with_budget(settings.ratelimit_redis_budget)
                        .for_app(app),
                ),
                RateLimitStorage::Memory => None,
            },
            instances: settings.instances,
            headers: settings.ratelimit_headers,
            grouping: IpGrouping::new(32, settings.ratelimit_ipv6_prefix),
            max_keys: settings.ratelimit_max_keys,
        })
    }

    /// The global limit: every route together, per client, with the settings' failure policy;
    /// health checks and static assets not counted.
    pub(crate) fn global(&self, settings: &Settings) -> Option<RateLimitLayer> {
        let limits = settings.ratelimit_default.clone()?;
        let limiter = self
            .limiter(limits)
            .with_name("global")
            .with_on_store_error(settings.ratelimit_on_store_error);
        // Health checks come from the load balancer's address, often: never count them.
        let layer = self
            .layer(limiter)
            .scope(Scope::App)
            .exempt_paths(settings.https_exempt_paths.iter().cloned());
        Some(match &settings.ratelimit_static_prefix {
            Some(prefix) => layer.exempt_prefix(prefix.clone()),
            None => layer,
        })
    }

    /// A limit of one route, failing closed when a shared store is down.
    pub(crate) fn route(&self, limits: &str) -> Result<RateLimitLayer, RateLimitError> {
        let limiter = self
            .limiter(limits.parse()?)
            .with_name("route")
            .with_on_store_error(OnStoreError::FailClosed);
        Ok(self.layer(limiter))
    }

    /// Failure counters for a login form in the same storage (bound to the application, as
    /// every limit is).
    pub(crate) fn login_throttle(&self) -> LoginThrottle {
        let throttle = LoginThrottle::new()
            .with_ip_grouping(self.grouping)
            .with_max_keys(self.max_keys);
        #[cfg(feature = "redis")]
        let throttle = match &self.redis {
            Some(store) => throttle.with_redis(store.clone()),
            None => throttle,
        };
        throttle
    }

    /// Connects to Redis ahead of the first request (see [`Buttress::warm_up`](crate::Buttress::warm_up)).
    pub(crate) async fn warm_up(&self) {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.redis {
            match store.warm_up(std::time::Duration::from_secs(2)).await {
                Ok(()) => tracing::debug!("rate limits: connected to Redis"),
                // Not a passing outage: every check will fail until Redis is upgraded.
                Err(e @ RateLimitError::RedisTooOld { .. }) => tracing::error!("{e}"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    fn limiter(&self, limits: crate::ratelimit::Limits) -> RateLimiter {
        let limiter = RateLimiter::new(limits)
            .with_memory(MemoryStore::new(self.max_keys))
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
