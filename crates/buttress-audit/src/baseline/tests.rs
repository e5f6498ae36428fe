//! Tests of [`super`]: table-driven cases and properties.

use super::*;
use crate::{judge, report, Failure, Observations, Page};

fn site() -> Observations {
    let mut obs = Observations::failed(
        "https://app.example/",
        vec![],
        Failure::Other(String::new()),
    );
    obs.verified = true;
    obs.main = Ok(Page {
        url: "https://app.example/".into(),
        status: 200,
        headers: vec![
            ("strict-transport-security".into(), "max-age=63072000; includeSubDomains".into()),
            ("content-security-policy".into(), "default-src 'none'; script-src 'nonce-r4nd0m'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'".into()),
            ("x-content-type-options".into(), "nosniff".into()),
        ],
        body: String::new(),
        truncated: false,
    });
    obs
}

fn baseline_of(r: &Report) -> Baseline {
    Baseline::from_json(&report::json(r)).expect("own report reads back")
}

#[test]
fn the_same_report_has_no_regression() {
    let r = judge(&site());
    let cmp = compare(&baseline_of(&r), &r).expect("same target");
    assert!(!cmp.regressed(), "{}", cmp.render());
    assert!(cmp.changes.is_empty());
    assert!(cmp
        .render()
        .ends_with("no regression against the baseline\n"));
}

#[test]
fn a_weaker_header_is_a_regression_of_the_check_score_and_grade() {
    let before = judge(&site());
    let mut obs = site();
    if let Ok(p) = &mut obs.main {
        p.headers.retain(|(n, _)| n != "content-security-policy");
    }
    let after = judge(&obs);
    let cmp = compare(&baseline_of(&before), &after).expect("same target");
    assert!(cmp.regressed());
    assert!(
        cmp.score_regressed() && cmp.grade_regressed(),
        "{}",
        cmp.render()
    );
    let csp = cmp
        .regressions()
        .find(|c| c.id == "AUD-CSP-001")
        .expect("CSP regressed");
    assert_eq!(csp.before.map(|b| b.0), Some(Verdict::Pass));
    assert_eq!(csp.after.map(|a| a.0), Some(Verdict::Fail));
    let text = cmp.render();
    assert!(
        text.contains("REGRESSED  AUD-CSP-001   pass +10 → fail -25"),
        "{text}"
    );
    assert!(text.contains("REGRESSED  grade"), "{text}");
    // And the other way round it is an improvement, not a regression.
    let back = compare(&baseline_of(&after), &before).expect("same target");
    assert!(!back.regressed(), "{}", back.render());
    assert!(back
        .changes
        .iter()
        .any(|c| c.id == "AUD-CSP-001" && c.kind == ChangeKind::Improved));
}

#[test]
fn verdict_and_points_rules() {
    use ChangeKind::*;
    use Verdict::*;
    let cases = [
        ((Pass, 0), (Warn, -5), Some(Regressed)),
        ((Pass, 0), (Fail, 0), Some(Regressed)),
        ((Info, 0), (Warn, 0), Some(Regressed)),
        ((Warn, 0), (Fail, -5), Some(Regressed)),
        ((Pass, 10), (Pass, 5), Some(Regressed)),
        ((Fail, -20), (Fail, -25), Some(Regressed)),
        ((Pass, 0), (Info, 0), Some(NoLongerTested)),
        ((Fail, -10), (Info, 0), Some(NoLongerTested)),
        ((Info, 0), (Pass, 0), Some(Improved)),
        ((Warn, -5), (Pass, 0), Some(Improved)),
        ((Pass, 5), (Pass, 10), Some(Improved)),
        ((Pass, 0), (Pass, 0), None),
        ((Info, 0), (Info, 0), None),
    ];
    for (before, after, want) in cases {
        assert_eq!(classify(before, after), want, "{before:?} → {after:?}");
    }
}

#[test]
fn a_missing_check_is_a_regression_unless_retired() {
    let r = judge(&site());
    let mut b = baseline_of(&r);
    b.findings.push(BaselineFinding {
        id: "AUD-OLD-001".into(),
        verdict: Verdict::Pass,
        modifier: 0,
    });
    let cmp = compare(&b, &r).expect("same target");
    assert!(cmp.regressed());
    let gone = cmp.regressions().next().expect("gone");
    assert_eq!(
        (gone.id.as_str(), gone.kind),
        ("AUD-OLD-001", ChangeKind::Gone)
    );
    assert!(cmp.render().contains("(not in this report)"));

    let cmp =
        compare_with(&b, &r, &[("AUD-OLD-001", "merged into AUD-CSP-001")]).expect("same target");
    assert!(!cmp.regressed(), "{}", cmp.render());
    assert!(cmp.render().contains("merged into AUD-CSP-001"));
}

