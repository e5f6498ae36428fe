use super::*;
use proptest::prelude::*;

/// Parsed `allowed_hosts` entries.
fn hosts(entries: &[&str]) -> Vec<HostPattern> {
    entries.iter().map(|h| h.parse().expect("a host")).collect()
}

fn cfg() -> ProxyConfig {
    ProxyConfig::default()
        .trust("10.0.0.0/8".parse().expect("cidr"))
        .trust("::1/128".parse().expect("cidr"))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, "example.org".parse().expect("host"));
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    h
}

struct Case {
    name: &'static str,
    peer: &'static str,
    config: ProxyConfig,
    headers: &'static [(&'static str, &'static str)],
    client: &'static str,
    scheme: Scheme,
    host: &'static str,
}

#[test]
fn resolution_table() {
    let allowing = || cfg().allowed_hosts(hosts(&["example.org", "www.example.org"]));
    let fwd = cfg()
        .header(ProxyHeader::Forwarded)
        .allowed_hosts(hosts(&["example.org", "a.example"]));
    let cases = [
        Case {
            name: "untrusted peer, spoofed XFF ignored",
            peer: "203.0.113.9:5000",
            config: cfg(),
            headers: &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test"),
            ],
            client: "203.0.113.9",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "trusted peer, one hop",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "https"),
            ],
            client: "198.51.100.7",
            scheme: Scheme::Https,
            host: "example.org",
        },
        Case {
            name: "client-prepended hops are skipped",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[(
                "x-forwarded-for",
                "1.1.1.1, 2.2.2.2, 198.51.100.7, 10.0.0.9",
            )],
            client: "198.51.100.7",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "several header lines join in order",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "198.51.100.7"),
            ],
            client: "198.51.100.7",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "garbage hop stops the walk at the last trusted proxy",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[("x-forwarded-for", "1.1.1.1, nonsense, 10.0.0.3")],
            client: "10.0.0.3",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "all hops trusted: leftmost",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[("x-forwarded-for", "10.0.0.5, 10.0.0.3")],
            client: "10.0.0.5",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "trusted peer without XFF is the client",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[],
            client: "10.0.0.2",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "rightmost proto and host",
            peer: "10.0.0.2:5000",
            config: allowing(),
            headers: &[
                ("x-forwarded-proto", "http, https"),
                ("x-forwarded-host", "evil.test, www.example.org"),
            ],
            client: "10.0.0.2",
            scheme: Scheme::Https,
            host: "www.example.org",
        },
        Case {
            name: "forwarded host not believed without allowed_hosts: the client may have sent it",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[("x-forwarded-host", "evil.test")],
            client: "10.0.0.2",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "Forwarded host= not believed without allowed_hosts either",
            peer: "10.0.0.2:5000",
            config: cfg().header(ProxyHeader::Forwarded),
            headers: &[("forwarded", "for=198.51.100.7;proto=https;host=evil.test")],
            client: "198.51.100.7",
            scheme: Scheme::Https,
            host: "example.org",
        },
        Case {
            name: "Forwarded ignored when x-forwarded is the family",
            peer: "10.0.0.2:5000",
            config: cfg(),
            headers: &[("forwarded", "for=1.2.3.4;proto=https")],
            client: "10.0.0.2",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "XFF ignored when forwarded is the family",
            peer: "10.0.0.2:5000",
            config: fwd.clone(),
            headers: &[
                ("x-forwarded-for", "1.2.3.4"),
                ("forwarded", "for=198.51.100.7;proto=https;host=a.example"),
            ],
            client: "198.51.100.7",
            scheme: Scheme::Https,
            host: "a.example",
        },
        Case {
            name: "Forwarded: proto of the chosen element",
            peer: "10.0.0.2:5000",
            config: fwd.clone(),
            headers: &[(
                "forwarded",
                "for=1.1.1.1;proto=http, for=198.51.100.7;proto=https, for=10.0.0.4;proto=http",
            )],
            client: "198.51.100.7",
            scheme: Scheme::Https,
            host: "example.org",
        },
        Case {
            name: "Forwarded: hidden client, proto of the element the walk stopped at",
            peer: "10.0.0.2:5000",
            config: fwd.clone(),
            headers: &[("forwarded", "for=_hidden;proto=https;host=a.example")],
            client: "10.0.0.2",
            scheme: Scheme::Https,
            host: "a.example",
        },
        Case {
            name: "Forwarded: no for= at all, proto still read",
            peer: "10.0.0.2:5000",
            config: fwd.clone(),
            headers: &[("forwarded", "proto=https;host=a.example")],
            client: "10.0.0.2",
            scheme: Scheme::Https,
            host: "a.example",
        },
        Case {
            name: "Forwarded: unknown behind a trusted hop, that proxy's element",
            peer: "10.0.0.2:5000",
            config: fwd.clone(),
            headers: &[(
                "forwarded",
                "for=1.1.1.1;proto=http, for=unknown;proto=https, for=10.0.0.4;proto=http",
            )],
            client: "10.0.0.4",
            scheme: Scheme::Https,
            host: "example.org",
        },
        Case {
            name: "IPv6 peer and bracketed Forwarded",
            peer: "[::1]:5000",
            config: fwd,
            headers: &[("forwarded", "for=\"[2001:db8::7]:1234\"")],
            client: "2001:db8::7",
            scheme: Scheme::Http,
            host: "example.org",
        },
        Case {
            name: "v4-mapped peer is canonical",
            peer: "[::ffff:10.0.0.2]:5000",
            config: cfg(),
            headers: &[("x-forwarded-for", "198.51.100.7")],
            client: "198.51.100.7",
            scheme: Scheme::Http,
            host: "example.org",
        },
    ];
    for c in cases {
        let r = c
            .config
            .resolve(
                c.peer.parse().expect("peer"),
                false,
                &headers(c.headers),
                None,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(r.client.0.to_string(), c.client, "{}", c.name);
        assert_eq!(r.origin.scheme, c.scheme, "{}", c.name);
        assert_eq!(r.origin.host, c.host, "{}", c.name);
    }
}

