//! What the [`Stack`](crate::stack::Stack) counts: a [`Refusal`] tag the refusing step leaves
//! behind, and the [`Pipeline`] handles it is counted and logged with on the way out.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode};

use super::event;
#[cfg(feature = "metrics")]
use super::metrics::PipelineMetrics;
use super::Telemetry;

/// The CSRF reasons, in the order of their counters.
const CSRF_REASONS: [&str; 6] = [
    "cross-site",
    "same-site",
    "origin-mismatch",
    "no-origin",
    "missing-token",
    "bad-token",
];

/// Why the pipeline refused a request: a small `Copy` tag, counted once on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No, a malformed or a disallowed host.
    ProxyHost,
    /// A trusted proxy's forwarding header that does not parse.
    ProxyHeader,
    /// No peer address (a setup mistake).
    ProxyPeer,
    /// Plain HTTP redirected.
    HttpsRedirect,
    /// The global limit (429, or 503 with its store down and failing closed).
    GlobalLimit,
    /// A body over the limit.
    BodyTooLarge,
    /// The request's deadline passed.
    Timeout,
    /// A CSRF reason, by its index in [`CSRF_REASONS`].
    Csrf(u8),
    /// The session store was unavailable.
    SessionStore,
    /// A request head over `max_header_bytes` (the server's 431).
    HeadersTooLarge,
    /// No complete request head within `header_read_timeout`.
    HeaderTimeout,
    /// The limit of the `n`th limited path.
    RouteLimit(u16),
}

impl Refusal {
    /// Every refusal but [`Refusal::RouteLimit`], in the order of their counters.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const FIXED: [Refusal; 16] = [
        Refusal::ProxyHost,
        Refusal::ProxyHeader,
        Refusal::ProxyPeer,
        Refusal::HttpsRedirect,
        Refusal::GlobalLimit,
        Refusal::BodyTooLarge,
        Refusal::Timeout,
        Refusal::Csrf(0),
        Refusal::Csrf(1),
        Refusal::Csrf(2),
        Refusal::Csrf(3),
        Refusal::Csrf(4),
        Refusal::Csrf(5),
        Refusal::SessionStore,
        Refusal::HeadersTooLarge,
        Refusal::HeaderTimeout,
    ];

    /// The refusal of CSRF reason `reason` (`CsrfRejection::reason`).
    pub(crate) fn csrf(reason: &str) -> Refusal {
        let i = CSRF_REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        Refusal::Csrf(i as u8)
    }

    /// The `layer` label.
    pub(crate) fn layer(self) -> &'static str {
        match self {
            Refusal::ProxyHost | Refusal::ProxyHeader | Refusal::ProxyPeer => "proxy",
            Refusal::HttpsRedirect => "https",
            Refusal::GlobalLimit | Refusal::RouteLimit(_) => "ratelimit",
            Refusal::BodyTooLarge => "body",
            Refusal::Timeout => "timeout",
            Refusal::Csrf(_) => "csrf",
            Refusal::SessionStore => "session",
            Refusal::HeadersTooLarge | Refusal::HeaderTimeout => "headers",
        }
    }

    /// The `reason` label of a fixed refusal (a route limit's is its path: see
    /// [`Pipeline::reason`]).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::ProxyHost => "host",
            Refusal::ProxyHeader => "header",
            Refusal::ProxyPeer => "no-peer",
            Refusal::HttpsRedirect => "redirect",
            Refusal::GlobalLimit => "global",
            Refusal::BodyTooLarge | Refusal::HeadersTooLarge => "too-large",
            Refusal::Timeout => "deadline",
            Refusal::Csrf(i) => CSRF_REASONS.get(usize::from(i)).copied().unwrap_or("other"),
            Refusal::SessionStore => "store-unavailable",
            Refusal::HeaderTimeout => "read-timeout",
            Refusal::RouteLimit(_) => "route",
        }
    }

    /// The status such a refusal usually answers with (events of the server's refusals).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn status(self) -> u16 {
        match self {
            Refusal::ProxyPeer => 500,
            Refusal::ProxyHost | Refusal::ProxyHeader => 400,
            Refusal::HttpsRedirect => 308,
            Refusal::GlobalLimit | Refusal::RouteLimit(_) => 429,
            Refusal::BodyTooLarge => 413,
            Refusal::Timeout | Refusal::HeaderTimeout => 408,
            Refusal::Csrf(_) => 403,
            Refusal::SessionStore => 503,
            Refusal::HeadersTooLarge => 431,
        }
    }

    /// The index of a fixed refusal's counter.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn fixed_index(self) -> Option<usize> {
        Some(match self {
            Refusal::ProxyHost => 0,
            Refusal::ProxyHeader => 1,
            Refusal::ProxyPeer => 2,
            Refusal::HttpsRedirect => 3,
            Refusal::GlobalLimit => 4,
            Refusal::BodyTooLarge => 5,
            Refusal::Timeout => 6,
            Refusal::Csrf(i) => 7 + usize::from(i).min(5),
            Refusal::SessionStore => 13,
            Refusal::HeadersTooLarge => 14,
            Refusal::HeaderTimeout => 15,
            Refusal::RouteLimit(_) => return None,
        })
    }
}

