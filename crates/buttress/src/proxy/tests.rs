use super::*;
use proptest::prelude::*;

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
    let fwd = cfg().header(ProxyHeader::Forwarded);
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
            config: cfg(),
            headers: &[
                ("x-forwarded-proto", "http, https"),
                ("x-forwarded-host", "evil.test, www.example.org"),
            ],
            client: "10.0.0.2",
            scheme: Scheme::Https,
            host: "www.example.org",
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
    h.insert(header::HOST, "exa mple.org".parse().expect("v"));
    assert_eq!(
        cfg().resolve(peer, false, &h, None),
        Err(ProxyRejection::BadHost)
    );
    let allow = ProxyConfig::default()
        .allowed_hosts(["example.org".to_owned(), "*.example.net".to_owned()]);
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

    #[test]
    fn forwarded_parser_never_panics(text in "\\PC{0,200}") {
        let _ = parse::parse_forwarded(&[&text]);
        let _ = parse::parse_x_forwarded_for(&[&text]);
    }
}
