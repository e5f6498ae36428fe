//! Cookies: the cookie jar and result order both analyzers share, and cookie-date parsing;
//! each rule set's `Set-Cookie` parser and test are in a submodule.

mod classic;
mod mdn;

pub(super) use classic::classic_cookies;
pub(super) use mdn::mdn_cookies;

enum Parsed<C> {
    Ignore,
    Delete(String),
    Set(String, C),
}

fn jar<C>(items: impl Iterator<Item = Parsed<C>>) -> Vec<C> {
    let mut jar: Vec<(String, C)> = Vec::new();
    for p in items {
        match p {
            Parsed::Ignore => {}
            Parsed::Delete(k) => jar.retain(|(jk, _)| *jk != k),
            Parsed::Set(k, c) => {
                jar.retain(|(jk, _)| *jk != k);
                jar.push((k, c));
            }
        }
    }
    jar.into_iter().map(|(_, c)| c).collect()
}

const COOKIE_GOODNESS: [&str; 7] = [
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
];

fn is_session_name(name: &str) -> bool {
    let l = name.to_lowercase();
    l.contains("login") || l.contains("sess")
}

// ---------------------------------------------------------------------------------------------
// RFC 6265 section 5.1.1 cookie-date parsing (as in tough-cookie), in seconds since the epoch

/// Seconds since the epoch of a cookie date (RFC 6265 §5.1.1 algorithm), if it parses.
pub(crate) fn parse_cookie_date(s: &str) -> Option<i64> {
    fn digits(tok: &str, min: usize, max: usize, trailing_ok: bool) -> Option<i64> {
        let count = tok.bytes().take_while(|b| b.is_ascii_digit()).count();
        if count < min || count > max || (!trailing_ok && count != tok.len()) {
            return None;
        }
        tok[..count].parse().ok()
    }
    let is_delim = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(is_delim).map(str::trim).filter(|t| !t.is_empty()) {
        if time.is_none() {
            let parts: Vec<&str> = tok.split(':').collect();
            if parts.len() == 3 {
                let h = digits(parts[0], 1, 2, false);
                let m = digits(parts[1], 1, 2, false);
                let sec = digits(parts[2], 1, 2, true);
                if let (Some(h), Some(m), Some(sec)) = (h, m, sec) {
                    time = Some((h, m, sec));
                    continue;
                }
            }
        }
        if day.is_none() {
            if let Some(d) = digits(tok, 1, 2, true) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            const MONTHS: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            let t: String = tok.chars().take(3).collect::<String>().to_lowercase();
            if let Some(m) = MONTHS.iter().position(|m| *m == t) {
                month = Some(m as i64 + 1);
                continue;
            }
        }
        if year.is_none() {
            if let Some(mut y) = digits(tok, 2, 4, true) {
                if (70..=99).contains(&y) {
                    y += 1900;
                } else if (0..=69).contains(&y) {
                    y += 2000;
                }
                year = Some(y);
            }
        }
    }
    let ((h, mi, sec), d, m, y) = (time?, day?, month?, year?);
    if !(1..=31).contains(&d) || y < 1601 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use crate::observatory::tests::{hardened, hdrs, result_of, run, BOTH};
    use crate::observatory::Ruleset;

    #[test]
    fn cookies() {
        let cases: [(&[&str], &str, &str); 9] = [
            // (Set-Cookie values, classic result, v2 result)
            (
                &["sessionid=a; Secure; HttpOnly; SameSite=Lax"],
                "cookies-secure-with-httponly-sessions-and-samesite",
                "cookies-secure-with-httponly-sessions-and-samesite",
            ),
            (
                &["sessionid=a; Secure; HttpOnly"],
                "cookies-secure-with-httponly-sessions",
                "cookies-secure-with-httponly-sessions",
            ),
            (
                &["sessionid=a; Secure; SameSite=Strict"],
                "cookies-session-without-httponly-flag",
                "cookies-session-without-httponly-flag",
            ),
            (
                &["sessionid=a; HttpOnly; SameSite=Lax"],
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                "cookies-session-without-secure-flag-but-protected-by-hsts",
            ),
            (
                &["theme=dark; SameSite=Lax"],
                "cookies-without-secure-flag-but-protected-by-hsts",
                "cookies-without-secure-flag-but-protected-by-hsts",
            ),
            (
                &["csrftoken=x; Secure"],
                "cookies-anticsrf-without-samesite-flag",
                "cookies-anticsrf-without-samesite-flag",
            ),
            // classic accepts only Lax/Strict; v2 accepts None when Secure
            (
                &["a=b; Secure; SameSite=None"],
                "cookies-samesite-flag-invalid",
                "cookies-secure-with-httponly-sessions-and-samesite",
            ),
            // classic: a valueless SameSite means Lax; v2 flags it on the raw header
            (
                &["a=b; Secure; SameSite"],
                "cookies-secure-with-httponly-sessions-and-samesite",
                "cookies-samesite-flag-invalid",
            ),
            // deletion cookies do not count
            (
                &["sessionid=; Max-Age=0"],
                "cookies-not-found",
                "cookies-not-found",
            ),
        ];
        for (cookies, classic, v2) in cases {
            let mut h = hardened();
            for c in cookies {
                h.push(("Set-Cookie".to_string(), c.to_string()));
            }
            for (rules, expected) in [(Ruleset::Classic, classic), (Ruleset::MdnV2, v2)] {
                let s = run(rules, &h, true, Some(true));
                assert_eq!(
                    result_of(&s, "cookies").result,
                    expected,
                    "{rules:?} {cookies:?}\n{s}"
                );
            }
        }
        // without HSTS (plain http) a session cookie lacking Secure costs 40
        let h = hdrs(&[("set-cookie", "PHPSESSID=1; HttpOnly")]);
        for rules in BOTH {
            let s = run(rules, &h, false, None);
            let t = result_of(&s, "cookies");
            assert_eq!(
                (t.result.as_str(), t.modifier),
                ("cookies-session-without-secure-flag", -40),
                "{rules:?}"
            );
        }
    }
}