#[test]
fn rejections() {
    let peer: SocketAddr = "10.0.0.2:1".parse().expect("peer");
    let fwd = cfg().header(ProxyHeader::Forwarded);
    assert_eq!(
        fwd.resolve(
            peer,
            false,
            &headers(&[("forwarded", "for=\"broken")]),
            None
        ),
        Err(ProxyRejection::MalformedForwarded)
    );
    assert_eq!(
        cfg().resolve(
            peer,
            false,
            &headers(&[("x-forwarded-proto", "gopher")]),
            None
        ),
        Err(ProxyRejection::BadForwardedProto)
    );
    let mut h = HeaderMap::new();
    assert_eq!(
        cfg().resolve(peer, false, &h, None),
        Err(ProxyRejection::MissingHost)
    );
    // An empty host part would build `https:///path`: a browser takes the path's first
    // segment for the host (an open redirect).
    for bad in [
        "exa mple.org",
        ":80",
        ":",
        "[",
        "]",
        "a]b",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[nope]:80",
        "example.org:",
        "example.org:abc",
        "example.org:+80",
        "example.org:99999",
        "example.org:80:80",
        "example.org:8080]",
    ] {
        h.insert(header::HOST, bad.parse().expect("v"));
        assert_eq!(
            cfg().resolve(peer, false, &h, None),
            Err(ProxyRejection::BadHost),
            "{bad:?}"
        );
    }
    for good in [
        "example.org",
        "localhost:8000",
        "127.0.0.1:80",
        "[::1]",
        "[2001:db8::1]:443",
        "my_host.internal.",
    ] {
        h.insert(header::HOST, good.parse().expect("v"));
        let r = cfg().resolve(peer, false, &h, None).expect(good);
        assert!(!r.origin.hostname().is_empty(), "{good:?}");
    }
    // A forwarded host outside allowed_hosts is refused like such a Host.
    let allowing = cfg().allowed_hosts(hosts(&["example.org"]));
    for (family, name, value) in [
        (ProxyHeader::XForwarded, "x-forwarded-host", "evil.test"),
        (
            ProxyHeader::Forwarded,
            "forwarded",
            "for=1.2.3.4;host=evil.test",
        ),
    ] {
        assert_eq!(
            allowing
                .clone()
                .header(family)
                .resolve(peer, false, &headers(&[(name, value)]), None),
            Err(ProxyRejection::HostNotAllowed),
            "{name}"
        );
    }
    let allow = ProxyConfig::default().allowed_hosts(hosts(&["example.org", "*.example.net"]));
    let untrusted: SocketAddr = "203.0.113.1:1".parse().expect("peer");
    let host = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, v.parse().expect("v"));
        h
    };
    assert!(allow
        .resolve(untrusted, false, &host("example.org:8080"), None)
        .is_ok());
    assert!(allow
        .resolve(untrusted, false, &host("www.example.net"), None)
        .is_ok());
    for bad in [
        "evil.test",
        "example.net",
        "xexample.net",
        "example.org.evil.test",
    ] {
        assert_eq!(
            allow.resolve(untrusted, false, &host(bad), None),
            Err(ProxyRejection::HostNotAllowed),
            "{bad}"
        );
    }
}

