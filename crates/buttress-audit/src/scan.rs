//! The live scanner: fetches a site as a browser and an attacker would, within bounds, and
//! records [`Observations`] for [`judge`](crate::judge()).
//!
//! Bounds, all configurable in [`Options`]:
//!
//! | bound | default |
//! |---|---|
//! | requests in all (every hop and probe counts) | 60 |
//! | wall-clock time for the whole scan | 30 s |
//! | bytes read of one body (the rest is not read) | 1 MiB |
//! | redirects followed to the page (each recorded; a loop stops at once) | 10 |
//! | same-host pages read for forms | 5 |
//! | links waiting to be crawled ([`MAX_QUEUE`]) | 500 |
//! | rate-limit burst (`--probe-rate-limit`) | 30 |
//!
//! Only one host is scanned: a redirect to another host is recorded, not followed, and forms
//! posting elsewhere are never submitted. The two probes that change state or load the site
//! (`--active`'s tokenless cross-site POST, one per form, and the rate-limit burst) run only
//! against loopback or hosts named in [`Options::allow_hosts`]. Loopback is checked by name,
//! by the [`Options::resolve`] address and by the address that answered, so a name cannot lead
//! them elsewhere; and they stay on the origin of the URL given (or its `http://host/` to
//! `https://host/` upgrade), whatever port or scheme of the same host a redirect leads to.
//!
//! The headers and cookies of [`Options::sign_in`] go, like the URL's user name and password,
//! to the origin of the URL given only, and their values are masked in everything recorded
//! (see [`crate::sign_in`]).
//!
//! Certificate problems are findings (`AUD-TLS-001`), not errors: [`scan`] fails only for a bad
//! URL, an unreadable CA file or sign-in fields it cannot send. With a CA file, a certificate of
//! it is also accepted as the server's own when it is exactly that certificate, `CA:TRUE` or
//! not, after checking the host name and dates (the `openssl req -x509` one-liner's case).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), buttress_audit::scan::ScanError> {
//! use buttress_audit::scan::{audit, Options};
//!
//! let report = audit("https://localhost:8443/", &Options::default()).await?;
//! println!("{} ({} points)", report.grade, report.score);
//! # Ok(()) }
//! ```

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{Method, RequestBuilder};
use tokio::time::Instant;
use url::Url;

mod active;
mod client;
mod crawl;
mod follow;
mod guard;
mod probes;
mod tls;
mod userinfo;

use crate::observe::{Failure, Observations, Page};
use crate::sign_in::SignIn;
use client::{classify, client, sign_in_fields, Err};
pub use crawl::MAX_QUEUE;
pub use guard::host_allowed;

/// Scan bounds and permissions. `Options::default()` is a passive scan within the defaults of
/// the module table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Requests in all.
    pub max_requests: u32,
    /// Wall-clock budget for the whole scan (at most [`MAX_TIME`]; more counts as that).
    pub max_time: Duration,
    /// Bytes read of one body.
    pub max_body: usize,
    /// Redirects followed to the page.
    pub max_redirects: u32,
    /// Same-host pages read for forms (besides the page itself).
    pub max_pages: u32,
    /// Send one tokenless cross-site POST to each form found (loopback / allowed hosts only).
    pub active: bool,
    /// Hosts besides loopback that the active probes may touch (at whatever address).
    pub allow_hosts: Vec<String>,
    /// Path for the rate-limit burst, if asked for.
    pub rate_limit_path: Option<String>,
    /// Requests in the rate-limit burst.
    pub burst: u32,
    /// Extra trusted roots (PEM, one or more certificates), e.g. a private CA or a self-signed
    /// development certificate; each is also accepted as the server's own certificate when it
    /// is exactly that one, even marked `CA:TRUE` (names and dates still checked).
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Skip certificate verification (reported as a warning).
    pub insecure: bool,
    /// Port of the plain-HTTP listener to test the redirect to HTTPS on (default: 80 when the
    /// URL has no port, otherwise untested).
    pub http_port: Option<u16>,
    /// Draw a progress bar on standard error (only when it is a terminal).
    pub progress: bool,
    /// Host names to connect to at a fixed address instead of asking DNS (like curl's
    /// `--resolve`): scan a staging host by its address, or a test server by a real name. A
    /// host sent to an address that is not loopback gets the active probes only if it is in
    /// [`Options::allow_hosts`].
    pub resolve: Vec<(String, std::net::SocketAddr)>,
    /// Headers and cookies sent on every request to the target's origin, never shown (see
    /// [`crate::sign_in`]).
    pub sign_in: SignIn,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_requests: 60,
            max_time: Duration::from_secs(30),
            max_body: 1 << 20,
            max_redirects: 10,
            max_pages: 5,
            active: false,
            allow_hosts: Vec::new(),
            rate_limit_path: None,
            burst: 30,
            ca_cert_pem: None,
            insecure: false,
            http_port: None,
            progress: false,
            resolve: Vec::new(),
            sign_in: SignIn::new(),
        }
    }
}

