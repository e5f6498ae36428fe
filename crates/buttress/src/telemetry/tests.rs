use super::*;

#[test]
fn every_csrf_reason_has_its_counter() {
    use crate::csrf::CsrfRejection as C;
    let all = [
        C::CrossSite,
        C::SameSite,
        C::OriginMismatch,
        C::NoOrigin,
        C::MissingToken,
        C::BadToken,
    ];
    let mut seen = std::collections::HashSet::new();
    for c in all {
        let r = Refusal::csrf(c.reason());
        assert_eq!(r.reason(), c.reason());
        assert_eq!(r.layer(), "csrf");
        assert!(seen.insert(r.fixed_index()), "{c:?} shares a counter");
    }
}

#[test]
fn fixed_refusals_are_in_counter_order() {
    for (i, r) in Refusal::FIXED.iter().enumerate() {
        assert_eq!(r.fixed_index(), Some(i), "{r:?}");
    }
    assert_eq!(Refusal::RouteLimit(0).fixed_index(), None);
}

#[test]
fn client_networks() {
    let v4: std::net::IpAddr = "192.0.2.77".parse().expect("ip");
    let v6: std::net::IpAddr = "2001:db8:1:2:3::9".parse().expect("ip");
    assert_eq!(client_field(v4, false), "192.0.2.77");
    assert_eq!(client_field(v4, true), "192.0.2.0/24");
    assert_eq!(client_field(v6, true), "2001:db8:1::/48");
}

#[test]
fn directive_labels_are_bounded() {
    for (reported, label) in [
        ("script-src-elem", "script-src-elem"),
        ("IMG-SRC", "img-src"),
        ("style-src 'self'", "style-src"),
        ("", "other"),
        ("evil\nline", "other"),
        ("x".repeat(10_000).as_str(), "other"),
    ] {
        assert_eq!(csp_directive_label(reported), label, "{reported:?}");
    }
}

#[cfg(feature = "metrics")]
mod exposition {
    use super::*;

    /// The value of the sample `name{labels}` in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counts_appear_in_the_text_format() {
        let t = Telemetry::new();
        let p = Pipeline::new(&t, ["/login"].into_iter());
        let method = http::Method::POST;
        let seen = Seen {
            status: http::StatusCode::FORBIDDEN,
            request_id: None,
            client: Some("192.0.2.1".parse().expect("ip")),
            method: &method,
            routed: false,
        };
        for _ in 0..7 {
            p.refused(
                Refusal::csrf("cross-site"),
                &seen,
                std::time::Duration::from_millis(2),
            );
            p.answered(http::StatusCode::FORBIDDEN);
        }
        p.refused(Refusal::RouteLimit(0), &seen, std::time::Duration::ZERO);
        p.answered(http::StatusCode::OK);
        t.login_attempt(LoginOutcome::Success);
        t.csp_report("script-src-elem");
        t.csp_report("made-up");
        t.store_error(StoreKind::RateLimit);
        t.store_degraded(StoreKind::RateLimit, true);
        let text = t.render();
        let get = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in\n{text}"));
        assert_eq!(
            get(r#"buttress_refusals_total{layer="csrf",reason="cross-site"}"#),
            7.0
        );
        assert_eq!(
            get(r#"buttress_refusals_total{layer="csrf",reason="bad-token"}"#),
            0.0
        );
        assert_eq!(
            get(r#"buttress_refusals_total{layer="ratelimit",reason="/login"}"#),
            1.0
        );
        assert_eq!(get(r#"buttress_requests_total{status_class="4xx"}"#), 7.0);
        assert_eq!(get(r#"buttress_requests_total{status_class="2xx"}"#), 1.0);
        assert_eq!(
            get(r#"buttress_request_duration_seconds_count{route="unmatched"}"#),
            8.0
        );
        assert_eq!(
            get(r#"buttress_login_attempts_total{outcome="success"}"#),
            1.0
        );
        assert_eq!(
            get(r#"buttress_csp_reports_total{directive="script-src-elem"}"#),
            1.0
        );
        assert_eq!(get(r#"buttress_csp_reports_total{directive="other"}"#), 1.0);
        assert_eq!(
            get(r#"buttress_store_errors_total{store="ratelimit"}"#),
            1.0
        );
        assert_eq!(get(r#"buttress_store_degraded{store="ratelimit"}"#), 1.0);
        assert!(text.contains("# TYPE buttress_request_duration_seconds histogram"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn off_counts_nothing() {
        let t = Telemetry::off();
        t.login_attempt(LoginOutcome::Failure);
        assert_eq!(t.render(), "# EOF\n");
    }
}
