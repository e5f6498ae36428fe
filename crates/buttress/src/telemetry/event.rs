//! The security events: one `tracing` event per refusal or security action, on the target
//! `buttress::security`, with stable names and fields.
//!
//! | `event` | level | fields |
//! |---|---|---|
//! | `refusal` | info (csrf: warn) | `layer`, `reason`, `status`, `request_id`, `client`, `method`, `route` |
//! | `login` | info | `outcome` |
//! | `csp_report` | info | `directive`, `blocked`, `document`, `source` (escaped, cut to 200 characters) |
//!
//! `route` is a route pattern or limited path from the application's own code, or `unmatched`:
//! never the request's path or query, which can carry tokens. No event carries a header value,
//! a cookie, a token, a password or an account name; the client is an address (or its network,
//! with `BUTTRESS_LOG_CLIENT_NETWORK`). The JSON formatter escapes control characters; the text
//! formatter quotes the only free-text fields (CSP reports) with
//! [`LogField`](crate::headers::LogField).

use std::net::IpAddr;

use http::{HeaderValue, Method};

use super::LoginOutcome;

/// The log target of every security event.
pub(crate) const TARGET: &str = "buttress::security";

/// The fields of a `refusal` event.
pub(crate) struct Refused<'a> {
    pub(crate) layer: &'static str,
    pub(crate) reason: &'a str,
    pub(crate) status: u16,
    pub(crate) request_id: Option<&'a HeaderValue>,
    pub(crate) client: Option<String>,
    pub(crate) method: Option<&'a Method>,
    pub(crate) route: &'a str,
}

/// Logs a `refusal` event.
pub(crate) fn refusal(r: &Refused<'_>) {
    // Request ids are ours (a UUID), never the client's; only ASCII graphic characters.
    let request_id = r.request_id.and_then(|v| v.to_str().ok()).unwrap_or("");
    let client = r.client.as_deref().unwrap_or("");
    let method = r.method.map_or("", Method::as_str);
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: TARGET,
                $level,
                event = "refusal",
                layer = r.layer,
                reason = r.reason,
                status = r.status,
                request_id,
                client,
                method,
                route = r.route,
                "request refused"
            )
        };
    }
    if r.layer == "csrf" {
        emit!(tracing::Level::WARN);
    } else {
        emit!(tracing::Level::INFO);
    }
}

/// Logs a `login` event.
pub(crate) fn login(outcome: LoginOutcome) {
    tracing::info!(
        target: TARGET,
        event = "login",
        outcome = outcome.as_str(),
        "sign-in attempt"
    );
}

/// The client as events name it: its address, or with `network_only` its IPv4 /24 or IPv6 /48
/// network (`192.0.2.0/24`).
pub(crate) fn client_field(ip: IpAddr, network_only: bool) -> String {
    if !network_only {
        return ip.to_string();
    }
    let prefix = if ip.is_ipv4() { 24 } else { 48 };
    match ipnet::IpNet::new(ip, prefix) {
        Ok(net) => net.trunc().to_string(),
        Err(_) => ip.to_string(),
    }
}