/// Peers and hops are compared in their canonical form (an IPv4-mapped IPv6 address is its
/// IPv4 address), so a range written in the mapped form must be too, or it never matches.
#[test]
fn ipv4_mapped_ranges_match_ipv4_peers_and_hops() {
    let mapped = ProxyConfig::default().trust("::ffff:10.0.0.0/104".parse().expect("cidr"));
    for ip in ["10.1.2.3", "::ffff:10.1.2.3"] {
        assert!(mapped.is_trusted(ip.parse().expect("ip")), "{ip}");
    }
    assert!(!mapped.is_trusted("11.0.0.1".parse().expect("ip")));
    let mut h = headers(&[]);
    h.insert(
        "x-forwarded-for",
        "198.51.100.7, 10.0.0.3".parse().expect("v"),
    );
    let r = mapped
        .resolve(
            "[::ffff:10.0.0.2]:1".parse().expect("peer"),
            false,
            &h,
            None,
        )
        .expect("resolves");
    assert_eq!(r.client.0.to_string(), "198.51.100.7");
    // A mapped single address, and ranges that are not in the mapped space, are left alone.
    let one = ProxyConfig::default().trust_all([
        "::ffff:192.0.2.1/128".parse().expect("cidr"),
        "2001:db8::/32".parse().expect("cidr"),
    ]);
    assert!(one.is_trusted("192.0.2.1".parse().expect("ip")));
    assert!(!one.is_trusted("192.0.2.2".parse().expect("ip")));
    assert!(one.is_trusted("2001:db8::5".parse().expect("ip")));
}

/// An allowed host with a port allows that port only (the scheme's default port when the
/// request names none); one without a port allows any port.
#[test]
fn allowed_hosts_with_ports() {
    let allow = ProxyConfig::default()
        .trust("10.0.0.0/8".parse().expect("cidr"))
        .allowed_hosts(hosts(&[
            "example.org:8443",
            "*.example.net:443",
            "Other.Example",
        ]));
    let peer: SocketAddr = "10.0.0.2:1".parse().expect("peer");
    let try_host = |host: &str, proto: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().expect("v"));
        h.insert("x-forwarded-proto", proto.parse().expect("v"));
        allow.resolve(peer, false, &h, None)
    };
    for (host, proto) in [
        ("example.org:8443", "http"),
        ("EXAMPLE.org:8443", "https"),
        ("www.example.net", "https"),
        ("www.example.net:443", "http"),
        ("other.example", "http"),
        ("other.example:9999", "https"),
    ] {
        assert!(try_host(host, proto).is_ok(), "{host} over {proto}");
    }
    for (host, proto) in [
        ("example.org", "https"),
        ("example.org:8080", "http"),
        ("www.example.net", "http"),
        ("www.example.net:8443", "https"),
        ("example.net:443", "https"),
    ] {
        assert_eq!(
            try_host(host, proto),
            Err(ProxyRejection::HostNotAllowed),
            "{host} over {proto}"
        );
    }
}

#[test]
fn tls_connection_is_https() {
    let r = cfg()
        .resolve(
            "203.0.113.9:1".parse().expect("peer"),
            true,
            &headers(&[]),
            None,
        )
        .expect("resolves");
    assert!(r.origin.is_https());
}

/// The bytes a header value can hold (visible ASCII, space, tab and obs-text >= 0x80).
fn header_bytes(bytes: Vec<u8>) -> Vec<u8> {
    bytes
        .into_iter()
        .filter(|b| (*b >= 0x20 && *b != 0x7f) || *b == b'\t')
        .collect()
}

