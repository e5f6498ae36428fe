//! The classic `Set-Cookie` parser (Python's http.cookiejar) and cookies test (headers.py).

use std::collections::BTreeMap;

use super::{is_session_name, jar, parse_cookie_date, Parsed, COOKIE_GOODNESS};
use crate::observatory::compat::py_int;
use crate::observatory::plumbing::{only_if_worse, Ctx, Raw};

struct ClassicCookie {
    name: String,
    secure: bool,
    rest: Vec<(String, Option<String>)>,
}

/// http.cookiejar parse_ns_headers + _normalized_cookie_tuples + _cookie_from_cookie_tuple.
fn classic_parse_cookie(header: &str, now: i64) -> Parsed<ClassicCookie> {
    const KNOWN: [&str; 7] = [
        "expires", "domain", "path", "secure", "version", "port", "max-age",
    ];
    const VALUE_ATTRS: [&str; 8] = [
        "version",
        "expires",
        "max-age",
        "domain",
        "path",
        "port",
        "comment",
        "commenturl",
    ];
    const BOOLEAN_ATTRS: [&str; 2] = ["discard", "secure"];
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for (ii, param) in header.split(';').enumerate() {
        let param = param.trim();
        let (key, val) = match param.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (param.to_string(), None),
        };
        if key.is_empty() {
            if ii == 0 {
                break;
            }
            continue;
        }
        let mut key = key;
        let mut val = val;
        if ii != 0 {
            let lc = key.to_lowercase();
            if KNOWN.contains(&lc.as_str()) {
                key = lc;
            }
            if key == "expires" {
                val = val
                    .and_then(|v| parse_cookie_date(v.trim_matches('"')))
                    .map(|t| t.to_string());
            }
        }
        pairs.push((key, val));
    }
    if pairs.is_empty() {
        return Parsed::Ignore;
    }
    let name = pairs[0].0.clone();
    let mut standard: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut rest: Vec<(String, Option<String>)> = Vec::new();
    let mut max_age_set = false;
    for (k, v) in pairs.into_iter().skip(1) {
        let lc = k.to_lowercase();
        let mut k = if VALUE_ATTRS.contains(&lc.as_str()) || BOOLEAN_ATTRS.contains(&lc.as_str()) {
            lc
        } else {
            k
        };
        let mut v = v;
        if BOOLEAN_ATTRS.contains(&k.as_str()) && v.is_none() {
            v = Some("True".to_string());
        }
        if standard.contains_key(&k) {
            continue;
        }
        if k == "domain" && v.is_none() {
            return Parsed::Ignore;
        }
        if k == "expires" && (max_age_set || v.is_none()) {
            continue; // max-age wins; a bad date makes a session cookie
        }
        if k == "max-age" {
            max_age_set = true;
            match v.as_deref().and_then(py_int) {
                Some(secs) => v = Some((i128::from(now) + secs).to_string()),
                None => return Parsed::Ignore,
            }
            k = "expires".to_string();
        }
        if VALUE_ATTRS.contains(&k.as_str()) || BOOLEAN_ATTRS.contains(&k.as_str()) {
            if v.is_none() && !matches!(k.as_str(), "port" | "comment" | "commenturl") {
                return Parsed::Ignore;
            }
            standard.insert(k, v);
        } else if let Some(slot) = rest.iter_mut().find(|(rk, _)| *rk == k) {
            slot.1 = v;
        } else {
            rest.push((k, v));
        }
    }
    let domain = standard
        .get("domain")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let path = standard.get("path").cloned().flatten().unwrap_or_default();
    let key = format!("{name}\u{0}{domain}\u{0}{path}");
    if let Some(Some(exp)) = standard.get("expires") {
        if exp
            .parse::<i128>()
            .map(|e| e <= i128::from(now))
            .unwrap_or(false)
        {
            return Parsed::Delete(key);
        }
    }
    let secure = matches!(standard.get("secure"), Some(Some(v)) if !v.is_empty());
    Parsed::Set(key, ClassicCookie { name, secure, rest })
}

pub(in crate::observatory) fn classic_cookies(c: &Ctx<'_>, hsts: bool) -> Raw {
    let cookies = jar(c
        .h
        .all("set-cookie")
        .into_iter()
        .map(|h| classic_parse_cookie(h, c.now)));
    if cookies.is_empty() {
        return ("cookies", "cookies-not-found", true);
    }
    let mut result: Option<&'static str> = None;
    let mut same_site_seen = false;
    let order = &COOKIE_GOODNESS[..];
    for cookie in cookies
        .iter()
        .filter(|k| !["__cfduid", "heroku-session-affinity"].contains(&k.name.as_str()))
    {
        let (mut httponly, mut samesite) = (false, false);
        for (k, v) in &cookie.rest {
            let kl = k.to_lowercase();
            if kl == "httponly" && !httponly {
                httponly = true;
            } else if kl == "samesite" && !samesite {
                let val = v.as_deref().map(|s| s.trim().to_lowercase());
                match val.as_deref() {
                    None | Some("lax") | Some("strict") => {
                        samesite = true;
                        same_site_seen = true;
                    }
                    Some(_) => {
                        result = only_if_worse("cookies-samesite-flag-invalid", result, order)
                    }
                }
            }
        }
        let session = is_session_name(&cookie.name);
        let anticsrf = cookie.name.to_lowercase().contains("csrf");
        if !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if !cookie.secure {
            result = only_if_worse("cookies-without-secure-flag", result, order);
        }
        if anticsrf && !samesite {
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
        if session && !httponly {
            result = only_if_worse("cookies-session-without-httponly-flag", result, order);
        }
    }
    let result = result.unwrap_or(if same_site_seen {
        "cookies-secure-with-httponly-sessions-and-samesite"
    } else {
        "cookies-secure-with-httponly-sessions"
    });
    let pass = matches!(
        result,
        "cookies-not-found"
            | "cookies-secure-with-httponly-sessions-and-samesite"
            | "cookies-secure-with-httponly-sessions"
    );
    ("cookies", result, pass)
}