impl Options {
    /// Options with the default bounds.
    pub fn new() -> Options {
        Options::default()
    }

    /// The time budget in effect: [`Options::max_time`], at most [`MAX_TIME`].
    fn time_budget(&self) -> Duration {
        self.max_time.min(MAX_TIME)
    }
}

/// The longest time budget: a day. A longer [`Options::max_time`] counts as a day (a deadline
/// further off could overflow the clock, and no scan needs it).
pub const MAX_TIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a scan could not start. Everything that happens once it runs is a finding instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanError {
    /// The target is not an absolute http(s) URL with a host.
    BadUrl(String),
    /// The `--ca-cert` file holds no usable certificate.
    BadCaCert(String),
    /// The HTTP client could not be built.
    Client(String),
    /// The `--probe-rate-limit` path leads off the scanned origin (or is no path at all).
    BadProbePath(String),
    /// The sign-in headers cannot be sent as given.
    BadSignIn(String),
}

impl std::error::Error for ScanError {}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::BadUrl(m) => write!(f, "bad URL: {m}"),
            ScanError::BadCaCert(m) => write!(f, "bad CA certificate: {m}"),
            ScanError::Client(m) => write!(f, "cannot build the HTTP client: {m}"),
            ScanError::BadProbePath(m) => write!(f, "bad --probe-rate-limit path: {m}"),
            ScanError::BadSignIn(m) => write!(f, "bad sign-in header: {m}"),
        }
    }
}

/// Scans `target` and judges it: [`scan`] then [`judge`](crate::judge()).
pub async fn audit(target: &str, opts: &Options) -> Result<crate::Report, ScanError> {
    Ok(crate::judge(&scan(target, opts).await?))
}

const ATTACKER: &str = "https://attacker.invalid";

struct Fetcher<'o> {
    client: reqwest::Client,
    /// The target URL's user name and password, for its origin only.
    creds: Option<userinfo::Credentials>,
    /// The target's origin, the only one the sign-in fields go to.
    origin: Url,
    /// `--header` and `--cookie`, for [`Fetcher::origin`] only.
    sign_in: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    opts: &'o Options,
    deadline: Instant,
    sent: u32,
    bar: ProgressBar,
    notes: Vec<String>,
    /// The address the last answer came from (when the client knows it).
    peer: Option<std::net::SocketAddr>,
}

impl Fetcher<'_> {
    fn left(&self) -> u32 {
        self.opts.max_requests.saturating_sub(self.sent)
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Sends `req` and reads at most `max_body` bytes of the answer.
    async fn send(&mut self, req: RequestBuilder, url: &str) -> Result<Page, Err> {
        if self.sent >= self.opts.max_requests {
            return Err(Err::Budget);
        }
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Err::Timeout);
        }
        self.sent += 1;
        self.peer = None;
        self.bar.inc(1);
        self.bar.set_message(url.to_owned());
        let max_body = self.opts.max_body;
        let work = async move {
            let mut res = req.send().await.map_err(|e| classify(&e))?;
            let peer = res.remote_addr();
            let status = res.status().as_u16();
            let headers: Vec<(String, String)> = res
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body: Vec<u8> = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = res.chunk().await.map_err(|e| classify(&e))? {
                let room = max_body.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            let page = Page {
                url: url.to_owned(),
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                truncated,
            };
            Ok((page, peer))
        };
        let page = match tokio::time::timeout(self.deadline - now, work).await {
            Ok(r) => {
                let (page, peer) = r?;
                self.peer = peer;
                page
            }
            Err(_) => return Err(Err::Timeout),
        };
        if page.truncated {
            self.notes.push(format!(
                "body of {url} cut at {} bytes (only that much was read)",
                self.opts.max_body
            ));
        }
        Ok(page)
    }

    /// A request for `url`, with the target URL's credentials and the sign-in fields if it
    /// is on the target's origin.
    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let mut req = match &self.creds {
            Some(c) => self.client.request(method, c.apply(url).as_str()),
            None => self.client.request(method, url.as_str()),
        };
        if same_origin(url, &self.origin) {
            for (name, value) in &self.sign_in {
                req = req.header(name, value);
            }
        }
        req
    }

    fn get(&self, url: &Url) -> RequestBuilder {
        self.request(Method::GET, url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("sec-fetch-site", "none")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
    }

    fn skip(&mut self, what: &str) -> bool {
        if self.left() == 0 {
            self.notes
                .push(format!("{what} skipped: request budget spent"));
            true
        } else if self.out_of_time() {
            self.notes
                .push(format!("{what} skipped: time budget spent"));
            true
        } else {
            false
        }
    }
}

fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Scans `target` within `opts`' bounds. The values of [`Options::sign_in`] are masked in
/// everything recorded.
pub async fn scan(target: &str, opts: &Options) -> Result<Observations, ScanError> {
    let mut obs = scan_unmasked(target, opts).await?;
    opts.sign_in.redact_observations(&mut obs);
    Ok(obs)
}

