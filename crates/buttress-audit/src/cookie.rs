//! A lenient `Set-Cookie` parser (RFC 6265bis §5.6): whatever a site sends becomes a cookie
//! with the attributes a browser would honour; nothing is refused and nothing panics.
//!
//! # Example
//!
//! ```
//! use buttress_audit::cookie::SetCookie;
//!
//! let c = SetCookie::parse("__Host-sid=abc; Path=/; secure; HttpOnly; SameSite=Lax; Max-Age=3600").unwrap();
//! assert!(c.secure && c.http_only && c.is_session_like());
//! assert_eq!(c.same_site.as_deref(), Some("lax"));
//! assert_eq!(c.max_age, Some(3600));
//! assert!(c.prefix_problem().is_none());
//! ```

/// One parsed `Set-Cookie` field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCookie {
    /// Cookie name (may be empty: browsers accept `Set-Cookie: value`).
    pub name: String,
    /// Cookie value, as sent.
    pub value: String,
    /// `Secure` attribute.
    pub secure: bool,
    /// `HttpOnly` attribute.
    pub http_only: bool,
    /// `SameSite` value, lowercased, if the attribute is present.
    pub same_site: Option<String>,
    /// `Path` attribute.
    pub path: Option<String>,
    /// `Domain` attribute.
    pub domain: Option<String>,
    /// `Max-Age` in seconds (the last valid one).
    pub max_age: Option<i64>,
    /// `Expires` as sent.
    pub expires: Option<String>,
}

/// Names that usually carry a session or credentials (matched case-insensitively as parts).
const SESSION_HINTS: [&str; 12] = [
    "sess", "sid", "auth", "token", "login", "jwt", "remember", "user", "account", "identity",
    "csrf", "xsrf",
];

impl SetCookie {
    /// Parses one `Set-Cookie` field value. `None` for a field with neither name nor value.
    pub fn parse(line: &str) -> Option<SetCookie> {
        let mut parts = line.split(';');
        let pair = parts.next().unwrap_or("");
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => ("", pair.trim()),
        };
        if name.is_empty() && value.is_empty() {
            return None;
        }
        let mut c = SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            ..SetCookie::default()
        };
        for attr in parts {
            let (k, v) = match attr.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (attr.trim(), ""),
            };
            match k.to_ascii_lowercase().as_str() {
                "secure" => c.secure = true,
                "httponly" => c.http_only = true,
                "samesite" => c.same_site = Some(v.to_ascii_lowercase()),
                "path" => c.path = Some(v.to_owned()),
                "domain" => c.domain = Some(v.trim_start_matches('.').to_ascii_lowercase()),
                "max-age" => {
                    let digits = v.strip_prefix('-').unwrap_or(v);
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                        let n = digits.parse::<i64>().unwrap_or(i64::MAX);
                        c.max_age = Some(if v.starts_with('-') { -n } else { n });
                    }
                }
                "expires" => c.expires = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(c)
    }

    /// Whether the name suggests a session, login or token cookie.
    pub fn is_session_like(&self) -> bool {
        let l = self.name.to_ascii_lowercase();
        SESSION_HINTS.iter().any(|h| l.contains(h))
    }

    /// Whether the field deletes the cookie rather than setting it (`Max-Age` <= 0).
    pub fn is_deletion(&self) -> bool {
        self.max_age.is_some_and(|a| a <= 0)
    }

    /// A `SameSite` value browsers honour: `strict`, `lax` or `none`.
    pub fn same_site_valid(&self) -> bool {
        matches!(self.same_site.as_deref(), Some("strict" | "lax" | "none"))
    }

    /// A broken cookie-prefix rule, if any: `__Host-` needs Secure, `Path=/` and no Domain;
    /// `__Secure-` needs Secure. Browsers drop such cookies.
    pub fn prefix_problem(&self) -> Option<&'static str> {
        let l = self.name.to_ascii_lowercase();
        if l.starts_with("__host-") {
            if !self.secure {
                return Some("__Host- cookie without Secure");
            }
            if self.path.as_deref() != Some("/") {
                return Some("__Host- cookie without Path=/");
            }
            if self.domain.is_some() {
                return Some("__Host- cookie with a Domain");
            }
        } else if l.starts_with("__secure-") && !self.secure {
            return Some("__Secure- cookie without Secure");
        }
        None
    }

    /// Seconds the cookie lives from `now` (epoch seconds): `Max-Age` wins over `Expires`;
    /// `None` for a session cookie (or an `Expires` that does not parse).
    pub fn lifetime(&self, now: i64) -> Option<i64> {
        self.max_age.or_else(|| {
            self.expires
                .as_deref()
                .and_then(crate::observatory::parse_cookie_date)
                .map(|t| t - now)
        })
    }

    /// Whether the name carries `__Host-` or `__Secure-`.
    pub fn has_prefix(&self) -> bool {
        let l = self.name.to_ascii_lowercase();
        l.starts_with("__host-") || l.starts_with("__secure-")
    }

    /// The attributes as a short summary for evidence, without the value.
    pub fn summary(&self) -> String {
        let mut s = format!("{}=…", self.name);
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if let Some(v) = &self.same_site {
            s.push_str("; SameSite=");
            s.push_str(v);
        }
        if let Some(v) = &self.path {
            s.push_str("; Path=");
            s.push_str(v);
        }
        if let Some(v) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(v);
        }
        if let Some(v) = self.max_age {
            s.push_str(&format!("; Max-Age={v}"));
        }
        if let Some(v) = &self.expires {
            s.push_str("; Expires=");
            s.push_str(v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient() {
        assert_eq!(SetCookie::parse(""), None);
        assert_eq!(SetCookie::parse(";;"), None);
        let c = SetCookie::parse("novalue").expect("nameless");
        assert_eq!((c.name.as_str(), c.value.as_str()), ("", "novalue"));
        let c =
            SetCookie::parse("a=b; Max-Age=99999999999999999999; max-age=x; SameSite").expect("c");
        assert_eq!(c.max_age, Some(i64::MAX));
        assert_eq!(c.same_site.as_deref(), Some(""));
        assert!(!c.same_site_valid());
        let c = SetCookie::parse("id=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT").expect("c");
        assert_eq!(c.lifetime(1_445_412_480), Some(0));
        assert_eq!(
            SetCookie::parse("id=1; Expires=soon")
                .expect("c")
                .lifetime(0),
            None
        );
        let c = SetCookie::parse("session=1; Max-Age=-1").expect("c");
        assert!(c.is_deletion() && c.is_session_like());
    }

    #[test]
    fn prefixes() {
        let bad = SetCookie::parse("__Host-x=1; Secure; Path=/a").expect("c");
        assert_eq!(bad.prefix_problem(), Some("__Host- cookie without Path=/"));
        let bad = SetCookie::parse("__Secure-x=1").expect("c");
        assert!(bad.prefix_problem().is_some());
    }
}
