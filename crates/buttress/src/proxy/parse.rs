//! Parsers for `X-Forwarded-For` and RFC 7239 `Forwarded` (private to [`proxy`](super); the
//! fuzz target reaches them through `buttress::fuzzing`).
//!
//! Written by hand: the `forwarded-header-value` crate parses only `Forwarded` and stops at the
//! first bad element, and none of the crates we looked at keep the per-element `proto`/`host`
//! needed to pick the scheme of the hop that was chosen as the client.

use std::net::IpAddr;

/// One hop of a forwarding chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An IP address (any port dropped).
    Ip(IpAddr),
    /// `unknown`, an obfuscated identifier (`_hidden`) or something that is not an address.
    Opaque,
}

/// One element of a `Forwarded` header (or one `X-Forwarded-For` hop).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The `for=` node.
    pub for_node: Option<Node>,
    /// The `proto=` value, lower-cased.
    pub proto: Option<String>,
    /// The `host=` value.
    pub host: Option<String>,
}

/// `Forwarded` header syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Forwarded header at byte {position}: {expected}")]
pub struct ForwardedError {
    /// Byte offset of the problem in the joined header value.
    pub position: usize,
    /// What the parser expected there.
    pub expected: &'static str,
}

/// Parses one node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:443`, `2001:db8::1`, `unknown`).
pub fn parse_node(text: &str) -> Node {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Node::Ip(ip.to_canonical());
    }
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((inside, after)) = rest.split_once(']') {
            let port_ok = after.is_empty()
                || after
                    .strip_prefix(':')
                    .is_some_and(|p| p.parse::<u16>().is_ok() || p.starts_with('_'));
            if port_ok {
                if let Ok(ip) = inside.parse::<IpAddr>() {
                    return Node::Ip(ip.to_canonical());
                }
            }
        }
        return Node::Opaque;
    }
    if let Some((host, port)) = t.rsplit_once(':') {
        if port.parse::<u16>().is_ok() || port.starts_with('_') {
            if let Ok(std::net::IpAddr::V4(v4)) = host.parse::<IpAddr>() {
                return Node::Ip(IpAddr::V4(v4));
            }
        }
    }
    Node::Opaque
}

/// Parses the comma-separated hops of `X-Forwarded-For` (all header lines joined in order).
#[cfg(any(test, feature = "fuzzing"))]
pub fn parse_x_forwarded_for(lines: &[&str]) -> Vec<Node> {
    let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    parse_x_forwarded_for_bytes(&lines)
}

/// [`parse_x_forwarded_for`] on the raw bytes of the header lines, as they arrived.
///
/// The lines are split on `,` first and each hop is decoded alone, so a hop with bytes that are
/// not ASCII (a client's own, say) is one unreadable hop ([`Node::Opaque`]) and the hops a
/// proxy appended after it, on the same line, are still read.
pub fn parse_x_forwarded_for_bytes(lines: &[&[u8]]) -> Vec<Node> {
    list_items(lines.iter().copied())
        .map(|item| std::str::from_utf8(item).map_or(Node::Opaque, parse_node))
        .collect()
}

/// The addresses among the hops of one header `value` of the `header` family, read hop by hop
/// as the resolver reads them (a `Forwarded` value that does not parse has none): the resolved
/// client is the peer or one of them.
#[cfg(any(test, feature = "fuzzing"))]
pub fn hop_addresses(header: super::ProxyHeader, value: &[u8]) -> Vec<IpAddr> {
    let nodes: Vec<Node> = match header {
        super::ProxyHeader::XForwarded => parse_x_forwarded_for_bytes(&[value]),
        super::ProxyHeader::Forwarded => parse_forwarded_bytes(&[value])
            .map(|els| els.into_iter().filter_map(|el| el.for_node).collect())
            .unwrap_or_default(),
    };
    nodes
        .into_iter()
        .filter_map(|n| match n {
            Node::Ip(ip) => Some(ip),
            Node::Opaque => None,
        })
        .collect()
}

