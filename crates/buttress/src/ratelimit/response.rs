//! What a limited response says: [`HeaderStyle`] (its docs show the headers).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{Decision, Limits};
use crate::errors::Problem;

// The header names, parsed once: `HeaderName::from_static` at run time and lookups by `&str`
// parse (and hash) the name on every response.
pub(crate) static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Which rate-limit headers responses carry. `Retry-After` is always sent on a 429.
///
/// A limited response says: `Retry-After`, the IETF `RateLimit` / `RateLimit-Policy`
/// fields ([draft-ietf-httpapi-ratelimit-headers-10], structured-field lists), optionally the
/// older `X-RateLimit-*` trio, and a [`Problem`] for the error pages to render.
///
/// ```text
/// RateLimit-Policy: "1";q=200;w=86400, "2";q=50;w=3600
/// RateLimit: "2";r=0;t=1800
/// Retry-After: 72
/// ```
///
/// `RateLimit` reports the limit that decided (the refusing one, else the one with the least
/// left), named by its position in `RateLimit-Policy`.
///
/// [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
///
/// ```
/// use buttress::ratelimit::HeaderStyle;
/// assert_eq!("both".parse::<HeaderStyle>(), Ok(HeaderStyle::Both));
/// assert_eq!(HeaderStyle::default(), HeaderStyle::Ietf);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderStyle {
    /// `RateLimit` and `RateLimit-Policy` (the default).
    #[default]
    Ietf,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds, as
    /// Flask-Limiter sends).
    Legacy,
    /// Both sets.
    Both,
    /// Neither (only `Retry-After` on a 429).
    None,
}

impl HeaderStyle {
    /// `ietf`, `legacy`, `both` or `none`.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::HeaderStyle::Legacy.as_str(), "legacy");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderStyle::Ietf => "ietf",
            HeaderStyle::Legacy => "legacy",
            HeaderStyle::Both => "both",
            HeaderStyle::None => "none",
        }
    }
}

impl std::str::FromStr for HeaderStyle {
    type Err = super::RateLimitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ietf" | "draft" | "true" | "on" => Ok(HeaderStyle::Ietf),
            "legacy" | "x" | "x-ratelimit" => Ok(HeaderStyle::Legacy),
            "both" => Ok(HeaderStyle::Both),
            "none" | "off" | "false" => Ok(HeaderStyle::None),
            _ => Err(super::RateLimitError::Headers(s.to_owned())),
        }
    }
}

/// The `RateLimit-Policy` value for `limits`: one item per limit, named by position.
///
/// ```
/// let limits: buttress::ratelimit::Limits = "200 per day; 50 per hour".parse()?;
/// assert_eq!(buttress::ratelimit::policy_header(&limits), r#""1";q=200;w=86400, "2";q=50;w=3600"#);
/// # Ok::<(), buttress::ratelimit::GrammarError>(())
/// ```
pub fn policy_header(limits: &Limits) -> String {
    limits
        .iter()
        .enumerate()
        .map(|(i, l)| format!("\"{}\";q={};w={}", i + 1, l.amount(), l.period().as_secs()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Adds the configured headers for `decision` to `headers`, unless a limit nearer the handler
/// (a route's) already said its piece.
pub(crate) fn set_headers(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    limits: &Limits,
    policy: &HeaderValue,
    decision: &Decision,
) {
    let present = (
        headers.contains_key(&RATELIMIT),
        headers.contains_key(&X_RATELIMIT_LIMIT),
    );
    set_headers_present(headers, style, limits, policy, decision, present);
}

/// [`set_headers`], knowing whether the IETF and the legacy fields are already there.
pub(crate) fn set_headers_present(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    limits: &Limits,
    policy: &HeaderValue,
    decision: &Decision,
    (ietf_present, legacy_present): (bool, bool),
) -> (bool, bool) {
    // The decision says which limit it is about; its `limit()` may be this instance's share
    // of it (the memory fallback), which matches none of the declared ones.
    let idx = decision.index() + 1;
    debug_assert!(idx <= limits.len());
    // A limit nearer the handler (a route's) has already said its piece: keep it.
    if matches!(style, HeaderStyle::Ietf | HeaderStyle::Both) && !ietf_present {
        headers.reserve(2);
        headers.insert(RATELIMIT_POLICY.clone(), policy.clone());
        let mut digits = itoa::Buffer::new();
        let mut text = String::with_capacity(48);
        text.push('"');
        text.push_str(digits.format(idx));
        text.push_str("\";r=");
        text.push_str(digits.format(decision.remaining()));
        text.push_str(";t=");
        text.push_str(digits.format(secs_up(decision.reset_after())));
        // Digits and quotes only: always a valid value; taken without a copy.
        if let Ok(v) = HeaderValue::try_from(text) {
            headers.insert(RATELIMIT.clone(), v);
        }
    }
    if matches!(style, HeaderStyle::Legacy | HeaderStyle::Both) && !legacy_present {
        let reset_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(decision.reset_after());
        let pairs = [
            (&X_RATELIMIT_LIMIT, decision.limit().amount()),
            (&X_RATELIMIT_REMAINING, decision.remaining()),
            (&X_RATELIMIT_RESET, secs_up(reset_at)),
        ];
        for (name, n) in pairs {
            headers.insert(name.clone(), HeaderValue::from(n));
        }
    }
    (
        ietf_present || matches!(style, HeaderStyle::Ietf | HeaderStyle::Both),
        legacy_present || matches!(style, HeaderStyle::Legacy | HeaderStyle::Both),
    )
}

/// The 429 for a refused request: an empty response carrying a [`Problem`] of kind
/// `rate-limited`, for [`ErrorPagesLayer`](crate::errors::ErrorPagesLayer) to render.
pub(crate) fn too_many(decision: &Decision) -> http::Response<axum::body::Body> {
    let wait = decision.retry_after().map(secs_up);
    let detail = match wait {
        Some(s) => format!(
            "Too many requests: the limit is {}. Try again in {s} second{}.",
            decision.limit(),
            if s == 1 { "" } else { "s" }
        ),
        None if decision.limit().amount() == 0 => format!(
            "This address is closed for now (its limit is {}).",
            decision.limit()
        ),
        None => format!(
            "This request costs more than the whole limit of {}.",
            decision.limit()
        ),
    };
    let mut res = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .with_kind("rate-limited")
        .with_detail(detail)
        .into_empty_response::<axum::body::Body>();
    if let Some(s) = wait {
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(s.max(1)));
    }
    res
}

/// The 503 for a fail-closed limit whose store is down.
pub(crate) fn unavailable() -> http::Response<axum::body::Body> {
    let mut res = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_kind("rate-limit-unavailable")
        .with_detail("This service is briefly unavailable. Please try again in a moment.")
        .into_empty_response::<axum::body::Body>();
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}