#[test]
fn non_ascii_hop_is_one_unreadable_hop() {
    // nginx appends the real client to the client's own line.
    let mut h = headers(&[]);
    h.insert(
        "x-forwarded-for",
        http::HeaderValue::from_bytes(b"\xff, 203.0.113.5").expect("value"),
    );
    h.insert(
        "x-forwarded-proto",
        http::HeaderValue::from_bytes(b"\xff, https").expect("value"),
    );
    let r = cfg()
        .resolve("10.0.0.2:1".parse().expect("peer"), false, &h, None)
        .expect("resolves");
    assert_eq!(r.client.0.to_string(), "203.0.113.5");
    assert_eq!(r.origin.scheme, Scheme::Https);
    // Garbage right of the real client still stops the walk at the last trusted proxy.
    h.insert(
        "x-forwarded-for",
        http::HeaderValue::from_bytes(b"203.0.113.5, \xff, 10.0.0.3").expect("value"),
    );
    let r = cfg()
        .resolve("10.0.0.2:1".parse().expect("peer"), false, &h, None)
        .expect("resolves");
    assert_eq!(r.client.0.to_string(), "10.0.0.3");
    // Forwarded: a non-ASCII quoted value is one opaque element, the proxy's is still read.
    let mut h = headers(&[]);
    h.insert(
        "forwarded",
        http::HeaderValue::from_bytes(b"for=\"\xff\", for=203.0.113.5;proto=https").expect("value"),
    );
    let r = cfg()
        .header(ProxyHeader::Forwarded)
        .resolve("10.0.0.2:1".parse().expect("peer"), false, &h, None)
        .expect("resolves");
    assert_eq!(r.client.0.to_string(), "203.0.113.5");
    assert_eq!(r.origin.scheme, Scheme::Https);
}

proptest! {
    /// Whatever an untrusted peer sends, it is the client and its scheme is the connection's.
    #[test]
    fn untrusted_peer_cannot_spoof(xff in "\\PC{0,80}", proto in "[a-zA-Z, ]{0,12}", fwd in "\\PC{0,80}") {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "example.org".parse().expect("host"));
        for (name, v) in [("x-forwarded-for", &xff), ("x-forwarded-proto", &proto), ("forwarded", &fwd)] {
            if let Ok(v) = http::HeaderValue::from_str(v) { h.insert(name, v); }
        }
        for config in [cfg(), cfg().header(ProxyHeader::Forwarded)] {
            let r = config.resolve("203.0.113.9:1".parse().expect("peer"), false, &h, None).expect("untrusted never fails");
            prop_assert_eq!(r.client.0.to_string(), "203.0.113.9");
            prop_assert_eq!(r.origin.scheme, Scheme::Http);
        }
    }

    /// Behind a trusted proxy, the client is the rightmost untrusted hop, whatever the client
    /// prepended.
    #[test]
    fn rightmost_untrusted_hop_wins(prefix in proptest::collection::vec(any::<[u8; 4]>(), 0..6), real in any::<[u8; 4]>(), proxies in 0usize..3) {
        prop_assume!(real[0] != 10);
        let mut hops: Vec<String> = prefix.iter().map(|b| std::net::Ipv4Addr::from(*b).to_string()).collect();
        let real_ip = std::net::Ipv4Addr::from(real);
        hops.push(real_ip.to_string());
        for i in 0..proxies { hops.push(format!("10.0.0.{}", i + 1)); }
        let h = headers(&[]);
        let mut h = h;
        h.insert("x-forwarded-for", hops.join(", ").parse().expect("value"));
        let r = cfg().resolve("10.9.9.9:1".parse().expect("peer"), false, &h, None).expect("resolves");
        prop_assert_eq!(r.client.0, std::net::IpAddr::V4(real_ip));
    }

    /// Behind trusted proxies, whatever bytes a client put in its own forwarding headers
    /// (non-ASCII included), the hop the first proxy appended is the client, and the proto the
    /// proxy appended is the scheme: on the client's own line (nginx's
    /// `$proxy_add_x_forwarded_for`) or on a line of its own.
    #[test]
    fn client_bytes_cannot_hide_the_appended_hop(junk in proptest::collection::vec(any::<u8>(), 0..40), real in any::<[u8; 4]>(), proxies in 0usize..3, same_line in any::<bool>()) {
        prop_assume!(real[0] != 10);
        let junk = header_bytes(junk);
        let real_ip = std::net::Ipv4Addr::from(real);
        let mut appended = real_ip.to_string();
        for i in 0..proxies { appended.push_str(&format!(", 10.0.0.{}", i + 1)); }
        let mut h = headers(&[]);
        for (name, tail) in [("x-forwarded-for", appended.as_str()), ("x-forwarded-proto", "https")] {
            if same_line {
                let mut line = junk.clone();
                line.extend_from_slice(b", ");
                line.extend_from_slice(tail.as_bytes());
                h.append(name, http::HeaderValue::from_bytes(&line).expect("value"));
            } else {
                h.append(name, http::HeaderValue::from_bytes(&junk).expect("value"));
                h.append(name, http::HeaderValue::from_str(tail).expect("value"));
            }
        }
        let r = cfg().resolve("10.9.9.9:1".parse().expect("peer"), false, &h, None).expect("resolves");
        prop_assert_eq!(r.client.0, std::net::IpAddr::V4(real_ip));
        prop_assert_eq!(r.origin.scheme, Scheme::Https);
    }

    /// The same with `Forwarded`: a client's quoted value with any bytes in it does not hide
    /// the element the proxy appended.
    #[test]
    fn client_quoted_bytes_cannot_hide_the_appended_element(junk in proptest::collection::vec(any::<u8>(), 0..40), real in any::<[u8; 4]>(), same_line in any::<bool>()) {
        prop_assume!(real[0] != 10);
        let junk: Vec<u8> = header_bytes(junk).into_iter().filter(|b| !matches!(b, b'"' | b'\\')).collect();
        let mut client = b"for=\"".to_vec();
        client.extend_from_slice(&junk);
        client.push(b'"');
        let real_ip = std::net::Ipv4Addr::from(real);
        let appended = format!("for={real_ip};proto=https");
        let mut h = headers(&[]);
        if same_line {
            client.extend_from_slice(b", ");
            client.extend_from_slice(appended.as_bytes());
            h.append("forwarded", http::HeaderValue::from_bytes(&client).expect("value"));
        } else {
            h.append("forwarded", http::HeaderValue::from_bytes(&client).expect("value"));
            h.append("forwarded", http::HeaderValue::from_str(&appended).expect("value"));
        }
        let r = cfg().header(ProxyHeader::Forwarded).resolve("10.9.9.9:1".parse().expect("peer"), false, &h, None).expect("resolves");
        prop_assert_eq!(r.client.0, std::net::IpAddr::V4(real_ip));
        prop_assert_eq!(r.origin.scheme, Scheme::Https);
    }

    #[test]
    fn forwarded_parser_never_panics(text in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse::parse_forwarded(&[&text]);
        let _ = parse::parse_x_forwarded_for(&[&text]);
        let _ = parse::parse_forwarded_bytes(&[&bytes, text.as_bytes()]);
        let _ = parse::parse_x_forwarded_for_bytes(&[&bytes, text.as_bytes()]);
    }
}

