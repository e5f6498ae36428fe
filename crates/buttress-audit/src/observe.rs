//! What a scan saw: plain data, filled by the scanner (feature `scan`) or by hand in tests, and
//! judged by [`crate::judge`]. Keeping the two apart makes every verdict reproducible offline.

use serde::Serialize;

/// One response the scanner read (body bounded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The URL requested.
    pub url: String,
    /// Status code.
    pub status: u16,
    /// Header fields in order, names lowercased; repeated names kept.
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy UTF-8), at most the configured number of bytes.
    #[serde(skip)]
    pub body: String,
    /// The body was longer than the bound and was cut.
    pub truncated: bool,
}

impl Page {
    /// The first field named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field named `name` (lowercase).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One redirect hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The URL requested.
    pub url: String,
    /// Its status.
    pub status: u16,
    /// Its `Location`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Why the page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum Failure {
    /// The certificate did not verify (or the handshake failed).
    Tls(String),
    /// The time budget ran out.
    Timeout(String),
    /// No connection.
    Connect(String),
    /// A redirect led back to a URL already visited.
    RedirectLoop(String),
    /// More redirects than allowed.
    TooManyRedirects(String),
    /// The request budget ran out.
    Budget(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Tls(m)
            | Failure::Timeout(m)
            | Failure::Connect(m)
            | Failure::RedirectLoop(m)
            | Failure::TooManyRedirects(m)
            | Failure::Budget(m)
            | Failure::Other(m) => m,
        }
    }
}

/// An optional probe: not asked for, skipped (with the reason), or done.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "kebab-case")]
pub enum Probe<T> {
    /// The user did not ask for it.
    #[default]
    NotAsked,
    /// Asked for but not run: the reason.
    Skipped(String),
    /// Run.
    Done(T),
}

/// One tokenless cross-site POST (`--active`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsrfAttempt {
    /// Page the form was found on.
    pub page: String,
    /// Absolute URL posted to.
    pub action: String,
    /// Status of the answer.
    pub status: u16,
    /// Whether it looked accepted (2xx, or a redirect that is not to a login or error page).
    pub accepted: bool,
}

/// The rate-limit burst (`--probe-rate-limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateProbe {
    /// URL hit.
    pub url: String,
    /// Requests sent.
    pub sent: u32,
    /// Answers with 429.
    pub limited: u32,
    /// 1-based index of the first 429.
    pub first_limited_at: Option<u32>,
    /// `Retry-After` of the first 429.
    pub retry_after: Option<String>,
}

/// Everything one scan saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observations {
    /// The URL the user gave.
    pub target: String,
    /// Redirects followed to reach the page (each hop recorded).
    pub chain: Vec<Hop>,
    /// The page (after redirects), or why it could not be read.
    pub main: Result<Page, Failure>,
    /// The certificate was verified (false under `--insecure`).
    pub verified: bool,
    /// The first hop of the same URL over plain HTTP; `None` when not tested, `Some(Err)` when
    /// plain HTTP did not answer.
    pub plain_http: Option<Result<Hop, String>>,
    /// An answer for a path that does not exist.
    pub not_found: Option<Page>,
    /// Answers to malformed parameters.
    pub malformed: Vec<Page>,
    /// The answer to a request with an arbitrary `Origin` (the Observatory's probe origin).
    pub cors: Option<Page>,
    /// Answers for common static directories.
    pub listings: Vec<Page>,
    /// Other same-host pages read for forms.
    pub pages: Vec<Page>,
    /// Tokenless cross-site POSTs.
    pub csrf: Probe<Vec<CsrfAttempt>>,
    /// Rate-limit burst.
    pub rate: Probe<RateProbe>,
    /// Requests sent in all.
    pub requests: u32,
    /// What the scanner had to skip or cut, in words.
    pub notes: Vec<String>,
}

impl Observations {
    /// Calls `f` on every string the scan recorded: the target, every URL, header value and
    /// body, failure messages and notes (used to mask what must never be shown, see
    /// [`crate::sign_in`]).
    pub fn for_each_text(&mut self, f: &mut dyn FnMut(&mut String)) {
        fn page(p: &mut Page, f: &mut dyn FnMut(&mut String)) {
            f(&mut p.url);
            for (_, v) in &mut p.headers {
                f(v);
            }
            f(&mut p.body);
        }
        fn hop(h: &mut Hop, f: &mut dyn FnMut(&mut String)) {
            f(&mut h.url);
            if let Some(l) = &mut h.location {
                f(l);
            }
        }
        f(&mut self.target);
        self.chain.iter_mut().for_each(|h| hop(h, f));
        match &mut self.main {
            Ok(p) => page(p, f),
            Err(
                Failure::Tls(m)
                | Failure::Timeout(m)
                | Failure::Connect(m)
                | Failure::RedirectLoop(m)
                | Failure::TooManyRedirects(m)
                | Failure::Budget(m)
                | Failure::Other(m),
            ) => f(m),
        }
        match &mut self.plain_http {
            Some(Ok(h)) => hop(h, f),
            Some(Err(m)) => f(m),
            None => {}
        }
        let singles = [&mut self.not_found, &mut self.cors];
        for p in singles.into_iter().flatten() {
            page(p, f);
        }
        for p in self
            .malformed
            .iter_mut()
            .chain(self.listings.iter_mut())
            .chain(self.pages.iter_mut())
        {
            page(p, f);
        }
        match &mut self.csrf {
            Probe::Skipped(m) => f(m),
            Probe::Done(attempts) => {
                for a in attempts {
                    f(&mut a.page);
                    f(&mut a.action);
                }
            }
            Probe::NotAsked => {}
        }
        match &mut self.rate {
            Probe::Skipped(m) => f(m),
            Probe::Done(r) => {
                f(&mut r.url);
                if let Some(v) = &mut r.retry_after {
                    f(v);
                }
            }
            Probe::NotAsked => {}
        }
        self.notes.iter_mut().for_each(f);
    }

    /// Observations of a site whose page could not be read.
    pub fn failed(target: &str, chain: Vec<Hop>, failure: Failure) -> Observations {
        Observations {
            target: target.to_owned(),
            chain,
            main: Err(failure),
            verified: false,
            plain_http: None,
            not_found: None,
            malformed: Vec::new(),
            cors: None,
            listings: Vec::new(),
            pages: Vec::new(),
            csrf: Probe::NotAsked,
            rate: Probe::NotAsked,
            requests: 0,
            notes: Vec::new(),
        }
    }
}