/// What the probes after the page share: where the scan started and ended up, and what the
/// state-changing probes may do there.
struct Site<'a> {
    start: &'a Url,
    final_url: &'a Url,
    /// The final URL's host.
    host: &'a str,
    /// Why the probes that change state or load the site may not run here, if they may not.
    refusal: &'a Option<String>,
    /// Requests kept for the rate-limit burst, so that crawling cannot starve it.
    reserve: u32,
}

async fn scan_unmasked(target: &str, opts: &Options) -> Result<Observations, ScanError> {
    let mut start = Url::parse(target)
        .map_err(|e| ScanError::BadUrl(format!("{}: {e}", userinfo::redact(target))))?;
    // Credentials in the URL go to its origin only and are never recorded: from here on
    // every URL is without them, the target as reported too.
    let creds = userinfo::take(&mut start);
    let shown = match &creds {
        Some(_) => start.to_string(),
        None => target.to_owned(),
    };
    let target = shown.as_str();
    if !matches!(start.scheme(), "http" | "https") || start.host_str().is_none() {
        return Err(ScanError::BadUrl(format!(
            "{target}: only http:// and https:// URLs with a host"
        )));
    }
    if let Some(path) = &opts.rate_limit_path {
        guard::probe_url(&start, path).map_err(ScanError::BadProbePath)?;
    }
    let client = client(opts)?;
    let sign_in = sign_in_fields(opts)?;
    if creds.is_some() && opts.sign_in.sends_header("authorization") {
        return Err(ScanError::BadSignIn(
            "the URL's user name and password and --header Authorization both set Authorization: give one".into(),
        ));
    }
    let mut f = Fetcher {
        client,
        creds,
        origin: start.clone(),
        sign_in,
        opts,
        deadline: Instant::now() + opts.time_budget(),
        sent: 0,
        bar: progress_bar(opts),
        notes: Vec::new(),
        peer: None,
    };
    f.notes = opening_notes(opts, &start, f.creds.is_some());
    let (main, chain, url) = match follow::follow(&mut f, &start, target).await {
        Ok(found) => found,
        Err(ended) => return Ok(*ended),
    };
    let main_peer = f.peer;
    let final_url = Url::parse(&main.url).unwrap_or_else(|_| url.clone());
    let mut obs = Observations::failed(target, chain, Failure::Other(String::new()));
    obs.verified = !opts.insecure;

    // Why the probes that change state or load the site may not run here, if they may not:
    // loopback (by name, by --resolve and by the address that answered) or --allow-host, and
    // the origin given.
    let host = final_url.host_str().unwrap_or("").to_owned();
    let refusal = guard::refusal(&start, &final_url, main_peer, opts);
    // The burst's URL, or why it may not run; what it needs is reserved up front so that
    // crawling cannot starve it.
    let rate_target: Option<Result<Url, String>> = opts.rate_limit_path.as_deref().map(|path| {
        if let Some(why) = &refusal {
            return Err(why.clone());
        }
        guard::probe_url(&final_url, path).map_err(|e| format!("--probe-rate-limit {e}"))
    });
    let reserve = match rate_target {
        Some(Ok(_)) => opts.burst,
        _ => 0,
    };

    let site = Site {
        start: &start,
        final_url: &final_url,
        host: &host,
        refusal: &refusal,
        reserve,
    };
    probes::plain_http(&mut f, &site, &main, &mut obs).await;
    probes::cors(&mut f, &site, &mut obs).await;
    probes::not_found_and_listings(&mut f, &site, &mut obs).await;
    probes::crawl(&mut f, &site, &main, &mut obs).await;
    probes::malformed(&mut f, &site, &mut obs).await;
    active::csrf(&mut f, &site, &main, &mut obs).await;
    active::rate_burst(&mut f, &site, rate_target, &mut obs).await;

    f.bar.finish_and_clear();
    obs.main = Ok(main);
    obs.requests = f.sent;
    obs.notes.extend(f.notes);
    Ok(obs)
}

/// The progress bar of a scan: on stderr when asked, hidden otherwise.
fn progress_bar(opts: &Options) -> ProgressBar {
    if opts.progress {
        let bar = ProgressBar::with_draw_target(
            Some(u64::from(opts.max_requests)),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {pos:>3}/{len} requests {elapsed:>3} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    }
}

/// What the report says first: certificates not verified, and where the sign-in and the URL's
/// credentials went (never their values).
fn opening_notes(opts: &Options, start: &Url, creds: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if opts.insecure {
        notes.push("certificate verification skipped (--insecure)".into());
    }
    if !opts.sign_in.is_empty() {
        notes.push(format!(
            "signed in: {} sent to {} only; their values are not shown here",
            opts.sign_in.names().join(", "),
            start.origin().ascii_serialization()
        ));
    }
    if creds {
        notes.push(format!(
            "the user name and password of the URL were sent to {} only, and are not shown here",
            start.origin().ascii_serialization()
        ));
    }
    notes
}