/// One hop as a proxy or a client might write it: a trusted or untrusted address, with or
/// without a port, or something that is not an address.
fn any_hop() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u8>().prop_map(|b| format!("10.0.0.{b}")),
        any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(b, p)| format!("{}:{p}", std::net::Ipv4Addr::from(b))),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        Just("unknown".to_owned()),
        "[ -~]{0,12}",
    ]
}

proptest! {
    /// Behind a trusted proxy, whatever the chain holds, the resolved client is the peer or the
    /// address of one hop of it: resolution never makes up an address.
    #[test]
    fn client_is_the_peer_or_a_parsed_hop(hops in proptest::collection::vec(any_hop(), 0..6), quoted in any::<bool>()) {
        let peer: std::net::IpAddr = "10.0.0.1".parse().expect("peer");
        for family in [ProxyHeader::XForwarded, ProxyHeader::Forwarded] {
            let text = match family {
                ProxyHeader::XForwarded => hops.join(", "),
                ProxyHeader::Forwarded if quoted => hops.iter().map(|h| format!("for=\"{h}\"")).collect::<Vec<_>>().join(", "),
                ProxyHeader::Forwarded => hops.iter().map(|h| format!("for={h}")).collect::<Vec<_>>().join(", "),
            };
            let Ok(value) = http::HeaderValue::from_str(&text) else { continue };
            let name = match family {
                ProxyHeader::XForwarded => "x-forwarded-for",
                ProxyHeader::Forwarded => "forwarded",
            };
            let mut h = headers(&[]);
            h.insert(name, value.clone());
            if let Ok(r) = cfg().header(family).resolve((peer, 80).into(), false, &h, None) {
                let parsed = parse::hop_addresses(family, value.as_bytes());
                prop_assert!(
                    r.client.0 == peer || parsed.contains(&r.client.0),
                    "{:?} {:?}: client {} is neither the peer nor a hop of {:?}", family, text, r.client.0, parsed
                );
            }
        }
    }
}
