//! The HTTP client of a scan: rustls, no automatic redirects, `--ca-cert` (see [`super::tls`]),
//! `--insecure`, `--resolve`; and what its errors mean for the report.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::{tls, Options, ScanError};
use crate::observe::Failure;

const UA: &str = concat!(
    "Mozilla/5.0 (compatible; buttress-audit/",
    env!("CARGO_PKG_VERSION"),
    "; security self-test)"
);

/// Builds the HTTP client for `opts`: no automatic redirects, rustls, the web roots plus
/// `--ca-cert` (its certificates also pinned), or no verification at all with `--insecure`.
pub(super) fn client(opts: &Options) -> Result<reqwest::Client, ScanError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(UA)
        .connect_timeout(opts.max_time.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(2);
    if let Some(pem) = &opts.ca_cert_pem {
        // Read even with --insecure, so a bad file is an error either way.
        let config = tls::client_config(pem)?;
        if !opts.insecure {
            b = b.use_preconfigured_tls(config);
        }
    }
    if opts.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    for (host, addr) in &opts.resolve {
        b = b.resolve(host, *addr);
    }
    b.build().map_err(|e| ScanError::Client(e.to_string()))
}

/// The `--header` and `--cookie` fields of `opts`, ready to send, their values marked
/// sensitive (never logged by the HTTP stack, never indexed by HPACK).
pub(super) fn sign_in_fields(opts: &Options) -> Result<Vec<(HeaderName, HeaderValue)>, ScanError> {
    opts.sign_in
        .headers()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ScanError::BadSignIn(format!("{name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| ScanError::BadSignIn(format!("the value of {name} cannot be sent")))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

pub(super) enum Err {
    Budget,
    Timeout,
    Tls(String),
    Connect(String),
    Other(String),
}

impl Err {
    pub(super) fn text(&self, url: &str, opts: &Options) -> String {
        match self {
            Err::Budget => format!("request budget of {} spent before {url}", opts.max_requests),
            Err::Timeout => format!(
                "no answer from {url} within the {}s time budget",
                opts.time_budget().as_secs_f32()
            ),
            Err::Tls(m) => format!("{url}: {m}"),
            Err::Connect(m) => format!("cannot connect to {url}: {m}"),
            Err::Other(m) => format!("{url}: {m}"),
        }
    }

    pub(super) fn failure(self, url: &str, opts: &Options) -> Failure {
        let t = self.text(url, opts);
        match self {
            Err::Budget => Failure::Budget(t),
            Err::Timeout => Failure::Timeout(t),
            Err::Tls(_) => Failure::Tls(t),
            Err::Connect(_) => Failure::Connect(t),
            Err::Other(_) => Failure::Other(t),
        }
    }
}

pub(super) fn classify(e: &reqwest::Error) -> Err {
    if e.is_timeout() {
        return Err::Timeout;
    }
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        chain.push(x.to_string());
        cur = x.source();
    }
    let all = chain.join(": ");
    let lower = all.to_ascii_lowercase();
    let deepest = chain.last().cloned().unwrap_or_default();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        Err::Tls(deepest)
    } else if e.is_connect() {
        Err::Connect(deepest)
    } else {
        Err::Other(deepest)
    }
}
