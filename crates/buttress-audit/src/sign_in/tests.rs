//! Tests of [`super`]: table-driven cases and properties.

use super::*;

struct Case {
    arg: &'static str,
    /// `Ok(value sent)` or `Err(part of the message)`.
    expect: Result<&'static str, &'static str>,
}

#[test]
fn header_arguments() {
    let cases = [
        Case {
            arg: "Authorization: Bearer abc.def",
            expect: Ok("Bearer abc.def"),
        },
        Case {
            arg: "X-Api-Key:k3y",
            expect: Ok("k3y"),
        },
        Case {
            arg: "X-Empty:",
            expect: Ok(""),
        },
        Case {
            arg: "X-Tab:\ta\tb ",
            expect: Ok("a\tb"),
        },
        Case {
            arg: "X-Colon: a:b",
            expect: Ok("a:b"),
        },
        Case {
            arg: "no colon at all",
            expect: Err("expects NAME:VALUE"),
        },
        Case {
            arg: ": value",
            expect: Err("is not a valid name"),
        },
        Case {
            arg: "Bad Name: v",
            expect: Err("is not a valid name"),
        },
        Case {
            arg: "X-Inject: a\r\nHost: evil",
            expect: Err("no CR, LF"),
        },
        Case {
            arg: "X-Nul: a\u{0}b",
            expect: Err("no CR, LF"),
        },
        Case {
            arg: "X-Utf8: caf\u{e9}",
            expect: Err("visible ASCII"),
        },
        Case {
            arg: "Host: evil.example",
            expect: Err("--resolve"),
        },
        Case {
            arg: "COOKIE: a=b",
            expect: Err("use --cookie"),
        },
        Case {
            arg: "Origin: https://a.example",
            expect: Err("each probe sends its own"),
        },
        Case {
            arg: "Sec-Fetch-Site: same-origin",
            expect: Err("Fetch Metadata"),
        },
        Case {
            arg: "Proxy-Authorization: Basic eA==",
            expect: Err("HTTPS_PROXY"),
        },
        Case {
            arg: "Transfer-Encoding: chunked",
            expect: Err("HTTP client sets it"),
        },
    ];
    for c in cases {
        match (SignIn::new().header_arg(c.arg), c.expect) {
            (Ok(s), Ok(want)) => {
                let sent: Vec<_> = s.headers().collect();
                assert_eq!(sent.len(), 1, "{}", c.arg);
                assert_eq!(sent[0].1, want, "{}", c.arg);
            }
            (Err(e), Err(part)) => {
                let m = e.to_string();
                assert!(m.contains(part), "{}: {m}", c.arg);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.arg),
        }
    }
}

#[test]
fn cookie_arguments() {
    let cases = [
        Case {
            arg: "__Host-session=abc123",
            expect: Ok("__Host-session=abc123"),
        },
        Case {
            arg: "q=\"quoted\"",
            expect: Ok("q=\"quoted\""),
        },
        Case {
            arg: "e=",
            expect: Ok("e="),
        },
        Case {
            arg: "b64=YWJj+/==",
            expect: Ok("b64=YWJj+/=="),
        },
        Case {
            arg: "noequals",
            expect: Err("expects NAME=VALUE"),
        },
        Case {
            arg: "=v",
            expect: Err("is not a valid name"),
        },
        Case {
            arg: "a=1; b=2",
            expect: Err("one cookie per --cookie"),
        },
        Case {
            arg: "a=x\r\nSet-Cookie: y",
            expect: Err("control character"),
        },
        Case {
            arg: "a=has space",
            expect: Err("no space"),
        },
        Case {
            arg: "a b=1",
            expect: Err("is not a valid name"),
        },
    ];
    for c in cases {
        match (SignIn::new().cookie_arg(c.arg), c.expect) {
            (Ok(s), Ok(want)) => {
                assert_eq!(
                    s.headers().collect::<Vec<_>>(),
                    [("cookie", want)],
                    "{}",
                    c.arg
                );
            }
            (Err(e), Err(part)) => {
                let m = e.to_string();
                assert!(m.contains(part), "{}: {m}", c.arg);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.arg),
        }
    }
    let two = SignIn::new()
        .cookie_arg("a=1")
        .and_then(|s| s.cookie_arg("b=2"))
        .expect("two cookies");
    assert_eq!(two.headers().collect::<Vec<_>>(), [("cookie", "a=1; b=2")]);
}

#[test]
fn errors_never_repeat_the_value() {
    for arg in [
        "X-Key: s3cr3t\r\n",
        "Cookie: s3cr3t",
        "Host: s3cr3t",
        "X s3cr3t",
    ] {
        let e = SignIn::new().header_arg(arg).expect_err(arg);
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
    for arg in ["a=s3cr3t;", "a=s3cr3t x", "s3cr3t"] {
        let e = SignIn::new().cookie_arg(arg).expect_err(arg);
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}

#[test]
fn redaction_covers_the_credential_part_and_html_escapes() {
    let s = SignIn::new()
        .header_arg("Authorization: Bearer tok<en>&more")
        .and_then(|s| s.cookie_arg("sid=\"q'uoted\""))
        .and_then(|s| s.cookie_arg("lang=en"))
        .expect("valid");
    let mut t =
        "Bearer tok<en>&more | tok&lt;en&gt;&amp;more | q'uoted | q&#x27;uoted | q&#39;uoted | lang=en | present"
            .to_owned();
    s.redact(&mut t);
    assert_eq!(t, "*** | *** | *** | *** | *** | lang=en | present");
    // Masking cannot make a secret anew.
    let stars = SignIn::new().cookie_arg("s=a***").expect("valid");
    let mut t = "aa***".to_owned();
    stars.redact(&mut t);
    assert!(!t.contains("a***"), "{t}");
    assert_eq!(
        format!("{s:?}"),
        "SignIn { headers: [\"Authorization\"], cookies: [\"sid\", \"lang\"], .. }"
    );
}

proptest::proptest! {
    #[test]
    fn what_is_accepted_cannot_split_a_request(arg in "\\PC{0,12}[:=]?[\\x00-\\x7f\\PC]{0,24}") {
        for s in [SignIn::new().header_arg(&arg), SignIn::new().cookie_arg(&arg)].into_iter().flatten() {
            for (name, value) in s.headers() {
                proptest::prop_assert!(is_token(name));
                proptest::prop_assert!(value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)), "{:?}", value);
            }
        }
    }

    #[test]
    fn a_redacted_text_holds_no_secret(
        secret in "[!#-+\\--:<-\\[\\]-~]{4,16}",
        before in "\\PC{0,20}",
        after in "\\PC{0,20}",
    ) {
        let s = SignIn::new().cookie("c", &secret).expect("cookie-octets");
        let mut text = format!("{before}{secret}{after}{secret}");
        s.redact(&mut text);
        proptest::prop_assert!(!text.contains(&secret), "{:?}", text);
    }
}
