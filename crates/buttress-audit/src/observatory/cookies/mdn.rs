//! The MDN v2 `Set-Cookie` parser (tough-cookie v5) and cookies test (tests/cookies.js).

use super::{is_session_name, jar, parse_cookie_date, Parsed, COOKIE_GOODNESS};
use crate::observatory::compat::js_parse_int;
use crate::observatory::plumbing::{only_if_worse, Ctx, Raw};

struct MdnCookie {
    name: String,
    secure: bool,
    http_only: bool,
    same_site: Option<String>,
}

/// tough-cookie v5 `Cookie.parse` (strict mode) plus the CookieJar prefix rules.
fn mdn_parse_cookie(header: &str, now: i64) -> Parsed<MdnCookie> {
    let header = header.split(['\n', '\r', '\0']).next().unwrap_or("").trim();
    let (pair, rest) = match header.find(';') {
        Some(p) => (&header[..p], Some(&header[p + 1..])),
        None => (header, None),
    };
    let Some(eq) = pair.find('=').filter(|&e| e > 0) else {
        return Parsed::Ignore;
    };
    let name = pair[..eq].trim().to_string();
    let value = pair[eq + 1..].trim();
    if name.chars().chain(value.chars()).any(|c| (c as u32) < 0x20) {
        return Parsed::Ignore;
    }
    let mut cookie = MdnCookie {
        name,
        secure: false,
        http_only: false,
        same_site: None,
    };
    let (mut domain, mut path) = (String::new(), String::new());
    let mut expires: Option<i64> = None;
    let mut max_age: Option<i128> = None;
    for av in rest.unwrap_or("").split(';') {
        let av = av.trim();
        if av.is_empty() {
            continue;
        }
        let (key, val) = match av.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
            None => (av.trim().to_lowercase(), None),
        };
        let val = val.filter(|v| !v.is_empty());
        match key.as_str() {
            "expires" => {
                if let Some(t) = val.and_then(parse_cookie_date) {
                    expires = Some(t);
                }
            }
            "max-age" => {
                if let Some(v) = val {
                    let digits = v.strip_prefix('-').unwrap_or(v);
                    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                        max_age = js_parse_int(v);
                    }
                }
            }
            "domain" => {
                if let Some(v) = val {
                    domain = v.trim_start_matches('.').to_lowercase();
                }
            }
            "path" => path = val.filter(|v| v.starts_with('/')).unwrap_or("").to_string(),
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                cookie.same_site = match val.map(str::to_lowercase).as_deref() {
                    Some(v @ ("strict" | "lax" | "none")) => Some(v.to_string()),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    if cookie.name.starts_with("__Secure-") && !cookie.secure {
        return Parsed::Ignore;
    }
    if cookie.name.starts_with("__Host-")
        && !(cookie.secure && domain.is_empty() && (path.is_empty() || path == "/"))
    {
        return Parsed::Ignore;
    }
    let key = format!("{}\u{0}{domain}\u{0}{path}", cookie.name);
    let expired = match max_age {
        Some(m) => m <= 0,
        None => expires.is_some_and(|t| t <= now),
    };
    if expired {
        Parsed::Delete(key)
    } else {
        Parsed::Set(key, cookie)
    }
}

/// cookies.js containsInvalidSameSiteCookie (on the raw header)
fn mdn_raw_samesite_invalid(raw: &str) -> bool {
    for part in raw.trim().split(';') {
        let mut it = part.trim().split('=');
        let key = it.next().unwrap_or("");
        let value = it.next();
        if key.trim().to_lowercase() == "samesite" {
            match value {
                None | Some("") => return true,
                Some(v)
                    if !["lax", "strict", "none"].contains(&v.trim().to_lowercase().as_str()) =>
                {
                    return true
                }
                _ => {}
            }
        }
    }
    false
}

pub(in crate::observatory) fn mdn_cookies(c: &Ctx<'_>, hsts: bool) -> Raw {
    let order = &COOKIE_GOODNESS[..];
    let raw = c.h.all("set-cookie");
    let mut result: Option<&'static str> = None;
    if raw.iter().any(|r| mdn_raw_samesite_invalid(r)) {
        result = only_if_worse("cookies-samesite-flag-invalid", result, order);
    }
    let cookies: Vec<MdnCookie> = jar(raw.iter().map(|h| mdn_parse_cookie(h, c.now)))
        .into_iter()
        .filter(|k| !k.name.is_empty() && k.name != "heroku-session-affinity")
        .collect();
    if cookies.is_empty() {
        return ("cookies", "cookies-not-found", true);
    }
    let mut missing_same_site = false;
    for cookie in &cookies {
        let session = is_session_name(&cookie.name);
        let anticsrf = cookie.name.to_lowercase().contains("csrf");
        if !cookie.secure && cookie.same_site.as_deref() == Some("none") {
            result = only_if_worse("cookies-samesite-flag-invalid", result, order);
        }
        if !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if !cookie.secure {
            result = only_if_worse("cookies-without-secure-flag", result, order);
        }
        if anticsrf && cookie.same_site.is_none() {
            result = only_if_worse("cookies-anticsrf-without-samesite-flag", result, order);
        }
        if session && !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if session && !cookie.secure {
            result = only_if_worse("cookies-session-without-secure-flag", result, order);
        }
        if session && !cookie.http_only {
            result = only_if_worse("cookies-session-without-httponly-flag", result, order);
        }
        if cookie.same_site.is_none() {
            missing_same_site = true;
        }
    }
    let result = result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    });
    let pass = matches!(
        result,
        "cookies-not-found"
            | "cookies-secure-with-httponly-sessions-and-samesite"
            | "cookies-secure-with-httponly-sessions"
    );
    ("cookies", result, pass)
}