/// What the way out knows of a refused request, for its event.
pub(crate) struct Seen<'a> {
    pub(crate) status: StatusCode,
    pub(crate) request_id: Option<&'a HeaderValue>,
    pub(crate) client: Option<IpAddr>,
    pub(crate) method: &'a Method,
    /// The application was called (the router timed the request itself).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) routed: bool,
}

/// The stack's telemetry: the [`Telemetry`] it was built with and, with the `metrics` feature,
/// its counters resolved (one per limited path besides the fixed ones).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipeline {
    telemetry: Telemetry,
    /// The limited paths, in [`PathLimitsLayer`](crate::ratelimit::PathLimitsLayer)'s order.
    routes: Arc<[Box<str>]>,
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<PipelineMetrics>>,
}

impl Pipeline {
    /// The handles for a stack with `telemetry` and these limited paths.
    pub(crate) fn new<'a>(telemetry: &Telemetry, paths: impl Iterator<Item = &'a str>) -> Self {
        let routes: Arc<[Box<str>]> = paths.map(Box::from).collect();
        #[cfg(feature = "metrics")]
        let metrics = telemetry.metrics().map(|m| {
            Arc::new(PipelineMetrics {
                metrics: m.clone(),
                routes: routes.iter().map(|p| m.route_limit(p)).collect(),
            })
        });
        Pipeline {
            telemetry: telemetry.clone(),
            routes,
            #[cfg(feature = "metrics")]
            metrics,
        }
    }

    /// The layer that times each routed request by its matched pattern (none when not
    /// counting).
    #[cfg(feature = "metrics")]
    pub(crate) fn route_layer(&self) -> Option<super::route::DurationLayer> {
        self.metrics
            .as_ref()
            .map(|m| super::route::DurationLayer::new(m.metrics.clone()))
    }

    /// The `reason` label of `refusal`: a route limit's path, else its fixed reason.
    pub(crate) fn reason(&self, refusal: Refusal) -> &str {
        match refusal {
            Refusal::RouteLimit(i) => self.routes.get(usize::from(i)).map_or("route", |p| &**p),
            other => other.reason(),
        }
    }

    /// Counts a response of `status` (every response, refused or not).
    #[inline]
    pub(crate) fn answered(&self, status: StatusCode) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
            m.metrics.status[class].inc();
        }
        #[cfg(not(feature = "metrics"))]
        let _ = status;
    }

    /// Counts and logs a refusal that took `elapsed` from the request's arrival.
    pub(crate) fn refused(&self, refusal: Refusal, seen: &Seen<'_>, elapsed: std::time::Duration) {
        let route = match refusal {
            Refusal::RouteLimit(_) => self.reason(refusal),
            _ => "unmatched",
        };
        event::refusal(&event::Refused {
            layer: refusal.layer(),
            reason: self.reason(refusal),
            status: seen.status.as_u16(),
            request_id: seen.request_id,
            client: seen
                .client
                .map(|c| event::client_field(c, self.telemetry.network_only())),
            method: Some(seen.method),
            route,
        });
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            let counter = match (refusal, refusal.fixed_index()) {
                (_, Some(i)) => m.metrics.fixed.get(i),
                (Refusal::RouteLimit(i), None) => m.routes.get(usize::from(i)),
                _ => None,
            };
            if let Some(c) = counter {
                c.inc();
            }
            // Refused before routing: the router never timed it.
            if !seen.routed {
                m.metrics.unmatched.observe(elapsed.as_secs_f64());
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = elapsed;
    }

    /// The telemetry this stack counts with.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }
}
