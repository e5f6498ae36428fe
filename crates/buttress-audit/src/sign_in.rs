//! Signed-in scans: headers and cookies (`--header NAME:VALUE`, `--cookie NAME=VALUE`) sent on
//! every request to the target's origin, so a team can audit what its users see after sign-in.
//!
//! What holds (the scanner's side is in [`crate::scan`]):
//!
//! | rule | how |
//! |---|---|
//! | sent to the target's origin only (scheme, host and port of the URL given) | never to the plain-HTTP probe, another port, or a page a redirect leads to elsewhere |
//! | never shown | every value (and the credential part of `Scheme credentials`, and their HTML-escaped forms) is replaced by `***` in everything the scan records, before judging, so no report, note or evidence snippet holds it; header values are marked sensitive for the HTTP client |
//! | no header injection | names are tokens; values are visible ASCII, space and tab (no CR or LF); a cookie value is cookie-octets |
//! | probes stay what they are | names the client or the probes set themselves (`Host`, `Origin`, `Sec-Fetch-*`, `Accept`, …) are refused; `Cookie` goes through [`SignIn::cookie`] |
//!
//! Values shorter than [`MIN_REDACTED_LEN`] characters are not masked (masking `en` would garble
//! every report, and such a value is no secret); error messages never repeat a value.
//!
//! # Example
//!
//! ```
//! use buttress_audit::sign_in::SignIn;
//!
//! let s = SignIn::new()
//!     .header_arg("Authorization: Bearer s3cr3t-t0ken")?
//!     .cookie_arg("__Host-session=abc123def456")?;
//! assert_eq!(
//!     s.headers().collect::<Vec<_>>(),
//!     [("Authorization", "Bearer s3cr3t-t0ken"), ("cookie", "__Host-session=abc123def456")]
//! );
//! let mut evidence = String::from("debug page: HTTP_COOKIE=__Host-session=abc123def456");
//! s.redact(&mut evidence);
//! assert_eq!(evidence, "debug page: HTTP_COOKIE=__Host-session=***");
//! assert!(!format!("{s:?}").contains("abc123"));
//! # Ok::<(), buttress_audit::sign_in::SignInError>(())
//! ```

use crate::observe::Observations;

/// Values shorter than this are not masked in reports (see the module docs).
pub const MIN_REDACTED_LEN: usize = 4;

/// Names a user header may not take: the HTTP client sets them, the probes set them per probe,
/// or they have their own flag. Lowercase; `proxy-*` is refused too.
const RESERVED: &[(&str, &str)] = &[
    (
        "host",
        "the HTTP client sets it from the URL (use --resolve to reach a host at another address)",
    ),
    ("content-length", "the HTTP client sets it"),
    ("transfer-encoding", "the HTTP client sets it"),
    ("connection", "the HTTP client sets it"),
    ("keep-alive", "the HTTP client sets it"),
    ("te", "the HTTP client sets it"),
    ("trailer", "the HTTP client sets it"),
    ("upgrade", "the HTTP client sets it"),
    ("expect", "the HTTP client sets it"),
    ("cookie", "use --cookie NAME=VALUE (repeatable) instead"),
    (
        "origin",
        "each probe sends its own (the CORS and CSRF probes depend on it)",
    ),
    (
        "referer",
        "each probe sends its own (the CSRF probe depends on it)",
    ),
    ("accept", "each probe sends its own"),
    ("content-type", "each probe sends its own"),
];

/// Why a `--header` or `--cookie` was refused. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// `--header` without a colon, or `--cookie` without `=`.
    #[error("{flag} expects {shape} (the value is not repeated here)")]
    Shape {
        /// `--header` or `--cookie`.
        flag: &'static str,
        /// `NAME:VALUE` or `NAME=VALUE`.
        shape: &'static str,
    },
    /// A name with characters a header or cookie name cannot have.
    #[error(
        "{flag} name {name:?} is not a valid name: use letters, digits and !#$%&'*+-.^_`|~ only"
    )]
    BadName {
        /// `--header` or `--cookie`.
        flag: &'static str,
        /// The name as given (control characters escaped by `Debug`).
        name: String,
    },
    /// A value with characters that could split or corrupt the request.
    #[error("the value of {flag} {name} has a character it cannot carry ({what}): fix the value (it is not repeated here)")]
    BadValue {
        /// `--header` or `--cookie`.
        flag: &'static str,
        /// The name.
        name: String,
        /// Which characters are allowed.
        what: &'static str,
    },
    /// A header name the scanner or the HTTP client sets itself.
    #[error("--header {name} cannot be set: {why}")]
    Reserved {
        /// The name, lowercase.
        name: String,
        /// Why, and what to do instead.
        why: &'static str,
    },
}

/// Headers and cookies sent to the target's origin on every request of a scan. `Debug` shows
/// the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SignIn {
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    /// The `Cookie` field: every cookie, `; `-separated.
    cookie_line: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("SignIn")
            .field("headers", &names(&self.headers))
            .field("cookies", &names(&self.cookies))
            .finish_non_exhaustive()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

impl SignIn {
    /// Nothing to send.
    pub fn new() -> SignIn {
        SignIn::default()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.cookies.is_empty()
    }