#[test]
fn a_new_check_is_listed_not_charged() {
    let r = judge(&site());
    let mut b = baseline_of(&r);
    b.findings.retain(|f| f.id != "AUD-PP-001");
    let cmp = compare(&b, &r).expect("same target");
    let new = cmp
        .changes
        .iter()
        .find(|c| c.id == "AUD-PP-001")
        .expect("listed");
    assert_eq!((new.kind, new.before), (ChangeKind::New, None));
    assert!(!cmp.regressed(), "{}", cmp.render());
    // A lower score next to new checks says what to do.
    b.score += 5;
    let cmp = compare(&b, &r).expect("same target");
    assert!(cmp.score_regressed());
    assert!(
        cmp.render().contains("are new since the baseline"),
        "{}",
        cmp.render()
    );
}

#[test]
fn another_site_is_refused() {
    let r = judge(&site());
    let mut b = baseline_of(&r);
    for same in [
        "https://APP.example:443",
        "https://app.example/",
        "https://u:p@app.example",
    ] {
        b.target = same.into();
        assert!(compare(&b, &r).is_ok(), "{same}");
    }
    for other in [
        "https://app.example/login",
        "http://app.example/",
        "https://app.example:8443/",
        "https://evil.example/",
    ] {
        b.target = other.into();
        let e = compare(&b, &r).expect_err(other);
        assert!(matches!(e, BaselineError::OtherTarget { .. }), "{e}");
        assert!(e.to_string().contains("Fix:"), "{e}");
    }
}

#[test]
fn anything_but_a_report_is_refused_with_the_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "not JSON"),
        ("grade: A", "not JSON"),
        ("[]", "not a JSON object"),
        (r#"{"version":"2.1.0","runs":[]}"#, "SARIF"),
        (r#"{"left":{},"right":{},"checks":[]}"#, "--compare"),
        (
            r#"{"environment":"production","errors":0,"findings":[]}"#,
            "buttress check",
        ),
        (
            r#"{"grade":"A","score":90,"findings":[]}"#,
            "missing field `target`",
        ),
        (
            r#"{"target":"x","grade":"A","score":"90","findings":[]}"#,
            "invalid type",
        ),
        (
            r#"{"target":"x","grade":"Z","score":90,"findings":[]}"#,
            "not a grade",
        ),
        (
            r#"{"target":"x","grade":"A","score":90,"findings":[{"id":"a","verdict":"maybe","modifier":0}]}"#,
            "unknown variant",
        ),
        (
            r#"{"target":"x","grade":"A","score":90,"findings":[{"id":"a","verdict":"pass","modifier":0},{"id":"a","verdict":"pass","modifier":0}]}"#,
            "appears twice",
        ),
        (
            r#"{"report_format":"one","target":"x","grade":"A","score":90,"findings":[]}"#,
            "not a format number",
        ),
        (
            r#"{"report_format":2,"target":"x","grade":"A","score":90,"findings":[]}"#,
            "newer than this buttress reads",
        ),
    ];
    for (text, why) in cases {
        let e = Baseline::from_json(text).expect_err(text);
        let m = e.to_string();
        assert!(m.contains(why) && m.contains("Fix:"), "{text}: {m}");
    }
    // Older reports (no report_format) still read.
    assert!(
        Baseline::from_json(r#"{"target":"x","grade":"a+","score":130,"findings":[]}"#)
            .is_ok_and(|b| b.grade == "A+")
    );
}

proptest::proptest! {
    #[test]
    fn any_text_is_read_or_refused_never_a_panic(text in ".{0,200}") {
        let _ = Baseline::from_json(&text);
    }

    #[test]
    fn case_default_ports_and_credentials_do_not_make_another_target(
        https in proptest::bool::ANY,
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
        path in "(/[a-z0-9]{1,6}){0,3}",
        other in "(/[a-z0-9]{1,6}){1,3}",
    ) {
        let (scheme, port) = if https { ("https", 443) } else { ("http", 80) };
        let plain = format!("{scheme}://{host}{path}");
        let dressed = format!("{}://u:p@{}:{port}{path}", scheme.to_uppercase(), host.to_uppercase());
        proptest::prop_assert!(same_target(&plain, &dressed), "{} vs {}", plain, dressed);
        let elsewhere = format!("{scheme}://{host}{path}{other}");
        proptest::prop_assert!(!same_target(&plain, &elsewhere));
        let other_port = format!("{scheme}://{host}:8443{path}");
        proptest::prop_assert!(!same_target(&plain, &other_port));
    }
}
