//! [`Head`]: what the steps read from the request's headers, found in one pass over them
//! instead of a hash lookup per header a step might want (most requests carry a handful).

use http::{HeaderMap, HeaderValue};

/// The request headers the steps read: the proxy step's `Host`, the error page's `Accept` (and,
/// in Development, whether anything relayed the request), the body step's `Content-Length`, the
/// session's `User-Agent` and whether a `Cookie` came at all. The first value of each, as
/// `HeaderMap::get` gives it.
#[derive(Debug, Default)]
pub(super) struct Head {
    pub(super) host: Option<HeaderValue>,
    pub(super) accept: Option<HeaderValue>,
    pub(super) content_length: Option<HeaderValue>,
    pub(super) user_agent: Option<HeaderValue>,
    pub(super) cookie: bool,
    /// `Forwarded`, `Via`, `X-Forwarded-For` or `X-Real-IP`: a tunnel or proxy relayed it.
    pub(super) relayed: bool,
}

impl Head {
    pub(super) fn of(headers: &HeaderMap) -> Head {
        let mut head = Head::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "host" => &mut head.host,
                "accept" => &mut head.accept,
                "content-length" => &mut head.content_length,
                "user-agent" => &mut head.user_agent,
                "cookie" => {
                    head.cookie = true;
                    continue;
                }
                "forwarded" | "via" | "x-forwarded-for" | "x-real-ip" => {
                    head.relayed = true;
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values_as_get_gives_them() {
        let mut h = HeaderMap::new();
        h.append(
            "Host",
            "a.example".parse().unwrap_or_else(|_| unreachable!()),
        );
        h.append(
            "host",
            "b.example".parse().unwrap_or_else(|_| unreachable!()),
        );
        h.append("cookie", "x=1".parse().unwrap_or_else(|_| unreachable!()));
        h.append(
            "x-forwarded-for",
            "1.2.3.4".parse().unwrap_or_else(|_| unreachable!()),
        );
        let head = Head::of(&h);
        assert_eq!(head.host.as_ref(), h.get("host"));
        assert!(head.cookie && head.relayed);
        assert!(head.accept.is_none() && head.user_agent.is_none());
        let bare = Head::of(&HeaderMap::new());
        assert!(!bare.cookie && !bare.relayed && bare.host.is_none());
    }
}