    /// Adds a header sent on every request to the target's origin.
    ///
    /// # Errors
    /// A name that is not a token or that the scanner sets itself, a value with a control
    /// character or a byte outside ASCII.
    pub fn header(mut self, name: &str, value: &str) -> Result<SignIn, SignInError> {
        if !is_token(name) {
            return Err(SignInError::BadName {
                flag: "--header",
                name: name.to_owned(),
            });
        }
        let lower = name.to_ascii_lowercase();
        if let Some((_, why)) = RESERVED.iter().find(|(n, _)| *n == lower) {
            return Err(SignInError::Reserved { name: lower, why });
        }
        if lower.starts_with("proxy-") || lower.starts_with("sec-fetch-") {
            let why = if lower.starts_with("proxy-") {
                "it is meant for a proxy, not the site (put proxy credentials in HTTPS_PROXY)"
            } else {
                "each probe sends its own Fetch Metadata (the CSRF and CORS probes depend on it)"
            };
            return Err(SignInError::Reserved { name: lower, why });
        }
        let value = value.trim_matches([' ', '\t']);
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7F).contains(&b))
        {
            return Err(SignInError::BadValue {
                flag: "--header",
                name: name.to_owned(),
                what: "visible ASCII, space and tab only; no CR, LF or other control character",
            });
        }
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Adds a cookie sent on every request to the target's origin (all cookies go in one
    /// `Cookie` header, in the order given).
    ///
    /// # Errors
    /// A name that is not a token, a value that is not cookie-octets (optionally in double
    /// quotes): no space, `"`, `,`, `;`, `\` or control character.
    pub fn cookie(mut self, name: &str, value: &str) -> Result<SignIn, SignInError> {
        if !is_token(name) {
            return Err(SignInError::BadName {
                flag: "--cookie",
                name: name.to_owned(),
            });
        }
        let inner = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if !inner.bytes().all(is_cookie_octet) {
            return Err(SignInError::BadValue {
                flag: "--cookie",
                name: name.to_owned(),
                what: "no space, comma, semicolon, backslash, double quote or control character; one cookie per --cookie",
            });
        }
        if !self.cookie_line.is_empty() {
            self.cookie_line.push_str("; ");
        }
        self.cookie_line.push_str(name);
        self.cookie_line.push('=');
        self.cookie_line.push_str(value);
        self.cookies.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Adds a header given as `NAME:VALUE` (`Name: value` too: space around the value is
    /// dropped), as `--header` takes it.
    ///
    /// # Errors
    /// No colon, or as [`SignIn::header`].
    pub fn header_arg(self, arg: &str) -> Result<SignIn, SignInError> {
        let (name, value) = arg.split_once(':').ok_or(SignInError::Shape {
            flag: "--header",
            shape: "NAME:VALUE",
        })?;
        self.header(name.trim_matches([' ', '\t']), value)
    }

    /// Adds a cookie given as `NAME=VALUE`, as `--cookie` takes it.
    ///
    /// # Errors
    /// No `=`, or as [`SignIn::cookie`].
    pub fn cookie_arg(self, arg: &str) -> Result<SignIn, SignInError> {
        let (name, value) = arg.split_once('=').ok_or(SignInError::Shape {
            flag: "--cookie",
            shape: "NAME=VALUE",
        })?;
        self.cookie(name, value)
    }

    /// The header fields to send: the headers in the order given, then one `cookie` field with
    /// every cookie.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let cookie = (!self.cookie_line.is_empty()).then_some(self.cookie_line.as_str());
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(cookie.map(|c| ("cookie", c)))
    }

    /// Whether a header of this name (any case) will be sent.
    pub fn sends_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The names sent, for a note: `Authorization`, `cookie __Host-session`.
    pub fn names(&self) -> Vec<String> {
        self.headers
            .iter()
            .map(|(n, _)| n.clone())
            .chain(self.cookies.iter().map(|(n, _)| format!("cookie {n}")))
            .collect()
    }

    /// Every string that must not appear in a report, longest first.
    fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            if s.chars().count() >= MIN_REDACTED_LEN {
                out.push(s.to_owned());
                let escaped = html_escape(s);
                if escaped != s {
                    // Templates write `'` as `&#x27;` (askama) or `&#39;` (Jinja, Django).
                    out.push(escaped.replace("&#x27;", "&#39;"));
                    out.push(escaped);
                }
            }
        };
        for (_, v) in &self.headers {
            add(v);
            if let Some((_, credential)) = v.rsplit_once([' ', '\t']) {
                add(credential);
            }
        }
        for (_, v) in &self.cookies {
            add(v);
            let inner = v.trim_matches('"');
            if inner != v {
                add(inner);
            }
        }
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out.dedup();
        out
    }

    /// Replaces every value (see the module docs) in `text` with `***`.
    pub fn redact(&self, text: &mut String) {
        redact_all(&self.secrets(), text);
    }

    /// Replaces every value in everything `obs` recorded (pages, headers, bodies, URLs,
    /// notes, failures) with `***`.
    ///
    /// ```
    /// use buttress_audit::sign_in::SignIn;
    /// use buttress_audit::{Failure, Observations};
    ///
    /// let s = SignIn::new().cookie("sid", "d3adb33f")?;
    /// let mut obs = Observations::failed("https://a.example/", vec![], Failure::Other("echo: sid=d3adb33f".into()));
    /// s.redact_observations(&mut obs);
    /// assert_eq!(obs.main.unwrap_err().message(), "echo: sid=***");
    /// # Ok::<(), buttress_audit::sign_in::SignInError>(())
    /// ```
    pub fn redact_observations(&self, obs: &mut Observations) {
        let secrets = self.secrets();
        if secrets.is_empty() {
            return;
        }
        obs.for_each_text(&mut |text: &mut String| redact_all(&secrets, text));
    }
}

/// Masks each of `secrets` (longest first) in `text`; a text in which masking made a secret
/// anew (a secret of `*`s and the mask) becomes `***` whole.
fn redact_all(secrets: &[String], text: &mut String) {
    for s in secrets {
        if text.contains(s.as_str()) {
            *text = text.replace(s.as_str(), "***");
        }
    }
    if secrets.iter().any(|s| text.contains(s.as_str())) {
        "***".clone_into(text);
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[cfg(test)]
mod tests;
