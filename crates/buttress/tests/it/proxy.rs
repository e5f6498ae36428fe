//! Client address through the stack: spoofing from untrusted peers changes nothing.

use crate::support::*;

#[tokio::test]
async fn spoofed_forwarding_headers_from_untrusted_peer_change_nothing() {
    let app = app(&settings(&[("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8")]));
    let r = send(
        &app,
        "127.0.0.1:4000",
        get_req(
            "/whoami",
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test"),
                ("forwarded", "for=5.6.7.8;proto=https;host=evil.test"),
            ],
        ),
    )
    .await;
    assert_eq!(r.body, "127.0.0.1 http://example.org");
}

#[tokio::test]
async fn trusted_proxy_chain_yields_rightmost_untrusted_hop() {
    let app = app(&settings(&[
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ("BUTTRESS_ALLOWED_HOSTS", "example.org, www.example.org"),
    ]));
    let r = send(
        &app,
        "127.0.0.1:4000",
        get_req(
            "/whoami",
            &[
                ("x-forwarded-for", "1.2.3.4, 198.51.100.20, 10.1.2.3"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "www.example.org"),
            ],
        ),
    )
    .await;
    assert_eq!(r.body, "198.51.100.20 https://www.example.org");
}

#[tokio::test]
async fn forwarded_family_when_configured() {
    let app = app(&settings(&[
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1"),
        ("BUTTRESS_PROXY_HEADER", "forwarded"),
    ]));
    let r = send(
        &app,
        "127.0.0.1:4000",
        get_req(
            "/whoami",
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("forwarded", "for=\"[2001:db8::5]:443\";proto=https"),
            ],
        ),
    )
    .await;
    assert_eq!(r.body, "2001:db8::5 https://example.org");
    let bad = send(
        &app,
        "127.0.0.1:4000",
        get_req(
            "/whoami",
            &[("forwarded", "for=\"oops"), ("accept", "application/json")],
        ),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("Forwarded header is malformed"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn missing_connect_info_fails_closed() {
    use tower::ServiceExt as _;
    let app = app(&settings(&[]));
    let res = app
        .oneshot(get_req("/whoami", &[]))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 500);
}

/// nginx does not set `X-Forwarded-Host` by default, and passes the client's own through: with
/// no allowed hosts, a client's `X-Forwarded-Host` (or `Forwarded: host=`) must not become the
/// origin, or the redirect target (`301 Location: https://evil.test/…`, cacheable).
#[tokio::test]
async fn a_clients_forwarded_host_through_a_trusted_proxy_is_not_believed_without_allowed_hosts() {
    for family in ["x-forwarded", "forwarded"] {
        let app = app(&settings(&[
            ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1"),
            ("BUTTRESS_PROXY_HEADER", family),
            ("BUTTRESS_HTTPS_REDIRECT", "true"),
        ]));
        let headers: &[(&str, &str)] = if family == "forwarded" {
            &[("forwarded", "for=198.51.100.20;host=evil.test")]
        } else {
            &[
                ("x-forwarded-host", "evil.test"),
                ("x-forwarded-for", "198.51.100.20"),
            ]
        };
        let r = send(&app, "127.0.0.1:4000", get_req("/login", headers)).await;
        assert_eq!(r.status, 301, "{family}");
        assert_eq!(
            r.header("location"),
            Some("https://example.org/login"),
            "{family}"
        );
        assert_eq!(r.header("cache-control"), Some("private"), "{family}");
    }
}

/// Settings written in other spellings still mean what they say: a trusted range in the
/// IPv4-mapped IPv6 form, and an allowed host with a port.
#[tokio::test]
async fn mapped_trusted_ranges_and_allowed_hosts_with_ports_match() {
    let app = app(&settings(&[
        ("BUTTRESS_TRUSTED_PROXIES", "::ffff:127.0.0.0/104"),
        ("BUTTRESS_ALLOWED_HOSTS", "example.org:8443"),
    ]));
    let mut req = get_req("/whoami", &[("x-forwarded-for", "198.51.100.20")]);
    req.headers_mut()
        .insert("host", "example.org:8443".parse().expect("v"));
    let r = send(&app, "127.0.0.1:4000", req).await;
    assert_eq!(r.body, "198.51.100.20 http://example.org:8443");
    let mut other_port = get_req("/whoami", &[]);
    other_port
        .headers_mut()
        .insert("host", "example.org:8080".parse().expect("v"));
    assert_eq!(send(&app, "127.0.0.1:4000", other_port).await.status, 400);
}
