//! Python and JavaScript built-ins re-created where a result depends on their exact behaviour:
//! string slicing, `int()`, `Number.parseInt`, `decodeURIComponent` and `Intl.Collator` order.

pub(super) fn chars_slice(s: &str, start: usize, end: usize) -> String {
    s.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// Python `int(str)`: surrounding whitespace, optional sign, digits with single `_` separators.
pub(super) fn py_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        match c {
            '_' => {}
            '0'..='9' => {
                v = v
                    .saturating_mul(10)
                    .saturating_add(i128::from(c as u8 - b'0'))
            }
            _ => return None,
        }
    }
    Some(if neg { -v } else { v })
}

/// JavaScript `Number.parseInt(str, 10)`; `None` is NaN.
pub(super) fn js_parse_int(s: &str) -> Option<i128> {
    // JavaScript's whitespace: Unicode White_Space plus the byte order mark.
    let s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(i128::from(c - b'0'));
    }
    Some(if neg { -v } else { v })
}

/// Primary collation weight approximating `Intl.Collator("en")` (CLDR root, non-ignorable)
/// for the characters that occur in CSP sources.
fn collation_weight(c: char) -> u32 {
    const PUNCT: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
    let c = c.to_ascii_lowercase();
    if c.is_whitespace() {
        return c as u32;
    }
    if let Some(p) = PUNCT.find(c) {
        return 0x100 + p as u32;
    }
    if c.is_ascii_digit() {
        return 0x200 + (c as u32 - '0' as u32);
    }
    if c.is_ascii_lowercase() {
        return 0x300 + (c as u32 - 'a' as u32);
    }
    0x1000 + c as u32
}

/// The sort key of `s` under `Intl.Collator("en").compare`: its weights, compared in order
/// (computed once per string, as sorting compares each string many times).
pub(super) fn collation_key(s: &str) -> Vec<u32> {
    s.chars().map(collation_weight).collect()
}

/// JavaScript `decodeURIComponent`; `Err` where it would throw URIError.
pub(super) fn decode_uri_component(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone would take "+f" (a sign) where
            // JavaScript's decodeURIComponent throws.
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(());
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observatory::parse_cookie_date;

    #[test]
    fn helpers() {
        assert_eq!(parse_cookie_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_cookie_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_cookie_date("garbage"), None);
        assert_eq!(py_int(" 31_536_000 "), Some(31_536_000));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(js_parse_int("12abc"), Some(12));
        assert_eq!(js_parse_int("abc"), None);
        let collate = |a: &str, b: &str| collation_key(a).cmp(&collation_key(b));
        assert_eq!(collate("'self'", "'nonce-x'"), std::cmp::Ordering::Greater);
        assert_eq!(decode_uri_component("%41b"), Ok("Ab".to_string()));
        assert!(decode_uri_component("%zz").is_err());
        assert!(
            decode_uri_component("%+f").is_err(),
            "a sign is not a hex digit"
        );
        assert!(decode_uri_component("%4").is_err());
        assert_eq!(js_parse_int("\u{feff} 42"), Some(42));
    }
}