/// The non-empty, trimmed items of comma-separated header lines, in order (a `,` inside a
/// quoted string splits too: for lists whose items never quote one).
pub(crate) fn list_items<'a, I>(lines: I) -> impl DoubleEndedIterator<Item = &'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: DoubleEndedIterator,
{
    lines
        .into_iter()
        .flat_map(|line| line.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

/// Parses RFC 7239 `Forwarded` (all header lines joined in order) into its elements.
#[cfg(any(test, feature = "fuzzing"))]
pub fn parse_forwarded(lines: &[&str]) -> Result<Vec<Element>, ForwardedError> {
    let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    parse_forwarded_bytes(&lines)
}

/// [`parse_forwarded`] on the raw bytes of the header lines, as they arrived.
///
/// Bytes that are not ASCII are allowed inside a quoted string (RFC 9110 `obs-text`; the value
/// is then not an address, so that element's node is [`Node::Opaque`]) and are a syntax error
/// anywhere else. Either way they stay in their own element.
pub fn parse_forwarded_bytes(lines: &[&[u8]]) -> Result<Vec<Element>, ForwardedError> {
    let joined = lines.join(&b',');
    let mut p = Parser { s: &joined, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.peek() == Some(b',') {
            // Empty list elements are allowed by the list syntax.
            p.i += 1;
            continue;
        }
        if p.at_end() {
            break;
        }
        out.push(p.element()?);
        p.skip_ws();
        match p.peek() {
            None => break,
            Some(b',') => p.i += 1,
            Some(_) => return Err(p.err("',' between elements")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn err(&self, expected: &'static str) -> ForwardedError {
        ForwardedError {
            position: self.i,
            expected,
        }
    }

    fn element(&mut self) -> Result<Element, ForwardedError> {
        let mut el = Element::default();
        loop {
            self.skip_ws();
            let name = self.token().ok_or_else(|| self.err("a parameter name"))?;
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(self.err("'=' after the parameter name"));
            }
            self.i += 1;
            self.skip_ws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.token().ok_or_else(|| self.err("a value"))?
            };
            match name.to_ascii_lowercase().as_str() {
                "for" => el.for_node = Some(parse_node(&value)),
                "proto" => el.proto = Some(value.to_ascii_lowercase()),
                "host" => el.host = Some(value),
                _ => {}
            }
            self.skip_ws();
            if self.peek() == Some(b';') {
                self.i += 1;
                continue;
            }
            return Ok(el);
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:[]".contains(&c);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Result<String, ForwardedError> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("a closing '\"'")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) if c != b'\r' && c != b'\n' => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return Err(self.err("an escaped character")),
                    }
                }
                Some(c) if c == b'\t' || (0x20..0x7f).contains(&c) || c >= 0x80 => {
                    out.push(c);
                    self.i += 1;
                }
                Some(_) => return Err(self.err("a printable character in the quoted string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes() {
        let ip = |s: &str| Node::Ip(s.parse().expect("ip"));
        let cases = [
            ("192.0.2.1", ip("192.0.2.1")),
            (" 192.0.2.1:8080 ", ip("192.0.2.1")),
            ("[2001:db8::1]:443", ip("2001:db8::1")),
            ("[2001:db8::1]", ip("2001:db8::1")),
            ("2001:db8::1", ip("2001:db8::1")),
            ("::ffff:192.0.2.9", ip("192.0.2.9")),
            ("192.0.2.1:_port", ip("192.0.2.1")),
            ("unknown", Node::Opaque),
            ("_hidden", Node::Opaque),
            ("[2001:db8::1]:x", Node::Opaque),
            ("300.1.1.1", Node::Opaque),
            ("", Node::Opaque),
        ];
        for (text, want) in cases {
            assert_eq!(parse_node(text), want, "{text:?}");
        }
    }

    #[test]
    fn forwarded_rfc_examples() {
        let els = parse_forwarded(&[
            r#"for="_gazonk""#,
            r#"For="[2001:db8:cafe::17]:4711""#,
            r#"for=192.0.2.60;proto=http;by=203.0.113.43"#,
            r#"for=192.0.2.43, for=198.51.100.17"#,
        ])
        .expect("RFC 7239 examples parse");
        assert_eq!(els.len(), 5);
        assert_eq!(els[0].for_node, Some(Node::Opaque));
        assert_eq!(els[2].proto.as_deref(), Some("http"));
        assert_eq!(
            els[4].for_node,
            Some(Node::Ip("198.51.100.17".parse().expect("ip")))
        );
    }

    #[test]
    fn forwarded_errors_have_positions() {
        for bad in [
            "for",
            "for=",
            "for=\"x",
            "for=1.2.3.4 junk",
            "=x",
            "for=\"a\\",
            "for=a;;",
        ] {
            assert!(parse_forwarded(&[bad]).is_err(), "{bad:?} should not parse");
        }
        let e = parse_forwarded(&["for=1.2.3.4;proto"]).expect_err("bad");
        assert_eq!(e.position, 17);
    }

    #[test]
    fn x_forwarded_for_hops_in_order() {
        let hops = parse_x_forwarded_for(&["203.0.113.7, 10.0.0.1"]);
        assert_eq!(
            hops,
            [
                Node::Ip("203.0.113.7".parse().expect("ip")),
                Node::Ip("10.0.0.1".parse().expect("ip"))
            ]
        );
    }

    #[test]
    fn bytes_that_are_not_ascii_stay_in_their_own_hop() {
        let hops = parse_x_forwarded_for_bytes(&[b"\xff, 203.0.113.7"]);
        assert_eq!(
            hops,
            [Node::Opaque, Node::Ip("203.0.113.7".parse().expect("ip"))]
        );
        let els = parse_forwarded_bytes(&[b"for=\"\xff\", for=203.0.113.7;proto=https"])
            .expect("obs-text in a quoted string");
        assert_eq!(els[0].for_node, Some(Node::Opaque));
        assert_eq!(
            els[1].for_node,
            Some(Node::Ip("203.0.113.7".parse().expect("ip")))
        );
        assert!(parse_forwarded_bytes(&[b"for=\xff"]).is_err());
    }

    #[test]
    fn forwarded_keeps_proto_and_host_per_element() {
        let els = parse_forwarded(&[
            r#"for=192.0.2.60;proto=HTTPS;host=example.org, for="[2001:db8::1]:80""#,
        ])
        .expect("parses");
        assert_eq!(els.len(), 2);
        assert_eq!(els[0].proto.as_deref(), Some("https"));
        assert_eq!(els[0].host.as_deref(), Some("example.org"));
        assert_eq!(
            els[1].for_node,
            Some(Node::Ip("2001:db8::1".parse().expect("ip")))
        );
        assert!(parse_forwarded(&["for=\"unterminated"]).is_err());
    }
}
