//! The Prometheus registry (feature `metrics`): every family registered once, every label set
//! the pipeline can use resolved to its counter at start-up, so that counting a request is an
//! atomic add on a counter already in hand (no formatting, no map lookup).
//!
//! Built on `prometheus-client`: an explicit registry per [`Telemetry`](super::Telemetry)
//! (no global recorder a library would share with its application), atomic counters, and
//! the text exposition format.

use std::borrow::Cow;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{LoginOutcome, Refusal, StoreKind, CSP_DIRECTIVES};

pub(super) type Label = (&'static str, Cow<'static, str>);
type One = [Label; 1];
type Two = [Label; 2];
type Buckets = fn() -> Histogram;

/// The duration buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

fn one(key: &'static str, value: impl Into<Cow<'static, str>>) -> One {
    [(key, value.into())]
}

/// The registry and the handles the pipeline counts with.
pub(crate) struct Metrics {
    registry: Registry,
    refusals: Family<Two, Counter>,
    durations: Family<One, Histogram, Buckets>,
    /// `1xx` to `5xx`, by the status's first digit less one.
    pub(super) status: [Counter; 5],
    /// [`Refusal::FIXED`], in its order.
    pub(super) fixed: Box<[Counter]>,
    pub(super) unmatched: Histogram,
    pub(super) logins: [Counter; 3],
    /// [`CSP_DIRECTIVES`], then `other`.
    pub(super) csp: Box<[Counter]>,
    pub(super) store_errors: [Counter; 2],
    pub(super) degraded: [Gauge; 2],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(super) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<One, Counter>::default();
        registry.register(
            "buttress_requests",
            "Requests answered, by status class",
            requests.clone(),
        );
        let durations = Family::<One, Histogram, Buckets>::new_with_constructor(histogram);
        registry.register(
            "buttress_request_duration_seconds",
            "Time to answer a request, by matched route pattern (unmatched: refused before routing, or no route)",
            durations.clone(),
        );
        let refusals = Family::<Two, Counter>::default();
        registry.register(
            "buttress_refusals",
            "Requests refused by a protection, by layer and reason",
            refusals.clone(),
        );
        let logins = Family::<One, Counter>::default();
        registry.register(
            "buttress_login_attempts",
            "Sign-in attempts, by outcome",
            logins.clone(),
        );
        let csp = Family::<One, Counter>::default();
        registry.register(
            "buttress_csp_reports",
            "CSP violation reports received, by violated directive",
            csp.clone(),
        );
        let store_errors = Family::<One, Counter>::default();
        registry.register(
            "buttress_store_errors",
            "Failures of a shared store (Redis, SQL), by store",
            store_errors.clone(),
        );
        let degraded = Family::<One, Gauge>::default();
        registry.register(
            "buttress_store_degraded",
            "1 while a store's failure policy is in force (its last operation failed)",
            degraded.clone(),
        );
        let get = |f: &Family<One, Counter>, k: &'static str, v: &'static str| {
            f.get_or_create(&one(k, v)).clone()
        };
        let status = ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|c| get(&requests, "status_class", c));
        let fixed = Refusal::FIXED
            .iter()
            .map(|r| {
                refusals
                    .get_or_create(&[("layer", r.layer().into()), ("reason", r.reason().into())])
                    .clone()
            })
            .collect();
        let logins = LoginOutcome::ALL.map(|o| get(&logins, "outcome", o.as_str()));
        let csp = CSP_DIRECTIVES
            .iter()
            .chain(&["other"])
            .map(|d| get(&csp, "directive", d))
            .collect();
        let store_errors = StoreKind::ALL.map(|s| get(&store_errors, "store", s.as_str()));
        let degraded =
            StoreKind::ALL.map(|s| degraded.get_or_create(&one("store", s.as_str())).clone());
        let unmatched = durations.get_or_create(&one("route", "unmatched")).clone();
        Metrics {
            registry,
            refusals,
            durations,
            status,
            fixed,
            unmatched,
            logins,
            csp,
            store_errors,
            degraded,
        }
    }

    /// The counter of refusals by the limit of `path`.
    pub(super) fn route_limit(&self, path: &str) -> Counter {
        self.refusals
            .get_or_create(&[
                ("layer", "ratelimit".into()),
                ("reason", path.to_owned().into()),
            ])
            .clone()
    }

    /// The duration histogram of route pattern `route`.
    pub(super) fn duration(&self, route: &str) -> Histogram {
        self.durations
            .get_or_create(&one("route", route.to_owned()))
            .clone()
    }

    /// Everything, in the text exposition format (version 0.0.4, as Prometheus scrapes it).
    pub(super) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The pipeline's handles: the registry's, and one refusal counter per limited path.
#[derive(Debug)]
pub(crate) struct PipelineMetrics {
    pub(super) metrics: Arc<Metrics>,
    pub(super) routes: Box<[Counter]>,
}
